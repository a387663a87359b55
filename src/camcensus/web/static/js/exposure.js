// The exposure map (/exposure): click where a walk starts and ends; the server routes it over
// the street network and says how much of it the cameras see, and the least-watched walk
// beside it. MapLibre with a plain background, the streets, the cameras and the routes as
// GeoJSON from this server (no tile server, no glyphs, no remote request of any kind).
// Server data reaches the page only as text nodes (textContent), never as markup.

import { Map as MapLibreMap, NavigationControl } from "../vendor/maplibre-gl/maplibre-gl.mjs";
import { api, el, errorText, initPage, say } from "./common.js";

initPage();

const EMPTY = { type: "FeatureCollection", features: [] };
const SVG = "http://www.w3.org/2000/svg";
const MAX_CAMERAS_SHOWN = 200;

const hint = document.getElementById("hint");
const state = { origin: null, destination: null, via: [], info: null, request: 0 };

/** A share in [0, 1] as a percentage with one decimal. */
export function percent(share) {
  return Number.isFinite(share) ? `${(share * 100).toFixed(1)}%` : "–";
}

/** Metres, rounded; kilometres with two decimals from 1 km. */
export function metres(m) {
  if (!Number.isFinite(m)) return "–";
  return m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`;
}

function seconds(s) {
  if (!Number.isFinite(s)) return "–";
  return s >= 120 ? `${Math.round(s)} s (${(s / 60).toFixed(1)} min)` : `${Math.round(s)} s`;
}

/** "LAT,LON" with six decimals (about 0.1 m), the API's point format. */
function latLon(p) {
  return `${p.lat.toFixed(6)},${p.lng.toFixed(6)}`;
}

/** The band a headline figure shows: "any" when the model has it, else the first one. */
function headlineBand(bands) {
  const names = Object.keys(bands || {});
  if (names.includes("any")) return "any";
  return names[0] || null;
}

function setText(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text;
}

function pointsGeojson() {
  const features = [];
  const add = (p, role, label) => {
    if (p) {
      features.push({
        type: "Feature",
        geometry: { type: "Point", coordinates: [p.lng, p.lat] },
        properties: { role, label },
      });
    }
  };
  add(state.origin, "origin", "A");
  state.via.forEach((p, i) => add(p, "via", String(i + 1)));
  add(state.destination, "destination", "B");
  return { type: "FeatureCollection", features };
}

function routeUrl() {
  const params = new URLSearchParams();
  params.set("from", latLon(state.origin));
  params.set("to", latLon(state.destination));
  for (const v of state.via) params.append("via", latLon(v));
  if (document.getElementById("least-watched").checked) {
    params.set("least_watched", "1");
    params.set("max_detour", document.getElementById("max-detour").value);
  }
  return `/api/exposure/route?${params.toString()}`;
}

function showBands(tbody, bands) {
  tbody.replaceChildren();
  for (const [band, f] of Object.entries(bands || {})) {
    const row = el("tr");
    row.append(
      el("th", "", band),
      el("td", "", metres(f.covered_m)),
      el("td", "", percent(f.share_covered)),
      el("td", "", seconds(f.seconds_exposed)),
    );
    row.firstChild.setAttribute("scope", "row");
    tbody.append(row);
  }
}

function showCameras(list, cameras) {
  list.replaceChildren();
  const ids = Array.isArray(cameras) ? cameras : [];
  for (const id of ids.slice(0, MAX_CAMERAS_SHOWN)) list.append(el("li", "", String(id)));
  if (ids.length > MAX_CAMERAS_SHOWN) {
    list.append(el("li", "muted", `and ${ids.length - MAX_CAMERAS_SHOWN} more`));
  }
  if (ids.length === 0) list.append(el("li", "muted", "None: no camera sees this walk."));
}

function showTradeoff(figures) {
  const tbody = document.getElementById("tradeoff");
  const chart = document.getElementById("tradeoff-chart");
  tbody.replaceChildren();
  chart.replaceChildren();
  const curve = Array.isArray(figures.tradeoff) ? [...figures.tradeoff] : [];
  // Streets in a grid tie: an equally short walk may be far less watched than the shortest
  // walk shown above, which the curve (each route beaten by none) then leaves out. Show it.
  const band = headlineBand(figures.bands);
  if (band && !curve.some((t) => t.penalty === 0)) {
    curve.unshift({
      penalty: "shortest walk",
      length_m: figures.length_m,
      share_covered: figures.bands[band].share_covered,
      detour: 0,
    });
  }
  for (const t of curve) {
    tbody.append(
      (() => {
        const row = el("tr", t.within_cap === false ? "muted" : "");
        row.append(
          el("td", "", typeof t.penalty === "number" ? String(Number(t.penalty.toPrecision(3))) : String(t.penalty)),
          el("td", "", metres(t.length_m)),
          el("td", "", percent(t.detour)),
          el("td", "", percent(t.share_covered)),
          el("td", "", t.within_cap === false ? "no" : "yes"),
        );
        return row;
      })(),
    );
  }
  drawChart(chart, curve);
}

/** A small SVG chart of the trade-off: share watched (y) against the detour (x). */
function drawChart(svg, curve) {
  const W = 360;
  const H = 200;
  const left = 44;
  const bottom = 30;
  const top = 10;
  const right = 26;
  const points = curve.filter((t) => Number.isFinite(t.detour) && Number.isFinite(t.share_covered));
  // The x axis ends at the next multiple of 10% above the longest detour.
  const xMax = Math.max(0.1, Math.ceil((Math.max(0, ...points.map((t) => t.detour)) + 1e-9) * 10) / 10);
  const x = (d) => left + (d / xMax) * (W - left - right);
  const y = (s) => top + (1 - s) * (H - top - bottom);
  const node = (name, attrs, text) => {
    const n = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  node("line", { x1: left, y1: y(0), x2: W - right, y2: y(0), class: "axis" });
  node("line", { x1: left, y1: y(0), x2: left, y2: y(1), class: "axis" });
  for (const s of [0, 0.5, 1]) {
    node("text", { x: left - 4, y: y(s) + 4, "text-anchor": "end", class: "tick" }, percent(s).replace(".0", ""));
  }
  for (const d of [0, xMax / 2, xMax]) {
    node("text", { x: x(d), y: H - bottom + 14, "text-anchor": "middle", class: "tick" }, `+${Math.round(d * 100)}%`);
  }
  node("text", { x: (left + W - right) / 2, y: H - 2, "text-anchor": "middle", class: "label" }, "longer by");
  if (points.length === 0) return;
  const sorted = [...points].sort((a, b) => a.detour - b.detour);
  node("polyline", {
    points: sorted.map((t) => `${x(t.detour).toFixed(1)},${y(t.share_covered).toFixed(1)}`).join(" "),
    class: "curve",
  });
  for (const t of sorted) {
    const c = node("circle", {
      cx: x(t.detour).toFixed(1),
      cy: y(t.share_covered).toFixed(1),
      r: 3.5,
      class: t.within_cap === false ? "dot over" : "dot",
    });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${percent(t.share_covered)} watched, ${metres(t.length_m)} (+${percent(t.detour)})`;
    c.append(title);
  }
}

function showResult(data) {
  const figures = data.figures;
  const band = headlineBand(figures.bands);
  const f = band ? figures.bands[band] : {};
  setText("headline-band", band || "–");
  setText("length", metres(figures.length_m));
  setText("share", percent(f.share_covered));
  setText("seconds", seconds(f.seconds_exposed));
  setText("n-cameras", String(figures.n_cameras ?? (figures.cameras || []).length));
  showBands(document.getElementById("bands"), figures.bands);
  showCameras(document.getElementById("cameras"), figures.cameras);

  const section = document.getElementById("least-section");
  const least = figures.least_watched;
  const asked = document.getElementById("least-watched").checked;
  section.hidden = !asked;
  const none = document.getElementById("least-none");
  const numbers = document.getElementById("least-numbers");
  if (asked && least) {
    const lb = headlineBand(least.bands) || band;
    const lf = (least.bands || {})[lb] || {};
    none.hidden = true;
    numbers.hidden = false;
    setText("least-band", lb || "–");
    setText("least-length", metres(least.length_m));
    setText("least-share", percent(lf.share_covered));
    setText("least-detour", percent(least.detour));
    setText("least-n-cameras", String(least.n_cameras ?? (least.cameras || []).length));
    if (!(least.detour > 0)) {
      none.hidden = false;
      none.textContent = "No less-watched walk within the detour cap: the shortest walk is the least watched.";
    }
  } else if (asked) {
    numbers.hidden = true;
    none.hidden = false;
    none.textContent = "No less-watched walk within the detour cap: the shortest walk is the least watched.";
  }
  if (asked) showTradeoff(figures);
  document.getElementById("result").hidden = false;
}

function clearResult(map) {
  map.getSource("route").setData(EMPTY);
  document.getElementById("result").hidden = true;
  delete document.body.dataset.routeUrl;
  document.body.dataset.routeStatus = "none";
}

async function update(map) {
  map.getSource("points").setData(pointsGeojson());
  if (!state.origin || !state.destination) return;
  const url = routeUrl();
  const request = ++state.request;
  document.body.dataset.routeStatus = "loading";
  say(hint, "Finding the walk…");
  try {
    const data = await api("GET", url);
    if (request !== state.request) return; // a newer click superseded this answer
    map.getSource("route").setData(data.geojson || EMPTY);
    showResult(data);
    say(hint, "Click again to start a new walk, or tick the box to add stops on the way.", "ok");
    document.body.dataset.routeUrl = url;
    document.body.dataset.routeStatus = "done";
  } catch (err) {
    if (request !== state.request) return;
    map.getSource("route").setData(EMPTY);
    document.getElementById("result").hidden = true;
    say(hint, errorText(err), "error");
    document.body.dataset.routeStatus = "error";
  }
}

function onClick(map, lngLat) {
  const addVia = document.getElementById("add-via").checked;
  if (!state.origin || (state.destination && !addVia)) {
    state.origin = lngLat;
    state.destination = null;
    state.via = [];
    clearResult(map);
    map.getSource("points").setData(pointsGeojson());
    say(hint, "Now click where the walk ends.");
    return;
  }
  if (!state.destination) {
    state.destination = lngLat;
  } else {
    // A stop on the way, visited after the stops already set and before the end.
    if (state.via.length >= (state.info?.max_via ?? 8)) {
      say(hint, `At most ${state.info?.max_via ?? 8} stops on the way.`, "error");
      return;
    }
    state.via.push(lngLat);
  }
  update(map);
}

/** The covered stretches of one route in the band the least-watched route avoids. */
function coveredFilter(route, band) {
  return [
    "all",
    ["==", ["get", "role"], "covered"],
    ["==", ["get", "route"], route],
    ["==", ["get", "band"], band],
  ];
}

function describeModel(info) {
  const params = Object.entries(info.parameters || {})
    .map(([k, v]) => `${k} ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
  const model = info.model ? `Coverage model “${info.model}”` : "Coverage model";
  return `${model}${params ? ` (${params})` : ""}; ${info.n_cameras} cameras.`;
}

async function main() {
  const container = document.getElementById("map");
  let info;
  let streets;
  let cameras;
  try {
    [info, streets, cameras] = await Promise.all([
      api("GET", "/api/exposure/info"),
      api("GET", "/api/exposure/streets"),
      api("GET", "/api/exposure/cameras"),
    ]);
  } catch (err) {
    say(hint, errorText(err), "error");
    return;
  }
  state.info = info;
  setText("model", describeModel(info));
  const [w, s, e, n] = info.bounds;
  const routingBand = info.routing_band || "any";
  const map = new MapLibreMap({
    container,
    style: {
      version: 8,
      sources: {
        streets: { type: "geojson", data: streets },
        cameras: { type: "geojson", data: cameras },
        route: { type: "geojson", data: EMPTY },
        points: { type: "geojson", data: EMPTY },
      },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#eef0f2" } },
        {
          id: "streets",
          type: "line",
          source: "streets",
          paint: { "line-color": "#b5bcc4", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1, 18, 5] },
        },
        {
          id: "cameras",
          type: "circle",
          source: "cameras",
          paint: {
            "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 2.5, 18, 6],
            "circle-color": "#5a6270",
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 1,
          },
        },
        {
          id: "least-watched",
          type: "line",
          source: "route",
          filter: ["==", ["get", "role"], "least_watched"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": "#1a9850", "line-width": 5, "line-dasharray": [1.5, 1] },
        },
        {
          id: "shortest",
          type: "line",
          source: "route",
          filter: ["==", ["get", "role"], "shortest"],
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": "#0b5cad", "line-width": 6 },
        },
        {
          id: "least-covered",
          type: "line",
          source: "route",
          filter: coveredFilter("least_watched", routingBand),
          paint: { "line-color": "#d7191c", "line-width": 2 },
        },
        {
          id: "covered",
          type: "line",
          source: "route",
          filter: coveredFilter("shortest", routingBand),
          layout: { "line-cap": "round", "line-join": "round" },
          paint: { "line-color": "#d7191c", "line-width": 6 },
        },
        {
          id: "seeing",
          type: "circle",
          source: "route",
          filter: ["==", ["get", "role"], "camera"],
          paint: {
            "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 3, 18, 8],
            "circle-color": "#f0a202",
            "circle-stroke-color": "#1b1f24",
            "circle-stroke-width": 1,
          },
        },
        {
          id: "points",
          type: "circle",
          source: "points",
          paint: {
            "circle-radius": 8,
            "circle-color": ["match", ["get", "role"], "origin", "#0b5cad", "destination", "#17212b", "#ffffff"],
            "circle-stroke-color": "#ffffff",
            "circle-stroke-width": 2,
          },
        },
      ],
    },
    bounds: [[w, s], [e, n]],
    fitBoundsOptions: { padding: 24 },
    attributionControl: false,
    maxZoom: 20,
    doubleClickZoom: false,
  });
  map.addControl(new NavigationControl({ showCompass: false }), "top-right");
  window.camcensus = Object.assign(window.camcensus || {}, { exposureMap: map });
  map.on("idle", () => {
    container.dataset.mapReady = "1";
    document.body.dataset.mapReady = "1";
  });
  await new Promise((resolve) => map.once("load", resolve));
  say(hint, "Click where the walk starts.");
  map.on("click", (event) => onClick(map, event.lngLat));
  document.getElementById("clear").addEventListener("click", () => {
    state.origin = null;
    state.destination = null;
    state.via = [];
    state.request += 1;
    clearResult(map);
    map.getSource("points").setData(EMPTY);
    say(hint, "Click where the walk starts.");
  });
  for (const id of ["least-watched", "max-detour"]) {
    document.getElementById(id).addEventListener("change", () => update(map));
  }
  document.body.dataset.routeStatus = "none";
}

main();
