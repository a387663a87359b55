// The progress map: MapLibre with a plain background and one circle layer of the project's
// panoramas coloured by status (no tile server, no glyphs, no remote request of any kind).

import { LngLatBounds, Map as MapLibreMap, NavigationControl } from "../vendor/maplibre-gl/maplibre-gl.mjs";
import { api } from "./common.js";

/** The circle colour of a panorama: problem > disagreement > done > in progress > to do. */
export const STATUS_COLOUR = [
  "case",
  [">", ["coalesce", ["get", "problems"], 0], 0], "#d7191c",
  ["all", ["==", ["get", "status"], "done"], ["==", ["get", "agreement"], "disagree"]], "#7b3294",
  ["==", ["get", "status"], "done"], "#1a9850",
  ["==", ["get", "status"], "in_progress"], "#f0a202",
  "#9aa3ad",
];

/** Return the project's progress GeoJSON. */
export function progressData(project) {
  return api("GET", `/api/projects/${encodeURIComponent(project)}/progress.geojson`);
}

function bounds(data) {
  const b = new LngLatBounds();
  for (const f of data.features || []) {
    if (f.geometry && Array.isArray(f.geometry.coordinates)) b.extend(f.geometry.coordinates);
  }
  if (b.isEmpty()) return null;
  const sw = b.getSouthWest();
  const ne = b.getNorthEast();
  const pad = 0.0005;
  return [[sw.lng - pad, sw.lat - pad], [ne.lng + pad, ne.lat + pad]];
}

/** Show the progress map of `project` in `container`; resolve with the map once loaded. */
export async function progressMap(container, project, { interactive = true } = {}) {
  const data = await progressData(project);
  const box = bounds(data);
  const map = new MapLibreMap({
    container,
    style: {
      version: 8,
      sources: { panoramas: { type: "geojson", data } },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#e8ecef" } },
        {
          id: "panoramas",
          type: "circle",
          source: "panoramas",
          paint: {
            "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 3, 16, 7, 19, 10],
            "circle-color": STATUS_COLOUR,
            "circle-stroke-color": "#1b1f24",
            "circle-stroke-width": 1,
          },
        },
      ],
    },
    ...(box ? { bounds: box, fitBoundsOptions: { padding: 24 } } : { center: [0, 0], zoom: 1 }),
    attributionControl: false,
    interactive,
    maxZoom: 20,
  });
  if (interactive) map.addControl(new NavigationControl({ showCompass: false }), "top-right");
  map.on("idle", () => {
    container.dataset.mapReady = "1";
    document.body.dataset.mapReady = "1";
  });
  await new Promise((resolve) => map.once("load", resolve));
  return map;
}
