// Verify (/verify/{project}): is the detector's machine tag a camera at this intersection? The
// viewer turns to the one machine tag and rings it; "Camera here" / "Not a camera here" (also
// for a real camera far down the street, which that crossing's photos count) / "Not sure"
// record the verdict (POST /api/verifications/{tag_id}) and the next task follows. The
// detector's score is not shown: volunteers judge the image, not the machine's confidence.

import { ApiError, api, errorText, initPage, say } from "./common.js";
import { PanoViewer, expose } from "./viewer.js";

initPage();

const project = document.body.dataset.project;
const status = document.getElementById("status");
const taskBox = document.getElementById("task");
const says = document.getElementById("tag-says");
const buttons = Array.from(document.querySelectorAll("button.answer"));
const viewer = new PanoViewer(document.getElementById("viewer"));
viewer.onPlace = () => {};
let current = null;
let busy = false;
expose({ viewer, verification: () => current });

const TYPE_TEXT = { dome: "a dome camera", bullet: "a bullet camera", unknown: "a camera" };

function setBusy(value) {
  busy = value;
  for (const button of buttons) button.disabled = value || !current;
}

function recentre() {
  if (!current) return;
  const t = current.tag;
  viewer.lookAt(t.heading_deg, t.pitch_deg, Math.min(40, t.fov_deg || 40));
}

async function next() {
  current = null;
  setBusy(true);
  document.body.dataset.tagId = "";
  try {
    const answer = await api("POST", `/api/projects/${encodeURIComponent(project)}/verifications`);
    if (answer === null) {
      taskBox.hidden = true;
      say(status, "No machine tag is waiting for your check in this project. Thank you!", "ok");
      document.body.dataset.tagId = "none";
      return;
    }
    current = answer;
    taskBox.hidden = false;
    const t = current.tag;
    const what = TYPE_TEXT[t.camera_type] || TYPE_TEXT.unknown;
    says.textContent = `The detector suggests ${what} here (heading ${t.heading_deg.toFixed(1)}°, pitch ${t.pitch_deg.toFixed(1)}°).`;
    await viewer.show(current.panorama, { yawDeg: t.heading_deg - current.panorama.heading_deg, pitchDeg: t.pitch_deg });
    viewer.setMarkers([{ id: "machine", heading_deg: t.heading_deg, pitch_deg: t.pitch_deg, kind: "other", label: "The detector's guess" }]);
    recentre();
    say(status, "Is there a camera in the ring, at this intersection?");
    document.body.dataset.tagId = t.tag_id;
  } catch (err) {
    say(status, errorText(err), "error");
  } finally {
    setBusy(false);
  }
}

async function answer(value) {
  if (!current || busy) return;
  const tagId = current.tag_id;
  setBusy(true);
  try {
    await api("POST", `/api/verifications/${encodeURIComponent(tagId)}`, { answer: value });
    say(status, "Thank you.", "ok");
    document.body.dataset.lastVerification = tagId;
  } catch (err) {
    // 409: other volunteers settled this tag meanwhile; go on with the next one.
    if (!(err instanceof ApiError && err.status === 409)) {
      say(status, errorText(err), "error");
      setBusy(false);
      return;
    }
    say(status, "Others have just settled that one; here is another.", "ok");
  }
  await next();
}

for (const button of buttons) {
  button.addEventListener("click", () => answer(button.dataset.answer));
}
document.getElementById("recentre").addEventListener("click", recentre);

next();
