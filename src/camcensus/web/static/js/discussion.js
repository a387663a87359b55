// A panorama's discussion thread: comments are plain text (textContent only).

import { api, el, errorText, initPage, say } from "./common.js";

initPage();

const panorama = document.body.dataset.panorama;
const list = document.getElementById("comments");
const empty = document.getElementById("no-comments");
const form = document.getElementById("comment-form");
const status = document.getElementById("form-status");
const url = `/api/panoramas/${encodeURIComponent(panorama)}/comments`;
// Others' comments stay hidden until this volunteer has answered the panorama (independence).
const locked = document.body.dataset.locked === "1";

async function load() {
  if (locked) return;
  try {
    const comments = await api("GET", url);
    list.replaceChildren();
    for (const c of comments) {
      const li = el("li");
      li.append(el("span", "meta", `${c.pseudonym}, ${new Date(c.created_at).toLocaleString()}`));
      li.append(el("span", "body", c.body));
      list.append(li);
    }
    empty.hidden = comments.length > 0;
  } catch (err) {
    say(status, errorText(err), "error");
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = form.elements.body.value;
  if (!body.trim()) return;
  try {
    await api("POST", url, { body });
    form.reset();
    say(status, locked ? "Posted; the thread opens once you have submitted." : "Posted.", "ok");
    await load();
  } catch (err) {
    say(status, errorText(err), "error");
  }
});

load();
