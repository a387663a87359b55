// Shared helpers of every page: the CSRF token, JSON calls in the one error shape, log-out.
// Server data reaches the page only through textContent (text nodes), never as markup.

const CSRF_COOKIE = "camcensus_csrf";

/** Return the value of cookie `name`, or "". */
export function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return "";
}

/** Return the CSRF token, asking the server for one (GET /api/csrf) when the cookie is missing. */
export async function csrfToken() {
  let token = cookie(CSRF_COOKIE);
  if (!token) {
    const response = await fetch("/api/csrf", { credentials: "same-origin" });
    if (response.ok) token = (await response.json()).csrf_token || cookie(CSRF_COOKIE);
  }
  return token;
}

/** An error answer of the API: `message` is its sentence, `errors` its items, `status` its code. */
export class ApiError extends Error {
  constructor(status, body) {
    const text = body && typeof body.error === "string" ? body.error : `The server answered ${status}.`;
    super(text);
    this.status = status;
    this.errors = body && Array.isArray(body.errors) ? body.errors : [];
  }

  /** One line for the volunteer: the sentence and each field's message. */
  describe() {
    const details = this.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
    return details ? `${this.message} (${details})` : this.message;
  }
}

/** Call the JSON API; return the parsed answer (null for 204); throw ApiError otherwise. */
export async function api(method, url, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRF-Token"] = await csrfToken();
  }
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** Say `text` in the live region `el` (kind: "ok", "error" or ""). */
export function say(el, text, kind = "") {
  if (!el) return;
  el.textContent = text;
  el.dataset.kind = kind;
}

/** Return the error's text for the volunteer. */
export function errorText(err) {
  if (err instanceof ApiError) return err.describe();
  return `Something went wrong: ${err && err.message ? err.message : err}`;
}

/** Make an element with a class and text (textContent only). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Wire the log-out button of the header. */
export function initPage() {
  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try {
        await api("POST", "/api/logout");
      } finally {
        window.location.assign("/");
      }
    });
  }
  document.body.dataset.ready = "1";
}
