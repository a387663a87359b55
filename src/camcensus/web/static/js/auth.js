// Sign-up and log-in forms: posted as JSON with the X-CSRF-Token header.

import { api, errorText, initPage, say } from "./common.js";

initPage();

const page = document.body.dataset.page;
const form = document.getElementById(page === "signup" ? "signup-form" : "login-form");
const status = document.getElementById("form-status");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const pseudonym = form.elements.pseudonym.value.trim();
  const password = form.elements.password.value;
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  say(status, page === "signup" ? "Signing up…" : "Logging in…");
  try {
    if (page === "signup") {
      const body = { pseudonym, password };
      const invitation = form.elements.invitation.value.trim();
      if (invitation) body.invitation = invitation;
      await api("POST", "/api/signup", body);
      window.location.assign("/tutorial");
    } else {
      await api("POST", "/api/login", { pseudonym, password });
      const next = document.body.dataset.next || "/";
      const local = next.startsWith("/") && !next.startsWith("//") && !/[\\\x00-\x1f\x7f]/.test(next);
      window.location.assign(local ? next : "/");
    }
  } catch (err) {
    say(status, errorText(err), "error");
    button.disabled = false;
  }
});
