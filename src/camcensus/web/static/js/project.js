// The live progress map of one project (/projects/{name}): numbers and the map, refreshed.

import { api, errorText, initPage, say } from "./common.js";
import { progressData, progressMap } from "./map.js";

initPage();

const project = document.body.dataset.project;
const REFRESH_MS = 30000;
const NUMBERS = ["panoramas", "done", "in_progress", "todo", "submissions", "problems", "volunteers"];

async function numbers() {
  const p = await api("GET", `/api/projects/${encodeURIComponent(project)}`);
  for (const key of NUMBERS) {
    const node = document.getElementById(`n-${key}`);
    if (node) node.textContent = String(p[key] ?? "–");
  }
}

function showError(err) {
  const status = document.createElement("p");
  status.className = "status";
  document.getElementById("map").after(status);
  say(status, errorText(err), "error");
}

async function main() {
  numbers().catch(showError);
  try {
    const map = await progressMap(document.getElementById("map"), project);
    setInterval(async () => {
      try {
        await numbers();
        map.getSource("panoramas").setData(await progressData(project));
      } catch {
        // A missed refresh is retried at the next tick.
      }
    }, REFRESH_MS);
  } catch (err) {
    showError(err);
  }
}

main();
