// The home page: each project's progress and the volunteer's own.

import { api, initPage } from "./common.js";

initPage();

async function main() {
  const mine = document.getElementById("my-tasks");
  if (mine) {
    try {
      const me = await api("GET", "/api/me");
      mine.textContent = String(me.tasks_done);
    } catch {
      mine.textContent = "–";
    }
  }
  try {
    const projects = await api("GET", "/api/projects");
    const byName = new Map(projects.map((p) => [p.name, p]));
    for (const li of document.querySelectorAll("li.project")) {
      const p = byName.get(li.dataset.name);
      if (!p) continue;
      const bar = li.querySelector("progress");
      bar.max = Math.max(1, p.panoramas);
      bar.value = p.done;
      li.querySelector(".progress-text").textContent = `${p.done} of ${p.panoramas} panoramas done, ${p.in_progress} in progress; ${p.volunteers} volunteers`;
    }
  } catch {
    for (const t of document.querySelectorAll(".progress-text")) t.textContent = "progress unavailable";
  }
}

main();
