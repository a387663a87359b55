"""Camera box sizes: Stanford's annotations beside the synthetic renderer's, on 640 × 640 crops.

Stanford's crops (Sheng, Yao & Goel 2021; ``meta.csv``) are Street View Static API images,
640 × 640; we take them as the API's defaults, 90° field of view at pitch 0 (as
:func:`camcensus.simulate.render.crop_box_sizes` does). The synthetic cameras are measured the
same way: each drawn camera's rendered pixel box projected into a 640 × 640 crop at pitch 0
turned to the camera's heading (:mod:`camcensus.detect.labels`), at 90° and at the tiling's
field of view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from camcensus.detect.labels import CROP_COLUMNS, cameras_from_truth, label_crops

__all__ = ["SIZE_COLUMNS", "size_table", "stanford_sizes", "synthetic_sizes"]

#: Columns of :func:`stanford_sizes` and :func:`synthetic_sizes`.
SIZE_COLUMNS = (
    "source",
    "category",
    "width_px",
    "height_px",
    "sqrt_area_px",
    "aspect",
    "pitch_deg",
)
_CLASS = {"bullet": "directed", "dome": "dome"}


def stanford_sizes(path: str | Path) -> pd.DataFrame:
    """Return Stanford's camera boxes as :data:`SIZE_COLUMNS` (source ``stanford``).

    ``aspect`` is width / height; ``pitch_deg`` the pitch of the box centre in a 90°, pitch-0
    crop (``atan((320 - y_centre) / 320)``).
    """
    from camcensus.simulate.render import stanford_box_sizes

    boxes = stanford_box_sizes(path)
    w = boxes["width_px"].to_numpy(float)
    h = boxes["height_px"].to_numpy(float)
    yc = (boxes["y0"].to_numpy(float) + boxes["y1"].to_numpy(float)) / 2
    return pd.DataFrame(
        {
            "source": "stanford",
            "category": [_CLASS[str(t)] for t in boxes["camera_type"]],
            "width_px": w,
            "height_px": h,
            "sqrt_area_px": np.sqrt(w * h),
            "aspect": w / np.maximum(h, 1e-9),
            "pitch_deg": np.degrees(np.arctan((320 - yc) / 320)),
        },
        columns=list(SIZE_COLUMNS),
    )


def synthetic_sizes(
    *,
    seed: int = 0,
    n_panoramas: int = 40,
    fov_deg: float = 90.0,
    size: int = 640,
) -> pd.DataFrame:
    """Return the synthetic city's drawn, visible cameras measured on ``size``-px crops.

    Renders the first ``n_panoramas`` panoramas with cameras of ``simulate_city(seed)``; each
    camera's box is its rendered pixel box projected into a crop at pitch 0 turned to its
    heading (source ``synthetic``; category ``dome`` | ``directed`` | ``unknown``).
    """
    from camcensus.simulate import simulate_city
    from camcensus.simulate.render import render_panorama
    from camcensus.simulate.scene import panorama_scene

    city = simulate_city(seed)
    frames = []
    pids = city.truth[city.truth["n_cameras"] > 0]["PanoramaId"].astype(str)
    for pid in pids.iloc[:n_panoramas]:
        r = render_panorama(panorama_scene(city, pid, seed=seed))
        visible = r.truth[r.truth["visible"].astype(bool)]
        cams = cameras_from_truth(
            visible, panorama_id=pid, panorama_heading_deg=r.heading_deg, width=r.width,
            height=r.height,
        )  # fmt: skip
        if cams.empty:
            continue
        crops = pd.DataFrame(
            [(pid, h, 0.0, fov_deg, size, size) for h in cams["heading_deg"]],
            columns=list(CROP_COLUMNS),
        )
        ann = label_crops(cams, crops).annotations
        # Each camera in its own crop (image i + 1 looks at camera i).
        own = ann[ann["camera_id"].to_numpy() == cams["camera_id"].to_numpy()[ann["image_id"] - 1]]
        pitch = cams.set_index("camera_id").loc[own["camera_id"], "pitch_deg"].to_numpy(float)
        w, h = own["w"].to_numpy(float), own["h"].to_numpy(float)
        frames.append(
            pd.DataFrame(
                {
                    "source": "synthetic",
                    "category": own["category"].to_numpy(),
                    "width_px": w,
                    "height_px": h,
                    "sqrt_area_px": np.sqrt(w * h),
                    "aspect": w / np.maximum(h, 1e-9),
                    "pitch_deg": pitch,
                },
                columns=list(SIZE_COLUMNS),
            )
        )
    return (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(SIZE_COLUMNS))
    )


def size_table(
    *frames: pd.DataFrame,
    quantiles: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 0.9),
    measures: Sequence[str] = ("sqrt_area_px", "aspect"),
) -> pd.DataFrame:
    """Return quantiles of each measure by source and category, side by side.

    One row per (measure, category, source) with ``n`` and a column per quantile (``q10``,
    ``q25``, ...); categories ``directed`` and ``dome`` (Stanford's classes) and ``all``.
    """
    both = pd.concat(frames, ignore_index=True)
    rows = []
    for measure in measures:
        for category in ("directed", "dome", "all"):
            for source, g in both.groupby("source", sort=True):
                sel = g if category == "all" else g[g["category"] == category]
                values = sel[measure].to_numpy(float)
                row: dict[str, object] = {
                    "measure": measure,
                    "category": category,
                    "source": source,
                    "n": len(values),
                }
                for q in quantiles:
                    name = f"q{round(q * 100):02d}"
                    row[name] = float(np.quantile(values, q)) if len(values) else math.nan
                rows.append(row)
    return pd.DataFrame(rows)
