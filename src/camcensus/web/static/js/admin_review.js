// The admin's expert review page: queue a review plan (a CSV file), give the meta-expert's
// reference where the three experts disagree. The server checks everything again; server text
// reaches the page only through textContent (say), never as markup.

import { api, errorText, initPage, say } from "./common.js";

initPage();

const project = document.body.dataset.project || "";
// Plans are CSV text in a JSON body; the server refuses more than this many characters.
const MAX_PLAN_CHARS = 2_000_000;

const planForm = document.getElementById("plan-form");
if (planForm) {
  const status = document.getElementById("plan-status");
  planForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = planForm.elements.plan.files[0];
    const experts = Number(planForm.elements.experts.value);
    if (!file) {
      say(status, "Choose the plan's CSV file.", "error");
      return;
    }
    if (!Number.isInteger(experts) || experts < 1 || experts > 20) {
      say(status, "Experts per panorama: a whole number from 1 to 20.", "error");
      return;
    }
    let text;
    try {
      text = await file.text();
    } catch (err) {
      say(status, errorText(err), "error");
      return;
    }
    if (!text.trim() || text.length > MAX_PLAN_CHARS) {
      say(status, `The file must hold a plan of at most ${MAX_PLAN_CHARS} characters.`, "error");
      return;
    }
    say(status, "Working…");
    try {
      const answer = await api("POST", `/api/admin/projects/${encodeURIComponent(project)}/review-plan`, { plan_csv: text, experts });
      say(status, `Queued ${answer.queued} panoramas. Reload to see the progress.`, "ok");
    } catch (err) {
      say(status, errorText(err), "error");
    }
  });
}

for (const form of document.querySelectorAll("form.resolve-form")) {
  const status = form.querySelector(".status");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const reference = {};
    for (const input of form.querySelectorAll("input[type=number]:not(:disabled)")) {
      const value = input.value.trim();
      const number = Number(value);
      if (!value || !Number.isInteger(number) || number < 0) {
        say(status, `${input.getAttribute("aria-label")}: a whole number of 0 or more.`, "error");
        input.focus();
        return;
      }
      reference[input.name] = number;
    }
    const note = form.elements.note ? form.elements.note.value.trim() : "";
    const body = note ? { reference, note } : { reference };
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    say(status, "Working…");
    try {
      await api("POST", `/api/admin/reviews/${encodeURIComponent(form.dataset.reviewId)}/resolve`, body);
      for (const field of form.querySelectorAll("input, textarea")) field.disabled = true;
      form.dataset.resolved = "1";
      say(status, "Reference recorded: the review is done.", "ok");
    } catch (err) {
      if (button) button.disabled = false;
      say(status, errorText(err), "error");
    }
  });
}
