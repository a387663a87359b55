// Validation (/validate/{project}): agree, disagree or say unsure about one tag placed by
// another volunteer; the viewer turns to it and rings it.

import { api, errorText, initPage, say } from "./common.js";
import { PanoViewer, describeTag, expose } from "./viewer.js";

initPage();

const project = document.body.dataset.project;
const status = document.getElementById("status");
const taskBox = document.getElementById("task");
const says = document.getElementById("tag-says");
const viewer = new PanoViewer(document.getElementById("viewer"));
viewer.onPlace = () => {};
let current = null;
expose({ viewer, validation: () => current });

function recentre() {
  if (current) viewer.lookAt(current.tag.heading_deg, current.tag.pitch_deg, Math.min(60, current.tag.fov_deg || 60));
}

async function next() {
  current = null;
  document.body.dataset.tagId = "";
  try {
    const answer = await api("POST", `/api/projects/${encodeURIComponent(project)}/validations`);
    if (answer === null) {
      taskBox.hidden = true;
      say(status, "No tag is waiting for your check in this project. Thank you!", "ok");
      document.body.dataset.tagId = "none";
      return;
    }
    current = answer;
    taskBox.hidden = false;
    says.textContent = `Someone tagged a camera ${describeTag(current.tag)}.`;
    const t = current.tag;
    await viewer.show(current.panorama, { yawDeg: t.heading_deg - current.panorama.heading_deg, pitchDeg: t.pitch_deg });
    viewer.setMarkers([{ id: "validated", heading_deg: t.heading_deg, pitch_deg: t.pitch_deg, kind: "other", label: "The tag to check" }]);
    recentre();
    say(status, "Is there a camera in the ring?");
    document.body.dataset.tagId = t.tag_id;
  } catch (err) {
    say(status, errorText(err), "error");
  }
}

for (const button of document.querySelectorAll("button.answer")) {
  button.addEventListener("click", async () => {
    if (!current) return;
    try {
      await api("POST", "/api/validations", { tag_id: current.tag.tag_id, answer: button.dataset.answer });
      say(status, "Thank you.", "ok");
      document.body.dataset.lastValidation = current.tag.tag_id;
      await next();
    } catch (err) {
      say(status, errorText(err), "error");
    }
  });
}
document.getElementById("recentre").addEventListener("click", recentre);

next();
