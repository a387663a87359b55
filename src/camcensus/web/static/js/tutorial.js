// The tutorial (/tutorial): a synthetic panorama whose cameras are known; each tag gets
// feedback from POST /api/tutorial/check.

import { api, el, errorText, initPage, say } from "./common.js";
import { PanoViewer, Tagger, expose } from "./viewer.js";

initPage();

const feedback = document.getElementById("feedback");
const finish = document.getElementById("finish");
const check = document.getElementById("check");
const viewer = new PanoViewer(document.getElementById("viewer"));
const tagger = new Tagger(viewer);
let checks = 0;
expose({ viewer, tagger });

async function main() {
  try {
    const tutorial = await api("GET", "/api/tutorial");
    const tips = document.getElementById("tips");
    for (const t of tutorial.tips || []) tips.append(el("li", "", t));
    tips.append(el("li", "", `This panorama shows ${tutorial.cameras} camera${tutorial.cameras === 1 ? "" : "s"}.`));
    await viewer.show(tutorial.panorama);
    viewer.container.focus();
  } catch (err) {
    say(feedback, errorText(err), "error");
  }
}

check.addEventListener("click", async () => {
  const current = tagger.current();
  const number = new Map(current.map((t) => [t.client_id, t.number]));
  const tags = current.map((t) => ({
    client_id: t.client_id,
    heading_deg: t.heading_deg,
    pitch_deg: t.pitch_deg,
    fov_deg: t.fov_deg,
    attachment: t.attachment,
    camera_type: t.camera_type,
  }));
  check.disabled = true;
  try {
    const result = await api("POST", "/api/tutorial/check", { tags });
    checks += 1;
    feedback.replaceChildren();
    feedback.append(el("p", result.passed ? "right" : "", result.passed ? `Well done: you found all ${result.cameras} cameras and described them right.` : `You found ${result.found} of ${result.cameras} cameras.${result.missed ? " Look again: up, and all the way round." : ""}`));
    const list = el("ul");
    for (const f of result.tags) list.append(el("li", f.correct ? "right" : "wrong", `Tag ${number.get(f.client_id) ?? "?"}: ${f.message}`));
    feedback.append(list);
    document.body.dataset.tutorialChecked = String(checks);
    document.body.dataset.tutorialPassed = result.passed ? "1" : "0";
    finish.disabled = !(result.passed || checks >= 2);
  } catch (err) {
    say(feedback, errorText(err), "error");
  } finally {
    check.disabled = false;
  }
});

finish.addEventListener("click", async () => {
  try {
    await api("POST", "/api/tutorial/done");
    window.location.assign("/");
  } catch (err) {
    say(feedback, errorText(err), "error");
  }
});

main();
