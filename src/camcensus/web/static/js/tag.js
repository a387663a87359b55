// The tagging page (/tag/{project}) and the expert review page (/review/{project}, data-mode
// "review"): ask for a task, show its panorama, place / edit / delete tags, submit, report a
// problem, flag for discussion.

import { api, errorText, initPage, say } from "./common.js";
import { PanoViewer, Tagger, expose } from "./viewer.js";

initPage();

const body = document.body;
const project = body.dataset.project;
const mode = body.dataset.mode || "tag";
const build = body.dataset.build || "web";
const status = document.getElementById("status");
const taskBox = document.getElementById("task");
const tip = document.getElementById("tip");
const submitButton = document.getElementById("submit");
const noCameraButton = document.getElementById("no-camera");
const problemDialog = document.getElementById("problem-dialog");
const problemForm = document.getElementById("problem-form");
const discuss = document.getElementById("discuss");
const meta = document.getElementById("pano-meta");

let task = null;
let startedAt = null;
let bbox = null;
let busy = false;

const viewer = new PanoViewer(document.getElementById("viewer"));
const tagger = new Tagger(viewer, {
  onChange(tags) {
    noCameraButton.disabled = tags.length > 0;
    noCameraButton.title = tags.length > 0 ? "You have tagged cameras: delete them first" : "";
    submitButton.disabled = tags.length === 0;
  },
});
expose({ viewer, tagger, task: () => task });

function setBusy(value) {
  busy = value;
  for (const b of [submitButton, noCameraButton, document.getElementById("problem-open")]) {
    b.disabled = value || (b === submitButton && tagger.current().length === 0) || (b === noCameraButton && tagger.current().length > 0);
  }
}

async function refreshProgress() {
  try {
    const [me, numbers] = await Promise.all([api("GET", "/api/me"), api("GET", `/api/projects/${encodeURIComponent(project)}`)]);
    document.getElementById("my-tasks").textContent = String(me.tasks_done);
    document.getElementById("project-done").textContent = String(numbers.done);
    document.getElementById("project-total").textContent = String(numbers.panoramas);
  } catch (err) {
    say(status, errorText(err), "error");
  }
}

async function nextTask() {
  task = null;
  body.dataset.taskId = "";
  tagger.reset();
  setBusy(true);
  say(status, "Looking for a panorama…");
  try {
    const url = mode === "review" ? `/api/projects/${encodeURIComponent(project)}/reviews` : `/api/projects/${encodeURIComponent(project)}/tasks`;
    const answer = await api("POST", url, mode === "review" ? undefined : bbox ? { bbox } : {});
    if (answer === null) {
      taskBox.hidden = true;
      tip.hidden = true;
      say(status, mode === "review" ? "The review queue is empty. Thank you!" : bbox ? "Nothing is left for you in this area: choose another one, or anywhere." : "Nothing is left for you in this project. Thank you!", "ok");
      body.dataset.taskId = "none";
      return;
    }
    task = answer;
    taskBox.hidden = false;
    tip.hidden = !task.tip;
    tip.textContent = task.tip ? `Tip: ${task.tip}` : "";
    discuss.href = `/panoramas/${encodeURIComponent(task.panorama.panorama_id)}/discussion`;
    const p = task.panorama;
    meta.textContent = [p.captured ? `Captured ${p.captured}` : "", p.licence ? `Imagery: ${p.licence}` : ""].filter(Boolean).join(" · ");
    say(status, "Look all round, up and down. Click each camera you see.");
    await viewer.show(task.panorama);
    startedAt = new Date().toISOString();
    body.dataset.taskId = task.task_id;
    viewer.container.focus();
  } catch (err) {
    say(status, errorText(err), "error");
  } finally {
    setBusy(false);
  }
}

function feedbackText(feedback) {
  if (!feedback) return "";
  const parts = [];
  if (typeof feedback.found === "number") parts.push(`${feedback.found} found`);
  if (typeof feedback.missed === "number") parts.push(`${feedback.missed} missed`);
  if (typeof feedback.extra === "number") parts.push(`${feedback.extra} tagged where we know of no camera`);
  return parts.length ? ` This was a practice panorama with a known answer: ${parts.join(", ")}.` : "";
}

async function submit(noCamera) {
  if (!task || busy) return;
  const tags = tagger.payload();
  if (!noCamera && tagger.current().length === 0) {
    say(status, "No tag yet: tag the cameras, or answer 'No camera here'.", "error");
    return;
  }
  setBusy(true);
  try {
    const result = await api("POST", `/api/tasks/${encodeURIComponent(task.task_id)}/submit`, {
      no_camera: noCamera,
      tags,
      client_build: build,
      started_at: startedAt,
    });
    say(status, `Thank you, saved.${feedbackText(result.feedback)}`, "ok");
    body.dataset.lastSubmission = result.submission_id;
    await refreshProgress();
    await nextTask();
  } catch (err) {
    say(status, errorText(err), "error");
    setBusy(false);
  }
}

submitButton.addEventListener("click", () => submit(false));
noCameraButton.addEventListener("click", () => submit(true));

document.getElementById("problem-open").addEventListener("click", () => {
  problemForm.reset();
  problemDialog.showModal();
});
document.getElementById("problem-cancel").addEventListener("click", () => problemDialog.close());
problemForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const choice = problemForm.querySelector("input[name=problem]:checked");
  if (!choice || !task) return;
  const note = problemForm.querySelector("textarea").value.trim();
  problemDialog.close();
  setBusy(true);
  try {
    await api("POST", `/api/tasks/${encodeURIComponent(task.task_id)}/problem`, note ? { problem: choice.value, note } : { problem: choice.value });
    say(status, "Thank you: the problem is reported.", "ok");
    body.dataset.lastProblem = task.task_id;
    await refreshProgress();
    await nextTask();
  } catch (err) {
    say(status, errorText(err), "error");
    setBusy(false);
  }
});

// Choosing where to work: a box typed in, or the view of a small map of the project.
const areaForm = document.getElementById("area-form");
let areaMap = null;
document.getElementById("area").addEventListener("toggle", async (event) => {
  if (!event.target.open || areaMap) return;
  try {
    const { progressMap } = await import("./map.js");
    areaMap = await progressMap(document.getElementById("area-map"), project, { interactive: true });
  } catch (err) {
    say(status, `The map could not be shown (${errorText(err)}); type a box instead.`, "error");
  }
});
document.getElementById("area-from-map").addEventListener("click", () => {
  if (!areaMap) return;
  const b = areaMap.getBounds();
  const values = { west: b.getWest(), south: b.getSouth(), east: b.getEast(), north: b.getNorth() };
  for (const [name, value] of Object.entries(values)) areaForm.elements[name].value = value.toFixed(5);
});
areaForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const values = ["west", "south", "east", "north"].map((n) => Number(areaForm.elements[n].value.trim()));
  if (values.some((v) => !Number.isFinite(v)) || values[0] > values[2] || values[1] > values[3]) {
    say(status, "The box needs four numbers: west ≤ east, south ≤ north (degrees).", "error");
    return;
  }
  bbox = values;
  nextTask();
});
document.getElementById("area-clear").addEventListener("click", () => {
  bbox = null;
  for (const n of ["west", "south", "east", "north"]) areaForm.elements[n].value = "";
  nextTask();
});

if (mode === "review") document.getElementById("area").hidden = true;
refreshProgress();
nextTask();
