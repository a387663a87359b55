"""From volunteers' submissions to one row per panorama, and the census summary tables.

Reproduces Amnesty's ``process_full_data.ipynb`` (methodology note, "Aggregation"):
intersections sharing a Street View panorama are merged; panoramas seen by fewer than
``decoders`` volunteers are dropped (counted); exactly ``decoders`` submissions are kept per
panorama (or, with ``decoders="all"``, every answer a panorama got, as adaptive redundancy
gives 2, 3, 4 or 5); each category's count is the median of theirs, with an agreement class;
totals are the *sum of per-category medians*, never the median of the sums (conservative: it favours
undercounts).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from camcensus import settings
from camcensus._errors import InputError, Ledger, Problem
from camcensus._geo import locate_points
from camcensus.io.decode import ATTACHMENTS, CATEGORIES, POLE_TYPES

__all__ = [
    "NO_BOROUGH",
    "add_totals",
    "aggregate_submissions",
    "agreement_class",
    "assign_boroughs",
    "decoded_answers",
    "has_zero_rows",
    "median_of_k",
    "summary_tables",
]

Pick = Literal["random", "first"]
#: Row label of :func:`summary_tables` for panoramas without a borough.
NO_BOROUGH = "(no borough)"
_BOROUGH_ALIASES = {"The Bronx": "Bronx"}


def median_of_k(values: np.ndarray) -> np.ndarray:
    """Return the median over the last axis (middle value for odd k, mean of the two for even)."""
    out: np.ndarray = np.median(np.asarray(values, dtype="float64"), axis=-1)
    return out


def agreement_class(values: np.ndarray) -> np.ndarray:
    """Return Amnesty's agreement class of each row of k counts.

    ``Unanimous`` when all k agree, ``All disagree`` when all differ, otherwise ``2 vs 1``
    (for k = 3; for other k the middle class means "some agree").
    """
    v = np.sort(np.asarray(values), axis=-1)
    distinct = 1 + np.sum(np.diff(v, axis=-1) != 0, axis=-1)
    k = v.shape[-1]
    out = np.full(distinct.shape, "2 vs 1", dtype=object)
    out[distinct == 1] = "Unanimous"
    out[(distinct == k) & (k > 1)] = "All disagree"
    return out


def _stable_key(seed: int, parts: pd.DataFrame) -> np.ndarray:
    """Return a uniform pseudo-random uint64 per row that depends only on its content."""
    # An empty cell (an empty DecoderId, say) hashes as a marker no text cell holds; pandas
    # keeps NaN through astype(str), which "|".join cannot take.
    cells = parts.astype(object).where(parts.notna(), "\x00NA").astype(str)
    text = cells.agg("|".join, axis=1)
    salt = str(int(seed)).encode()
    return np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8, key=salt).digest(), "big")
            for t in text
        ),
        dtype=np.uint64,
        count=len(text),
    )


def decoded_answers(
    submissions: pd.DataFrame,
    intersections: pd.DataFrame,
    *,
    ledger: Ledger | None = None,
    stage: str = "aggregate",
) -> pd.DataFrame:
    """Return the submissions that count, one look per decoder and panorama, with ``PanoramaId``.

    Left out and counted in ``ledger``: a duplicated ``SubmissionId``, a decoder's second
    submission of an intersection, an ``IntersectionId`` not in ``intersections``, and a
    decoder's second look at a panorama that two intersections share (first kept). The rows
    keep their file order in ``_order``. :func:`aggregate_submissions` aggregates these.
    """
    ledger = ledger if ledger is not None else Ledger()
    sub = submissions.reset_index(drop=True).copy()
    sub["_order"] = np.arange(len(sub))

    # A submission listed twice (same id), or one decoder submitting one intersection twice.
    if "SubmissionId" in sub.columns:
        dup = sub["SubmissionId"].notna() & sub.duplicated("SubmissionId", keep="first")
        ledger.exclude(stage, "duplicated SubmissionId (first row kept)", int(dup.sum()))
        sub = sub.loc[~dup]
    if "DecoderId" in sub.columns:
        dup = sub["DecoderId"].notna() & sub.duplicated(["DecoderId", "IntersectionId"])
        ledger.exclude(
            stage, "decoder submitted the same intersection twice (first kept)", int(dup.sum())
        )
        sub = sub.loc[~dup]

    inter = intersections[["IntersectionId", "PanoramaId"]]
    sub = sub.merge(inter, on="IntersectionId", how="left", validate="many_to_one")
    unknown = sub["PanoramaId"].isna()
    ledger.exclude(stage, "IntersectionId not in intersections.csv", int(unknown.sum()))
    sub = sub.loc[~unknown]
    # Intersections sharing a panorama show one decoder the same image twice: one look only,
    # or the "median of 3" would count that volunteer twice.
    if "DecoderId" in sub.columns:
        sub = sub.sort_values("_order", kind="stable")
        dup = sub["DecoderId"].notna() & sub.duplicated(["DecoderId", "PanoramaId"])
        ledger.exclude(
            stage,
            "decoder submitted the same panorama twice, via two intersections sharing it "
            "(first kept)",
            int(dup.sum()),
        )
        sub = sub.loc[~dup]

    return sub


def aggregate_submissions(
    submissions: pd.DataFrame,
    intersections: pd.DataFrame,
    panoramas: pd.DataFrame | None = None,
    *,
    boroughs: gpd.GeoDataFrame | None = None,
    decoders: int | Literal["all"] | None = None,
    pick: Pick = "random",
    seed: int | None = None,
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Aggregate raw submissions into one row per panorama.

    Parameters
    ----------
    submissions
        From :func:`camcensus.io.decode.submissions_from_csv` (``counts.csv``).
    intersections
        From :func:`camcensus.io.decode.raw_intersections_from_csv` (``intersections.csv``).
    panoramas
        From :func:`camcensus.io.decode.panoramas_from_csv`: the panorama's own coordinates.
        Without it the *requested* coordinates of the intersections are used (noted).
    boroughs
        Borough polygons; each panorama gets the borough its point falls in (see
        :func:`assign_boroughs`: a panorama in none is kept with no ``BoroName`` and counted).
        Without it, ``intersections.Borough`` is used.
    decoders
        Submissions kept per panorama (Amnesty: 3); panoramas with fewer are dropped, counted.
        One decoder counts once per panorama: a second submission of the same decoder on the
        same panorama (via two intersections sharing it) is dropped and counted, first kept.
        ``"all"``: every answer a panorama got (each decoder once), whatever their number (a
        panorama of a project with adaptive redundancy legitimately has 2, 4 or 5); the median
        and the agreement class are over all of them (even counts: mean of the two middle
        values; see :func:`agreement_class` for k other than 3); only panoramas with no
        answer are left out (counted); ``pick`` and ``seed`` play no part.
    pick
        ``"random"``: a seeded uniform choice that does not depend on row order (the key of a
        submission is a hash of seed, panorama and submission). ``"first"``: the first rows in
        file order, as Amnesty's notebook did.
    seed
        Seed of the random choice.
    ledger
        Receives every exclusion.

    Returns
    -------
    geopandas.GeoDataFrame
        RangeIndex, sorted by ``PanoramaId``; ``PanoramaId``, ``<category>_median`` and
        ``<category>_agreement`` for each category present, ``n_submissions`` (before picking),
        ``BoroName``, ``ImageDate``, point geometry (EPSG:4326).
    """
    ledger = ledger if ledger is not None else Ledger()
    stage = "aggregate"
    decoders = settings.get_int("decoders") if decoders is None else decoders
    seed = settings.get_int("seed") if seed is None else seed
    if pick not in ("random", "first"):
        raise ValueError(f"pick must be 'random' or 'first', not {pick!r}")
    use_all = isinstance(decoders, str)
    if isinstance(decoders, str) and decoders != "all":
        raise ValueError(f"decoders must be a whole number >= 1 or 'all', not {decoders!r}")
    need = 1 if isinstance(decoders, str) else decoders
    if need < 1:
        raise ValueError("decoders must be at least 1")
    cats = [c for c in CATEGORIES if c in submissions.columns]
    sub = decoded_answers(submissions, intersections, ledger=ledger, stage=stage)

    n_per = sub.groupby("PanoramaId")["_order"].transform("size")
    few = n_per < need
    # Panoramas listed in intersections.csv but never decoded count as seen by fewer, too.
    n_enough = sub.loc[~few, "PanoramaId"].nunique()
    n_few_panos = len(set(intersections["PanoramaId"].dropna()) | set(sub["PanoramaId"])) - n_enough
    if use_all:
        ledger.exclude(stage, "panorama with no decoded submission", n_few_panos)
    else:
        ledger.exclude(stage, f"panorama seen by fewer than {need} decoders", n_few_panos)
        ledger.exclude(
            stage, f"submission on a panorama with fewer than {need} decoders", int(few.sum())
        )
    sub = sub.loc[~few].copy()
    sub["n_submissions"] = n_per[~few].to_numpy()

    if use_all:
        out = _aggregate_all(sub, cats)
    else:
        out = _aggregate_k(sub, cats, need, pick=pick, seed=seed, ledger=ledger)

    meta = intersections.drop_duplicates("PanoramaId").set_index("PanoramaId")
    if "ImageDate" in meta.columns:
        out["ImageDate"] = out["PanoramaId"].map(meta["ImageDate"])

    if panoramas is not None:
        pos = panoramas.set_index("PanoramaId")
        lon = out["PanoramaId"].map(pos["GoogleLong"]).to_numpy(dtype="float64")
        lat = out["PanoramaId"].map(pos["GoogleLat"]).to_numpy(dtype="float64")
    elif {"RequestLat", "RequestLong"} <= set(intersections.columns):
        ledger.note(
            "No panorama_url.csv given: panoramas are placed at the coordinates requested from "
            "Street View (intersections.csv), not where the imagery was taken."
        )
        req = intersections.groupby("PanoramaId")[["RequestLong", "RequestLat"]].mean()
        lon = out["PanoramaId"].map(req["RequestLong"]).to_numpy(dtype="float64")
        lat = out["PanoramaId"].map(req["RequestLat"]).to_numpy(dtype="float64")
    else:
        raise InputError(
            [
                Problem(
                    str(intersections.attrs.get("source", "intersections.csv")),
                    None,
                    "Lat",
                    "no coordinates for the panoramas",
                    "panorama_url.csv (GoogleLat/GoogleLong) or Lat/Long in intersections.csv",
                    "pass --panoramas panorama_url.csv",
                )
            ]
        )
    no_xy = ~np.isfinite(lon) | ~np.isfinite(lat)
    ledger.exclude(stage, "panorama without coordinates in panorama_url.csv", int(no_xy.sum()))
    out = out.loc[~no_xy].reset_index(drop=True)
    gdf = gpd.GeoDataFrame(
        out, geometry=gpd.points_from_xy(lon[~no_xy], lat[~no_xy]), crs="EPSG:4326"
    )
    if boroughs is not None:
        gdf = assign_boroughs(gdf, boroughs, ledger=ledger, stage=stage)
    elif "Borough" in meta.columns:
        gdf["BoroName"] = gdf["PanoramaId"].map(meta["Borough"]).replace(_BOROUGH_ALIASES)
    return gdf


def _aggregate_k(
    sub: pd.DataFrame, cats: list[str], k: int, *, pick: Pick, seed: int, ledger: Ledger
) -> pd.DataFrame:
    """Keep ``k`` submissions per panorama (picked) and aggregate them (Amnesty's way)."""
    stage = "aggregate"
    if pick == "first":
        sub["_key"] = sub["_order"].astype("uint64")
    else:
        id_cols = [c for c in ("SubmissionId", "DecoderId") if c in sub.columns]
        parts = sub[["PanoramaId", "IntersectionId", *id_cols, *cats]]
        sub["_key"] = _stable_key(seed, parts)
    sub = sub.sort_values(["PanoramaId", "_key", "_order"], kind="stable")
    rank = sub.groupby("PanoramaId").cumcount()
    surplus = int((rank >= k).sum())
    ledger.exclude(stage, f"submission beyond the {k} kept per panorama", surplus)
    kept = sub.loc[rank < k]

    pano_ids = kept["PanoramaId"].to_numpy()[::k]
    out = pd.DataFrame({"PanoramaId": pano_ids})
    for c in cats:
        block = kept[c].to_numpy(dtype="float64").reshape(-1, k)
        med = median_of_k(block)
        out[f"{c}_median"] = med.astype("int64") if np.all(med == np.round(med)) else med
        out[f"{c}_agreement"] = agreement_class(block)
    out["n_submissions"] = kept["n_submissions"].to_numpy()[::k]
    return out


def _aggregate_all(sub: pd.DataFrame, cats: list[str]) -> pd.DataFrame:
    """Aggregate every submission of each panorama, whatever their number per panorama."""
    sub = sub.sort_values(["PanoramaId", "_order"], kind="stable")
    ids = sub["PanoramaId"].to_numpy()
    first = np.r_[True, ids[1:] != ids[:-1]] if len(ids) else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(first)
    sizes = np.diff(np.r_[starts, len(ids)])
    out = pd.DataFrame({"PanoramaId": ids[starts]})
    for c in cats:
        values = sub[c].to_numpy(dtype="float64")
        med = np.zeros(len(starts))
        agreement = np.empty(len(starts), dtype=object)
        # One block per number of answers: the same median and class as k fixed.
        for n in np.unique(sizes):
            at = np.flatnonzero(sizes == n)
            block = values[starts[at, None] + np.arange(n)]
            med[at] = median_of_k(block)
            agreement[at] = agreement_class(block)
        out[f"{c}_median"] = med.astype("int64") if np.all(med == np.round(med)) else med
        out[f"{c}_agreement"] = agreement
    out["n_submissions"] = sizes
    return out


def assign_boroughs(
    gdf: gpd.GeoDataFrame,
    boroughs: gpd.GeoDataFrame,
    *,
    ledger: Ledger | None = None,
    stage: str = "assign borough",
) -> gpd.GeoDataFrame:
    """Set ``BoroName`` by the polygon each point falls in (vectorised spatial join).

    Every point is kept, as Amnesty kept them in the citywide totals: a point in no polygon
    gets ``BoroName`` None (shown as :data:`NO_BOROUGH` by :func:`summary_tables`); a point in
    two polygons (on a shared border, or where polygons overlap) goes to the first of them.
    Both are counted in ``ledger`` as flagged, not excluded. Returns a new frame with a fresh
    RangeIndex.
    """
    if gdf.crs is None or boroughs.crs is None:
        raise ValueError("both frames need a CRS. Fix: set_crs(...) on the one that lacks it.")
    pts = np.asarray(gdf.geometry.to_crs(boroughs.crs).values)
    located = locate_points(pts, np.asarray(boroughs.geometry.values))
    owner = located.owner
    inside = owner >= 0
    names = np.full(len(gdf), None, dtype=object)
    names[inside] = boroughs["BoroName"].to_numpy()[owner[inside]]
    if ledger is not None:
        ledger.flag(
            stage,
            "panorama(s) in no borough polygon",
            int((~inside).sum()),
            kept_as=f"in citywide totals under {NO_BOROUGH!r}",
        )
        ledger.flag(
            stage,
            "panorama(s) in two borough polygons (shared border or overlap)",
            int(located.on_border),
            kept_as="each in the first polygon only",
        )
    out = gdf.copy()
    out["BoroName"] = names
    return out.reset_index(drop=True)


def add_totals(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Add ``total_cameras``: the sum of the per-attachment medians present (never a median of
    sums). Returns the frame."""
    present = [f"{a}_median" for a in ATTACHMENTS if f"{a}_median" in gdf.columns]
    gdf["total_cameras"] = gdf[present].sum(axis=1) if present else np.nan
    return gdf


def has_zero_rows(gdf: pd.DataFrame) -> bool:
    """Return whether the panoramas include ones with no camera (a complete census).

    Some published copies list only intersections with at least one camera; per-intersection
    ratios cannot be computed from those.
    """
    col = "n_cameras_median" if "n_cameras_median" in gdf.columns else "total_cameras"
    return bool(col in gdf.columns and (gdf[col] == 0).any())


def _with_total(df: pd.DataFrame, label: str = "Total") -> pd.DataFrame:
    total = df.sum(numeric_only=True).to_frame().T
    total.index = [label]
    return pd.concat([df, total])


def summary_tables(
    gdf: pd.DataFrame, *, by: str = "BoroName", ledger: Ledger | None = None
) -> dict[str, pd.DataFrame]:
    """Return the census summary tables of Amnesty's ``aggregate_counts_over_intersections``.

    Keys (each a DataFrame indexed by ``by`` plus a ``Total`` row), present when the columns
    they need are: ``cameras_by_attachment`` (cameras attached to street furniture, buildings,
    unknown; their sum; percent public), ``pole_camera_types`` (dome, bullet, unknown),
    ``intersections`` (panoramas; with at least one camera, one public camera, one public dome),
    and ``cameras_per_intersection`` (pooled ratios: the ``Total`` row divides the city's sums,
    unlike the published table, whose "Total" summed the boroughs' ratios).

    Panoramas with no ``by`` value (blank, or outside every borough polygon) are kept in a
    :data:`NO_BOROUGH` row, after the boroughs and included in ``Total``, so the tables add up
    to the headline numbers; ``ledger`` gets a note saying how many. Without a ``by`` column
    at all, every panorama is in that row.
    """
    df = pd.DataFrame(gdf)
    if "total_cameras" not in df.columns:
        df = pd.DataFrame(add_totals(gpd.GeoDataFrame(df)))
    if by in df.columns:
        blank = df[by].isna() | (df[by].astype(str).str.strip() == "")
    else:
        blank = pd.Series(True, index=df.index)
    if blank.any():
        if ledger is not None:
            ledger.note(
                f"{int(blank.sum()):,} panorama(s) have no {by}: they are in the summary tables' "
                f"{NO_BOROUGH!r} row and in every total."
            )
        df[by] = df[by].where(~blank, NO_BOROUGH) if by in df.columns else NO_BOROUGH
    # Boroughs sorted, the row of panoramas without one last.
    order = sorted(set(df[by]) - {NO_BOROUGH}) + ([NO_BOROUGH] if blank.any() else [])
    df[by] = pd.Categorical(df[by], categories=order)
    g = df.groupby(by, sort=True, observed=True)
    tables: dict[str, pd.DataFrame] = {}
    att = [f"{a}_median" for a in ATTACHMENTS if f"{a}_median" in df.columns]
    if att:
        t = g[att].sum().rename(columns=lambda c: c.removesuffix("_median"))
        t["total"] = t.sum(axis=1)
        t = _with_total(t)
        if "attached_street" in t.columns:
            t["pct_public"] = 100 * t["attached_street"] / t["total"].where(t["total"] > 0)
        tables["cameras_by_attachment"] = t
    types = [f"{p}_median" for p in POLE_TYPES if f"{p}_median" in df.columns]
    if types:
        t = g[types].sum().rename(columns=lambda c: c.removesuffix("_median"))
        tables["pole_camera_types"] = _with_total(t)
    counts = pd.DataFrame({"panoramas": g.size()})
    any_col = "n_cameras_median" if "n_cameras_median" in df.columns else "total_cameras"
    counts["with_camera"] = g[any_col].apply(lambda s: int((s > 0).sum()))
    if "attached_street_median" in df.columns:
        counts["with_public"] = g["attached_street_median"].apply(lambda s: int((s > 0).sum()))
    if "type_dome_median" in df.columns:
        counts["with_public_dome"] = g["type_dome_median"].apply(lambda s: int((s > 0).sum()))
    tables["intersections"] = _with_total(counts).astype("int64")
    if has_zero_rows(df):
        cams = pd.DataFrame({"cameras": g["total_cameras"].sum(), "panoramas": g.size()})
        if "attached_street_median" in df.columns:
            cams["public_cameras"] = g["attached_street_median"].sum()
        cams = _with_total(cams)
        t = pd.DataFrame(index=cams.index)
        t["cameras_per_intersection"] = cams["cameras"] / cams["panoramas"]
        if "public_cameras" in cams.columns:
            t["public_per_intersection"] = cams["public_cameras"] / cams["panoramas"]
        tables["cameras_per_intersection"] = t
    return tables
