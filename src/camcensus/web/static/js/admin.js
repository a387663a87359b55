// The admin page: create a project, invite, mark gold, queue reviews (experts per panorama).

import { api, errorText, initPage, say } from "./common.js";

initPage();

function numbers(text, n, what) {
  const values = text.split(",").map((s) => Number(s.trim()));
  if (values.length !== n || values.some((v) => !Number.isFinite(v))) throw new Error(`${what} needs ${n} numbers separated by commas`);
  return values;
}

function wire(formId, statusId, build, done) {
  const form = document.getElementById(formId);
  const status = document.getElementById(statusId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let request;
    try {
      request = build(form);
    } catch (err) {
      say(status, err.message, "error");
      return;
    }
    say(status, "Working…");
    try {
      const answer = await api("POST", request.url, request.body);
      say(status, done(answer), "ok");
    } catch (err) {
      say(status, errorText(err), "error");
    }
  });
}

wire("create-form", "create-status", (f) => {
  const body = { name: f.elements.name.value.trim(), title: f.elements.title.value.trim(), source: f.elements.source.value };
  for (const key of ["folder", "panoramax_url", "intersections_csv", "licence"]) {
    const v = f.elements[key].value.trim();
    if (v) body[key] = v;
  }
  const bbox = f.elements.bbox.value.trim();
  if (bbox) body.bbox = numbers(bbox, 4, "The bounding box");
  const area = f.elements.area_geojson.value.trim();
  if (area) {
    try {
      body.area_geojson = JSON.parse(area);
    } catch {
      throw new Error("The area polygon is not valid GeoJSON");
    }
  }
  const k = f.elements.k.value.trim();
  if (k) body.k = Number(k);
  return { url: "/api/admin/projects", body };
}, (answer) => `Created${answer && answer.name ? ` ${answer.name}` : ""}. Reload to see it in the list.`);

wire("invite-form", "invite-status", (f) => {
  const body = { role: f.elements.role.value };
  const project = f.elements.project.value.trim();
  if (project) body.project = project;
  return { url: "/api/admin/invitations", body };
}, (answer) => {
  const link = new URL(answer.signup_url, window.location.origin).href;
  document.getElementById("invite-link").textContent = link;
  return `Invitation for the role ${answer.role} (shown once):`;
});

wire("gold-form", "gold-status", (f) => {
  const answer = [];
  for (const [i, line] of f.elements.answer.value.split("\n").entries()) {
    if (!line.trim()) continue;
    const parts = line.split(",").map((s) => s.trim());
    const heading = Number(parts[0]);
    const pitch = Number(parts[1]);
    if (parts.length !== 4 || !Number.isFinite(heading) || !Number.isFinite(pitch)) throw new Error(`Line ${i + 1}: expected heading, pitch, attachment, type`);
    answer.push({ heading_deg: heading, pitch_deg: pitch, attachment: parts[2], camera_type: parts[3] });
  }
  const id = f.elements.panorama_id.value.trim();
  return { url: `/api/admin/panoramas/${encodeURIComponent(id)}/gold`, body: { answer } };
}, () => "Marked gold.");

wire("review-form", "review-status", (f) => {
  const ids = f.elements.panorama_ids.value.split(/\s+/).filter(Boolean);
  const project = f.elements.project.value.trim();
  const experts = Number(f.elements.experts.value);
  if (!Number.isInteger(experts) || experts < 1 || experts > 20) throw new Error("Experts per panorama: a whole number from 1 to 20");
  return { url: `/api/admin/projects/${encodeURIComponent(project)}/reviews`, body: { panorama_ids: ids, experts } };
}, (answer) => `Queued ${answer.queued} panoramas.`);
