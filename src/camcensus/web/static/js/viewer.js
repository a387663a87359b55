// The 360° viewer (Photo Sphere Viewer 5 + markers plugin) and the client-side tag history.
//
// Rays (docs/platform.md "Rays"): the viewer is opened so that its yaw 0 is the image's centre
// column; PSV's yaw grows clockwise (to the right), in radians. A click at (yaw, pitch) is the
// ray heading_deg = (panorama.heading_deg + yaw_deg) mod 360, pitch_deg = pitch in degrees,
// fov_deg = the viewer's horizontal field of view at the click.
//
// Tag history: a tag is a chain of versions. A version stays editable while its editor is
// open right after it was placed; once the editor closes (Done, another tag, a new click) it
// is frozen, and any later change (move, attachment, type, delete) is a new version with a new
// client_id that `replaces` the previous one. Every version is sent on submit.

import { Viewer } from "../vendor/photo-sphere-viewer-core/index.module.js";
import { MarkersPlugin } from "../vendor/photo-sphere-viewer-markers-plugin/index.module.js";
import { el } from "./common.js";

const RAD = Math.PI / 180;
const STATIC = "/static/img/";

/** Return x modulo 360 in [0, 360). */
export function mod360(x) {
  const r = ((x % 360) + 360) % 360;
  return r >= 360 ? 0 : r;
}

/** Return the image width to ask for: phones get 2048 px, larger screens 4096 px. */
export function imageWidth() {
  const css = Math.min(window.screen.width || window.innerWidth, window.innerWidth || 10000);
  return css <= 820 ? 2048 : 4096;
}

/** Return the panorama's image URL with the width query for this screen. */
export function imageUrl(panorama) {
  const url = new URL(panorama.image_url, window.location.origin);
  url.searchParams.set("w", String(imageWidth()));
  return url.pathname + url.search;
}

function randomId() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const ATTACHMENT_TEXT = { street: "on a pole or signal", building: "on a building", unknown: "on something else" };
const TYPE_TEXT = { dome: "dome/PTZ", bullet: "bullet", unknown: "type unknown" };

/** Describe a tag version in words. */
export function describeTag(v) {
  const where = `heading ${v.heading_deg.toFixed(1)}°, pitch ${v.pitch_deg.toFixed(1)}°`;
  const kind = v.attachment === "street" ? `, ${TYPE_TEXT[v.camera_type] || v.camera_type}` : "";
  return `${ATTACHMENT_TEXT[v.attachment] || v.attachment}${kind} (${where})`;
}

/** The panorama viewer: PSV with markers, our keyboard keys and ray conversions. */
export class PanoViewer {
  constructor(container, { onPlace, onSelectMarker } = {}) {
    this.container = container;
    this.headingDeg = 0;
    this.onPlace = onPlace || (() => {});
    this.onSelectMarker = onSelectMarker || (() => {});
    this.ready = false;
    container.tabIndex = 0;
    container.setAttribute("role", "application");
    this.viewer = new Viewer({
      container,
      panorama: null,
      plugins: [[MarkersPlugin, { clickEventOnMarker: false }]],
      navbar: ["zoom", "move", "fullscreen"],
      keyboard: false,
      minFov: 8,
      maxFov: 100,
      defaultZoomLvl: 20,
      mousewheelCtrlKey: false,
      loadingTxt: "Loading…",
      lang: { zoomOut: "Zoom out", zoomIn: "Zoom in", moveUp: "Look up", moveDown: "Look down", moveLeft: "Look left", moveRight: "Look right", fullscreen: "Full screen" },
    });
    this.markers = this.viewer.getPlugin(MarkersPlugin);
    this.viewer.addEventListener("click", ({ data }) => {
      if (data.rightclick) return;
      this.onPlace(this.ray(data.yaw, data.pitch));
    });
    this.markers.addEventListener("select-marker", ({ marker }) => this.onSelectMarker(marker.id));
    container.addEventListener("keydown", (event) => this.keydown(event));
    this.keyHandlers = {};
  }

  /** Show `panorama` (a task's panorama); resolve when its image is on screen. */
  async show(panorama, { yawDeg = 0, pitchDeg = 0 } = {}) {
    this.ready = false;
    document.body.dataset.viewerReady = "0";
    this.headingDeg = Number(panorama.heading_deg) || 0;
    this.markers.clearMarkers();
    const loading = document.getElementById("viewer-loading");
    if (loading) loading.textContent = "Loading the panorama…";
    await this.viewer.setPanorama(imageUrl(panorama), {
      position: { yaw: mod360(yawDeg) * RAD, pitch: pitchDeg * RAD },
      transition: false,
      showLoader: true,
    });
    if (loading) loading.textContent = "";
    this.ready = true;
    document.body.dataset.viewerReady = "1";
  }

  /** Return the viewer's horizontal field of view in degrees. */
  hfov() {
    const helper = this.viewer.dataHelper;
    return helper.vFovToHFov(helper.zoomLevelToFov(this.viewer.getZoomLevel()));
  }

  /** Return the ray of viewer position (yaw, pitch) in radians. */
  ray(yaw, pitch) {
    return {
      heading_deg: mod360(this.headingDeg + yaw / RAD),
      pitch_deg: Math.max(-90, Math.min(90, pitch / RAD)),
      fov_deg: Math.max(0.1, Math.min(180, this.hfov())),
    };
  }

  /** Return the ray at the centre of the view. */
  centreRay() {
    const { yaw, pitch } = this.viewer.getPosition();
    return this.ray(yaw, pitch);
  }

  /** Return the viewer position (radians) of a ray. */
  position(headingDeg, pitchDeg) {
    return { yaw: mod360(headingDeg - this.headingDeg) * RAD, pitch: pitchDeg * RAD };
  }

  /** Turn the view to a ray, optionally zooming to horizontal field of view `hfovDeg`. */
  lookAt(headingDeg, pitchDeg, hfovDeg) {
    this.viewer.rotate(this.position(headingDeg, pitchDeg));
    if (hfovDeg) {
      const helper = this.viewer.dataHelper;
      this.viewer.zoom(helper.fovToZoomLevel(helper.hFovToVFov(hfovDeg)));
    }
  }

  /** Replace the markers: `items` = [{id, heading_deg, pitch_deg, kind, label}]. */
  setMarkers(items) {
    this.markers.clearMarkers();
    for (const item of items) {
      const size = item.kind === "other" ? 40 : 32;
      this.markers.addMarker({
        id: item.id,
        position: this.position(item.heading_deg, item.pitch_deg),
        image: `${STATIC}${item.kind === "selected" ? "tag-selected.svg" : item.kind === "other" ? "tag-other.svg" : "tag.svg"}`,
        size: { width: size, height: size },
        anchor: "center center",
        data: { label: item.label },
      });
    }
  }

  /** Our keyboard: arrows look around, + / - zoom, Enter tags the centre, Delete, Escape. */
  keydown(event) {
    if (event.target !== this.container && !this.container.contains(event.target)) return;
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const pos = this.viewer.getPosition();
    const step = (this.hfov() / 12) * RAD;
    let handled = true;
    switch (event.key) {
      case "ArrowLeft":
        this.viewer.rotate({ yaw: pos.yaw - step, pitch: pos.pitch });
        break;
      case "ArrowRight":
        this.viewer.rotate({ yaw: pos.yaw + step, pitch: pos.pitch });
        break;
      case "ArrowUp":
        this.viewer.rotate({ yaw: pos.yaw, pitch: Math.min(Math.PI / 2, pos.pitch + step) });
        break;
      case "ArrowDown":
        this.viewer.rotate({ yaw: pos.yaw, pitch: Math.max(-Math.PI / 2, pos.pitch - step) });
        break;
      case "+":
      case "=":
        this.viewer.zoom(Math.min(100, this.viewer.getZoomLevel() + 10));
        break;
      case "-":
      case "_":
        this.viewer.zoom(Math.max(0, this.viewer.getZoomLevel() - 10));
        break;
      case "Enter":
        this.onPlace(this.centreRay());
        break;
      default:
        handled = (this.keyHandlers[event.key] || (() => false))();
    }
    if (handled) event.preventDefault();
  }
}

/** The tags of one panorama and their edit history, with the list and editor of the panel. */
export class Tagger {
  constructor(viewer, { onChange } = {}) {
    this.viewer = viewer;
    this.onChange = onChange || (() => {});
    this.list = document.getElementById("tag-list");
    this.noTags = document.getElementById("no-tags");
    this.editor = document.getElementById("tag-editor");
    this.editorName = document.getElementById("editor-name");
    this.typeChoice = document.getElementById("type-choice");
    this.moveButton = document.getElementById("tag-move");
    this.reset();
    viewer.onPlace = (ray) => this.place(ray);
    viewer.onSelectMarker = (id) => this.select(id);
    viewer.keyHandlers.Delete = () => this.removeSelected();
    viewer.keyHandlers.Backspace = () => this.removeSelected();
    viewer.keyHandlers.Escape = () => {
      this.close();
      return true;
    };
    for (const input of this.editor.querySelectorAll("input[type=radio]")) {
      input.addEventListener("change", () => this.edit({ [input.name]: input.value }));
    }
    this.moveButton.addEventListener("click", () => {
      this.moving = !this.moving;
      this.render();
      this.viewer.container.focus();
    });
    document.getElementById("tag-delete").addEventListener("click", () => this.removeSelected());
    document.getElementById("tag-done").addEventListener("click", () => this.close());
  }

  /** Forget every tag (a new panorama). */
  reset() {
    this.versions = []; // every version, in order: what is sent
    this.heads = new Map(); // tag key -> index of its latest version
    this.selected = null; // tag key
    this.draft = null; // tag key whose latest version is still editable
    this.moving = false;
    this.counter = 0;
    this.render();
  }

  /** Return the latest version of each tag that is not deleted. */
  current() {
    const out = [];
    for (const [key, index] of this.heads) {
      const v = this.versions[index];
      if (!v.deleted) out.push({ key, ...v });
    }
    return out;
  }

  /** Return every version to send (the API's tag objects). */
  payload() {
    return this.versions.map((v) => ({
      client_id: v.client_id,
      heading_deg: v.heading_deg,
      pitch_deg: v.pitch_deg,
      fov_deg: v.fov_deg,
      attachment: v.attachment,
      camera_type: v.camera_type,
      replaces: v.replaces,
      deleted: v.deleted,
      clicked_at: v.clicked_at,
    }));
  }

  /** Place a new tag at `ray`, or move the selected one there when moving. */
  place(ray) {
    if (this.moving && this.selected) {
      this.moving = false;
      this.edit({ ...ray, clicked_at: new Date().toISOString() });
      return;
    }
    this.freeze();
    this.counter += 1;
    const key = `t${this.counter}`;
    const version = {
      client_id: randomId(),
      ...ray,
      attachment: "unknown",
      camera_type: "unknown",
      replaces: null,
      deleted: false,
      clicked_at: new Date().toISOString(),
      number: this.counter,
    };
    this.versions.push(version);
    this.heads.set(key, this.versions.length - 1);
    this.selected = key;
    this.draft = key;
    this.render();
    const first = this.editor.querySelector("input[name=attachment]");
    if (first && !this.viewer.container.contains(document.activeElement)) first.focus();
  }

  /**
   * Change the selected tag. Labels (attachment, type) of the tag just placed are filled in
   * place while its editor is open; any other change, and every move of a ray, is a new
   * version that replaces the old one, so every click is sent exactly as it was made.
   */
  edit(changes) {
    if (!this.selected || !this.heads.has(this.selected)) return;
    const index = this.heads.get(this.selected);
    const old = this.versions[index];
    if (old.deleted) return;
    if (changes.attachment && changes.attachment !== "street") changes.camera_type = "unknown";
    const moved = "heading_deg" in changes || "pitch_deg" in changes;
    if (moved && this.draft === this.selected) this.freeze();
    if (this.draft === this.selected) {
      Object.assign(old, changes);
    } else {
      const version = { ...old, ...changes, client_id: randomId(), replaces: old.client_id };
      this.versions.push(version);
      this.heads.set(this.selected, this.versions.length - 1);
    }
    this.render();
  }

  /** Delete the selected tag (a new version marked deleted). */
  removeSelected() {
    if (!this.selected) return false;
    this.freeze();
    const index = this.heads.get(this.selected);
    const old = this.versions[index];
    this.versions.push({ ...old, client_id: randomId(), replaces: old.client_id, deleted: true });
    this.heads.set(this.selected, this.versions.length - 1);
    this.selected = null;
    this.moving = false;
    this.render();
    this.viewer.container.focus();
    return true;
  }

  /** Select tag `key` (opens its editor; the previous draft is frozen). */
  select(key) {
    if (!this.heads.has(key)) return;
    if (this.draft !== key) this.freeze();
    this.selected = key;
    this.moving = false;
    this.render();
  }

  /** Close the editor: the draft version is frozen. */
  close() {
    this.freeze();
    this.selected = null;
    this.moving = false;
    this.render();
  }

  freeze() {
    this.draft = null;
  }

  /** Redraw the markers, the list and the editor. */
  render() {
    const tags = this.current();
    this.viewer.setMarkers(
      tags.map((t) => ({
        id: t.key,
        heading_deg: t.heading_deg,
        pitch_deg: t.pitch_deg,
        kind: t.key === this.selected ? "selected" : "tag",
        label: `Tag ${t.number}`,
      })),
    );
    this.list.replaceChildren();
    for (const t of tags) {
      const li = el("li");
      li.dataset.key = t.key;
      li.dataset.clientId = t.client_id;
      if (t.key === this.selected) li.setAttribute("aria-current", "true");
      const button = el("button", "tag-item", `Tag ${t.number}: ${describeTag(t)}`);
      button.type = "button";
      button.addEventListener("click", () => {
        this.select(t.key);
        this.viewer.lookAt(t.heading_deg, t.pitch_deg);
      });
      li.append(button);
      this.list.append(li);
    }
    this.noTags.hidden = tags.length > 0;
    const sel = this.selected && this.heads.has(this.selected) ? this.versions[this.heads.get(this.selected)] : null;
    this.editor.hidden = !sel || sel.deleted;
    if (sel && !sel.deleted) {
      this.editorName.textContent = `(tag ${sel.number})`;
      for (const input of this.editor.querySelectorAll("input[type=radio]")) {
        input.checked = sel[input.name] === input.value;
      }
      this.typeChoice.disabled = sel.attachment !== "street";
      this.moveButton.textContent = this.moving ? "Cancel the move" : "Move (click the new place)";
      this.moveButton.setAttribute("aria-pressed", this.moving ? "true" : "false");
    }
    document.body.dataset.tags = String(tags.length);
    this.onChange(tags);
  }
}

/** Expose the page's viewer and tags to tests and to the browser console. */
export function expose(objects) {
  window.camcensus = Object.assign(window.camcensus || {}, objects);
}
