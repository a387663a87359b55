"""``camcensus audit``: the same census report for any city, from a camera inventory.

cameras (city lists, OpenStreetMap, any camera file) + tracts + an ACS table (+ districts,
+ stop or arrest records) -> the stages of :mod:`camcensus.stages` (footprints under any
coverage model, per-tract measures, census join) -> the placement model and disparity
statistics of :mod:`camcensus.stats` (grouped by district instead of borough) -> cameras per
1,000 residents by tract race composition (:mod:`camcensus.stats.rates`) -> the report.

Rules this module holds (docs/audit.md):

* **Boundary tie-break.** A camera exactly on the border of several tracts (street centre
  lines are tract borders in US cities: 15 of Baltimore's 614 CitiWatch cameras) belongs to
  the tract with the smallest GEOID. Tracts are sorted by GEOID before anything is located,
  and every locator here gives a border point to the lower index, so the rule holds whatever
  the order of the tract file.
* **Cameras off the map.** A camera farther than ``snap_m`` from every tract (a geocoding
  error, or a camera of another place) is excluded and counted with its distance.
* **Machine-only and unconfirmed cameras.** Rows whose ``evidence`` is ``machine only`` (or
  detector rows without evidence: :func:`camcensus.report.inventory.machine_only_rows`) or
  ``unconfirmed`` (volunteers below the support rule) are excluded and counted: a machine tag
  alone never settles a camera (camcensus.locate writes neither to cameras.gpkg).
* **Failed geocodes in records.** Stop or arrest records at a whole-degree point (both
  coordinates integers, e.g. Baltimore's 39, −77) are a geocoder's fallback, not a place:
  excluded and counted, as are records without coordinates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from camcensus import settings, stages
from camcensus._errors import InputError, Ledger, OptionError, Problem
from camcensus._geo import locate_points, measurement_crs, metres_per_unit
from camcensus.coverage import unit_area
from camcensus.io import census as io_census
from camcensus.io._validate import read_text_table
from camcensus.pipeline import CensusResult, Options
from camcensus.report.inventory import camera_evidence, machine_only_rows
from camcensus.stats import models, rates
from camcensus.stats._result import Estimate, ModelResult

__all__ = [
    "CAVEAT",
    "AuditSummary",
    "assign_tracts",
    "audit_report",
    "read_cameras",
    "records_from_points",
    "run_audit",
]

Progress = Callable[[str], None]

#: What an official list can and cannot say (shown with every audit figure).
CAVEAT = (
    "An official camera list covers only the cameras a city chose to publish: private "
    "cameras, cameras of other agencies and cameras added or removed since the list was "
    "published are missing, and a list may favour some neighbourhoods. The rates below "
    "describe the published list, not every camera in the city."
)
#: Coverage models ``--model`` accepts.
AUDIT_MODELS = ("disc", "fov", "occluded", "pixel_density")
_LAT = ("latitude", "lat", "y")
_LON = ("longitude", "lon", "long", "lng", "x")


@dataclass(frozen=True)
class AuditSummary:
    """The audit's own figures, beside the census stages' (shown by the report's audit
    section and written to ``results.json`` under ``audit``)."""

    city: str
    race: str
    race_label: str
    income: str
    vintage: io_census.VintageCheck
    boundary: dict[str, Any]
    rates: pd.DataFrame
    rates_effective: pd.DataFrame
    ratio: Estimate
    placement: ModelResult
    placement_rate: ModelResult
    threshold: float
    model: str
    caveat: str = CAVEAT
    records: dict[str, Any] | None = None
    excluded_from_rates: dict[str, float] = field(default_factory=dict)
    camera_evidence: dict[str, int] | None = None

    def to_dict(self, tracts_file: str = "tracts", acs_file: str = "ACS table") -> dict[str, Any]:
        """Return a JSON-ready dict of every figure."""
        from dataclasses import asdict

        from camcensus.io.formats import json_safe

        out = {
            "city": self.city,
            "race_definition": self.race,
            "race_definition_text": self.race_label,
            "median_income_source": self.income,
            "vintage": {
                "tracts": self.vintage.tracts,
                "acs_rows": self.vintage.acs_rows,
                "matched": self.vintage.matched,
                "tracts_without_acs": list(self.vintage.tracts_without_acs),
                "acs_without_tract": list(self.vintage.acs_without_tract),
                "mismatch": self.vintage.mismatch,
                "message": self.vintage.message(tracts_file, acs_file),
            },
            "boundary": self.boundary,
            "rates_per_1000": self.rates.to_dict("records"),
            "effective_rates_per_1000": self.rates_effective.to_dict("records"),
            "rate_ratio": asdict(self.ratio),
            "placement_model": self.placement.to_dict(),
            "placement_rate_model": self.placement_rate.to_dict(),
            "threshold": self.threshold,
            "coverage_model": self.model,
            "caveat": self.caveat,
            "records": self.records,
            "excluded_from_rates": self.excluded_from_rates,
            "camera_evidence": self.camera_evidence,
        }
        safe: dict[str, Any] = json_safe(out)
        return safe


def _noop(_: str) -> None:
    return None


# --- cameras -----------------------------------------------------------------------------


def _column(df: pd.DataFrame, names: Sequence[str]) -> str | None:
    lowered = {str(c).strip().lower(): c for c in df.columns}
    for n in names:
        if n in lowered:
            return str(lowered[n])
    return None


def read_cameras(
    paths: Sequence[str | Path],
    *,
    source_format: str = "auto",
    mapping: str | Path | None = None,
    ledger: Ledger | None = None,
) -> gpd.GeoDataFrame:
    """Read one or more camera files into one ``cameras`` table (DESIGN.md).

    Every format camcensus reads (:func:`camcensus.io.camera_files.read_cameras_file`:
    OpenStreetMap, the city lists of :data:`camcensus.io.citylists.CITY_FORMATS` or any list
    with a ``mapping`` file, camera files); every record left out is counted in ``ledger``.
    """
    from camcensus.io.camera_files import canonical_cameras, read_cameras_file

    ledger = ledger if ledger is not None else Ledger()
    if not paths:
        raise OptionError("give at least one camera file: --cameras PATH")
    frames = [
        read_cameras_file(p, source_format=source_format, ledger=ledger, mapping=mapping)
        for p in paths
    ]
    gdf = pd.concat([f.to_crs("EPSG:4326") for f in frames], ignore_index=True)
    out: gpd.GeoDataFrame = canonical_cameras(gpd.GeoDataFrame(gdf, crs="EPSG:4326"))
    if out["camera_id"].duplicated().any():
        raise InputError(
            [
                Problem(
                    ", ".join(map(str, paths)),
                    None,
                    "camera_id",
                    "the same camera_id in two files",
                    "each camera once",
                    "give each file once; merge overlapping sources first (camcensus.merge)",
                )
            ]
        )
    return out


# --- tracts and the tie-break rule -----------------------------------------------------------


def assign_tracts(
    gdf_points: gpd.GeoDataFrame | gpd.GeoSeries, gdf_tracts: gpd.GeoDataFrame
) -> tuple[pd.Series, np.ndarray]:
    """Return each point's tract GEOID by the audit's tie-break rule, and how many tracts it
    touches.

    A point inside one tract belongs to it; a point on the border of several tracts belongs to
    the one with the smallest GEOID; a point in no tract gets NaN. Located in the tracts' own
    CRS (no reprojection can move a point off a border).

    Returns
    -------
    tuple
        ``GEOID`` per point (object Series, same index as the points) and the number of tracts
        each point intersects (0, 1, 2, ...).
    """
    pts = gdf_points.geometry if isinstance(gdf_points, gpd.GeoDataFrame) else gdf_points
    pts = pts.to_crs(gdf_tracts.crs)
    order = np.argsort(gdf_tracts["GEOID"].astype(str).to_numpy(), kind="stable")
    polys = np.asarray(gdf_tracts.geometry.values)[order]
    ids = gdf_tracts["GEOID"].astype(str).to_numpy()[order]
    geoms = np.asarray(pts.values)
    owner = locate_points(geoms, polys).owner
    ip, _ = shapely.STRtree(polys).query(geoms, predicate="intersects")
    touches = np.bincount(ip, minlength=len(geoms))
    out = pd.Series([ids[o] if o >= 0 else np.nan for o in owner], index=pts.index, dtype=object)
    return out, touches


def _districts_of_tracts(
    gdf_tracts: gpd.GeoDataFrame, path: str | Path, column: str | None, ledger: Ledger
) -> gpd.GeoDataFrame:
    """Give each tract the district (polygon) holding its representative point."""
    districts = io_census.boroughs_from_file(path, name=column or "district", ledger=ledger)
    crs = measurement_crs(gdf_tracts)
    pts = shapely.point_on_surface(np.asarray(gdf_tracts.to_crs(crs).geometry.values))
    owner = locate_points(pts, np.asarray(districts.to_crs(crs).geometry.values)).owner
    names = districts["BoroName"].to_numpy()
    out = gdf_tracts.copy()
    out["borough"] = [names[o] if o >= 0 else "(no district)" for o in owner]
    n_out = int((owner < 0).sum())
    if n_out:
        ledger.note(
            f"{n_out} tract(s) lie in no district of {Path(path).name} (district '(no district)')."
        )
    return out


# --- stop / arrest records ----------------------------------------------------------------


def records_from_points(
    path: str | Path,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    ledger: Ledger,
    id_column: str | None = None,
    date_column: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read point records (stops, arrests) and count them per tract.

    Records without coordinates, at a whole-degree point (a geocoder's fallback, e.g.
    Baltimore's 39, −77) or in no tract are excluded and counted; a repeated record id is
    kept once (the repeats counted). All records form one period, labelled with its first
    year in the models' ``year`` column (the period is said in a note).

    Returns
    -------
    tuple
        The long table ``GEOID, year, count`` the disparity models take, and a summary
        (rows, excluded by reason, period, records per tract located).
    """
    path = Path(path)
    df = read_text_table(path)
    lat_col, lon_col = _column(df, _LAT), _column(df, _LON)
    if lat_col is None or lon_col is None:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    "no latitude/longitude columns",
                    "records with Latitude and Longitude columns (WGS84)",
                    "rename the coordinate columns to Latitude and Longitude",
                )
            ]
        )
    stage = f"records ({path.name})"
    summary: dict[str, Any] = {"file": str(path), "rows": len(df)}
    id_col = id_column or _column(df, ("arrest", "id", "stop_id", "record_id"))
    keep = pd.Series(True, index=df.index)
    if id_col is not None:
        ids = df[id_col].astype("string").str.strip()
        rep = ids.notna() & (ids != "") & ids.duplicated()
        ledger.exclude(stage, f"repeated {id_col} (kept once)", int(rep.sum()))
        summary["repeated_ids"] = int(rep.sum())
        keep &= ~rep
    lat = pd.to_numeric(df[lat_col], errors="coerce")
    lon = pd.to_numeric(df[lon_col], errors="coerce")
    blank = keep & (lat.isna() | lon.isna())
    ledger.exclude(stage, "no coordinates", int(blank.sum()))
    keep &= ~blank
    whole = keep & (lat == np.round(lat)) & (lon == np.round(lon))
    if whole.any():
        where = ", ".join(
            f"({a:g}, {b:g})" for a, b in sorted(set(zip(lat[whole], lon[whole], strict=True)))
        )
        ledger.exclude(stage, f"failed geocode: a whole-degree point {where}", int(whole.sum()))
    summary["no_coordinates"] = int(blank.sum())
    summary["failed_geocode"] = int(whole.sum())
    keep &= ~whole
    d = df.loc[keep]
    pts = gpd.GeoSeries(gpd.points_from_xy(lon[keep], lat[keep]), index=d.index, crs="EPSG:4326")
    geoid, _ = assign_tracts(pts, gdf_tracts)
    outside = geoid.isna()
    ledger.exclude(stage, "in no tract", int(outside.sum()))
    summary["outside_tracts"] = int(outside.sum())
    date_col = date_column or _column(
        df, ("arrestdate", "date", "stop_date", "stop_frisk_date", "occurred_date")
    )
    year = 0
    if date_col is not None:
        dates = pd.to_datetime(d[date_col], errors="coerce", format="mixed")
        if dates.notna().any():
            first, last = dates.min(), dates.max()
            year = int(first.year)
            summary["period"] = [first.date().isoformat(), last.date().isoformat()]
            if first.year != last.year:
                ledger.note(
                    f"{path.name}: the records run from {first.date()} to {last.date()}; the "
                    f"models treat them as one period, labelled {year}."
                )
    located = geoid.loc[~outside]
    counts = located.value_counts().rename_axis("GEOID").reset_index(name="count")
    counts["year"] = year
    summary["located"] = len(located)
    return counts[["GEOID", "year", "count"]], summary


# --- the audit -------------------------------------------------------------------------------


def _points_for_map(gdf_cameras: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one row per camera location for the map (``total_cameras`` at the point; the
    map's "public" layer is ``attached_street_median``: every audited camera counts)."""
    wkb = shapely.to_wkb(np.asarray(gdf_cameras.geometry.values))
    key = pd.Series(wkb).factorize()[0]
    first = pd.Series(np.arange(len(key))).groupby(key).first().to_numpy()
    n = np.bincount(key)
    out = gpd.GeoDataFrame(
        {
            "PanoramaId": gdf_cameras["camera_id"].astype(str).to_numpy()[first],
            "total_cameras": n,
            "attached_street_median": n,
        },
        geometry=np.asarray(gdf_cameras.geometry.values)[first],
        crs=gdf_cameras.crs,
    )
    if "district" in gdf_cameras.columns:
        out["BoroName"] = gdf_cameras["district"].to_numpy()[first]
    return out


def run_audit(
    *,
    cameras: Sequence[str | Path],
    tracts: str | Path,
    acs: str | Path,
    districts: str | Path | None = None,
    district_column: str | None = None,
    stops: str | Path | None = None,
    model: str = "disc",
    race: str = "auto",
    acs_columns: Mapping[str, str] | None = None,
    city: str | None = None,
    source_format: str = "auto",
    mapping: str | Path | None = None,
    tracts_layer: str | None = None,
    tracts_crs: str | None = None,
    buildings: str | Path | None = None,
    threshold: float | str = "median",
    permutations: int | None = None,
    reps: int = 2000,
    options: Options | None = None,
    progress: Progress = _noop,
) -> CensusResult:
    """Audit one city's cameras: coverage, census join, placement and disparity statistics.

    Parameters
    ----------
    cameras, source_format, mapping
        Camera files (city lists, OpenStreetMap, camera files), their format and a city
        list's column-mapping file (:func:`read_cameras`).
    tracts
        Census tract polygons (any OGR format) with a GEOID column (any case).
    acs
        ACS tract table (:func:`camcensus.io.census.acs_from_file`).
    districts, district_column
        District polygons and their name column: the placement model and the tables are
        grouped by district (default: the whole city is one district).
    stops
        Point records (stops, arrests) for the stop models (:func:`records_from_points`).
    model
        Coverage model (:data:`AUDIT_MODELS`); ``occluded`` needs ``buildings``.
    race, acs_columns
        Race definition and column names (:func:`~camcensus.io.census.acs_from_file`).
    city
        Name shown in the report (default: the tract file's folder name).
    threshold
        Surveillance level above which a tract counts as highly surveilled in the placement
        model; default ``"median"`` (the median tract), since list densities differ by city.
    reps
        Bootstrap replicates of the rates' intervals (seeded with ``options.seed``).
    """
    options = options or Options()
    if model not in AUDIT_MODELS:
        raise OptionError(f"--model must be one of {', '.join(AUDIT_MODELS)}, not {model!r}")
    if model == "occluded" and buildings is None:
        raise OptionError("--model occluded needs --buildings (building footprints)")
    ledger = Ledger()
    t0 = time.perf_counter()
    city = city or Path(tracts).resolve().parent.name.replace("_", " ").title()
    progress("reading inputs")
    gdf_tracts = io_census.tracts_from_file(
        tracts, layer=tracts_layer, crs=tracts_crs, ledger=ledger, default_borough=city
    )
    # The tie-break rule: tracts in GEOID order, so a border point goes to the smallest GEOID.
    gdf_tracts = gdf_tracts.sort_values("GEOID", kind="stable").reset_index(drop=True)
    inputs = {"tracts": str(tracts), "census": str(acs)}
    if districts is not None:
        gdf_tracts = _districts_of_tracts(gdf_tracts, districts, district_column, ledger)
        inputs["districts"] = str(districts)
    acs_table = io_census.acs_from_file(
        acs, race=race, columns=dict(acs_columns or {}), ledger=ledger
    )
    vintage = io_census.check_tract_vintage(gdf_tracts["GEOID"], acs_table.table.index)
    ledger.note(vintage.message(Path(tracts).name, Path(acs).name))
    ledger.note(f"Race definition: {acs_table.race_label}.")
    gdf_cameras = read_cameras(cameras, source_format=source_format, mapping=mapping, ledger=ledger)
    for i, p in enumerate(cameras):
        inputs[f"cameras_{i + 1}" if len(cameras) > 1 else "cameras"] = str(p)
    n_read = len(gdf_cameras)

    # A machine tag alone never settles a camera, nor does one volunteer below the support
    # rule: machine-only and unconfirmed rows are counted, not audited.
    evidence = camera_evidence(gdf_cameras)
    machine = machine_only_rows(gdf_cameras).to_numpy()
    unconfirmed = (
        (gdf_cameras["evidence"].astype("string") == "unconfirmed").fillna(False).to_numpy(bool)
        if "evidence" in gdf_cameras.columns
        else np.zeros(len(gdf_cameras), dtype=bool)
    )
    if machine.any() or unconfirmed.any():
        if (machine | unconfirmed).all():
            raise InputError(
                [
                    Problem(
                        ", ".join(map(str, cameras)),
                        None,
                        "evidence",
                        f"all {len(machine):,} rows are machine only ({int(machine.sum()):,}: "
                        f"detector tags no volunteer confirmed) or unconfirmed "
                        f"({int(unconfirmed.sum()):,}: volunteers below the support rule)",
                        "at least one human-confirmed camera",
                        "let volunteers verify the machine tags (the platform's verify task) "
                        "and tag more panoramas, then run camcensus locate again",
                    )
                ]
            )
        ledger.exclude(
            "audit cameras",
            "machine only (detector tags no volunteer confirmed: a machine tag alone never "
            "settles a camera)",
            int(machine.sum()),
        )
        ledger.exclude(
            "audit cameras",
            "unconfirmed (fewer volunteers than the support rule, no machine tag)",
            int(unconfirmed.sum()),
        )
        gdf_cameras = gdf_cameras.loc[~(machine | unconfirmed)].reset_index(drop=True)

    # Cameras off the map: farther than snap_m from every tract.
    mcrs = measurement_crs(gdf_tracts)
    mpu = metres_per_unit(mcrs)
    zones = np.asarray(gdf_tracts.to_crs(mcrs).geometry.values)
    cam_pts = np.asarray(gdf_cameras.to_crs(mcrs).geometry.values)
    located = locate_points(cam_pts, zones, snap=options.snap_m / mpu)
    far = located.owner < 0
    if far.any():
        dist_km = shapely.distance(cam_pts[far], shapely.union_all(zones)) * mpu / 1000
        ledger.exclude(
            "audit cameras",
            f"farther than {options.snap_m:g} m from every tract ({dist_km.min():,.1f}–"
            f"{dist_km.max():,.1f} km away: a geocoding error or another place)",
            int(far.sum()),
        )
    gdf_cameras = gdf_cameras.loc[~far].reset_index(drop=True)
    geoid, touches = assign_tracts(gdf_cameras, gdf_tracts)
    gdf_cameras["GEOID"] = geoid.to_numpy()
    district_of = gdf_tracts.set_index("GEOID")["borough"]
    gdf_cameras["district"] = gdf_cameras["GEOID"].map(district_of).fillna("(no district)")
    boundary = {
        "rule": "a camera on the border of several tracts belongs to the smallest GEOID",
        "cameras": len(gdf_cameras),
        "inside_one_tract": int((touches == 1).sum()),
        "on_boundary": int((touches >= 2).sum()),
        "touching_two": int((touches == 2).sum()),
        "touching_three_or_more": int((touches >= 3).sum()),
        "snapped_to_nearest_tract": int((touches == 0).sum()),
    }
    if boundary["on_boundary"]:
        ledger.note(
            f"{boundary['on_boundary']} camera(s) lie exactly on tract borders (street centre "
            f"lines; {boundary['touching_two']} touch two tracts, "
            f"{boundary['touching_three_or_more']} three or more): each is counted once, in "
            "the tract with the smallest GEOID."
        )

    progress("coverage")
    footprint_options: dict[str, Any] = {}
    if buildings is not None:
        footprint_options["buildings"] = io_census.read_vector(buildings)
        inputs["buildings"] = str(buildings)
    cov = stages.cameras_coverage_stage(
        gdf_tracts,
        gdf_cameras,
        radius_m=options.radius_m,
        band_m=options.band_m,
        quad_segs=options.quad_segs,
        snap_m=options.snap_m,
        model=model,
        ledger=ledger,
        **footprint_options,
    )
    # The audit's own note above (tie-break in the tracts' CRS) replaces the measures' one.
    ledger.notes[:] = [n for n in ledger.notes if "on a tract border counted in one" not in n]
    tr = stages.population_stage(
        cov.tracts,
        acs_table.table,
        min_population=options.min_population,
        ledger=ledger,
        tracts_file=str(tracts),
        census_file=str(acs),
    )
    # The counts per tract follow the tie-break in the tracts' own CRS.
    tr["cameras"] = tr["GEOID"].map(gdf_cameras["GEOID"].value_counts()).fillna(0.0)

    progress("rates by race composition")
    has_rate = tr["popn"].fillna(0) > options.min_population
    excluded = {
        "tracts": int((~has_rate).sum()),
        "cameras": float(tr.loc[~has_rate, "cameras"].sum()),
        "residents": float(tr.loc[~has_rate, "popn"].fillna(0).sum()),
    }
    if excluded["cameras"]:
        ledger.note(
            f"{excluded['cameras']:,.0f} camera(s) lie in {excluded['tracts']} tract(s) with at "
            f"most {options.min_population} residents or no ACS row (downtown, parks, "
            "industry): they are on the map but in no rate per resident."
        )
    rated = pd.DataFrame(tr.loc[has_rate]).copy()
    rated["composition"] = rates.race_composition(rated)
    tr["composition"] = rates.race_composition(pd.DataFrame(tr))
    rate_table = rates.rates_by_group(rated, "composition", reps=reps, seed=options.seed)
    eff_table = rates.rates_by_group(
        rated, "composition", count="eff_cameras", reps=reps, seed=options.seed
    )
    ratio = rates.rate_ratio(
        rated, "composition", "majority Black", "majority White", reps=reps, seed=options.seed
    )

    progress("placement model")
    table = models.model_table(
        pd.DataFrame(tr), None, min_population=options.min_population, ledger=Ledger()
    )
    thr = (
        float(np.round(table["surv_place"].median(), 2))
        if threshold == "median"
        else float(threshold)
    )
    citywide = table.assign(borough=city)
    placement = models.placement_logit(citywide, threshold=thr)
    placement_rate = models.placement_rate(citywide)

    disparity = None
    records_summary = None
    if stops is not None:
        progress("records")
        stop_counts, records_summary = records_from_points(stops, gdf_tracts, ledger=ledger)
        inputs["stops"] = str(stops)
    else:
        stop_counts = None
    from camcensus.stats.disparity import run_disparity
    from camcensus.studies.generic import design_for_city

    progress("disparity models")
    disparity = run_disparity(
        tr,
        stop_counts,
        threshold=thr,
        min_population=options.min_population,
        permutations=settings.get_int("permutations") if permutations is None else permutations,
        seed=options.seed,
        ledger=ledger,
        design=design_for_city(city),
    )
    summary = AuditSummary(
        city=city,
        race=acs_table.race,
        race_label=acs_table.race_label,
        income=acs_table.income,
        vintage=vintage,
        boundary=boundary,
        rates=rate_table,
        rates_effective=eff_table,
        ratio=ratio,
        placement=placement,
        placement_rate=placement_rate,
        threshold=thr,
        model=model,
        records=records_summary,
        excluded_from_rates=excluded,
        camera_evidence=evidence,
    )
    numbers = _numbers(n_read, gdf_cameras, cov, tr, options.radius_m)
    ledger.note(CAVEAT)
    return CensusResult(
        title=f"Camera audit: {city}",
        panoramas=_points_for_map(gdf_cameras),
        tracts=tr,
        coverage=cov.union,
        measure_crs=cov.measure_crs,
        tables={},
        numbers=numbers,
        ledger=ledger,
        options=options,
        inputs=inputs,
        timings={"total": time.perf_counter() - t0},
        disparity=disparity,
        cameras=gdf_cameras,
        footprints=cov.footprints,
        study_area=np.ones(len(tr), dtype=bool),
        audit=summary,
    )


def _numbers(
    n_read: int,
    gdf_cameras: gpd.GeoDataFrame,
    cov: stages.CoverageResult,
    tr: gpd.GeoDataFrame,
    radius_m: float,
) -> dict[str, Any]:
    """Return the headline figures of an audit."""
    mpu = metres_per_unit(cov.measure_crs)
    land = float(tr["area_m2"].sum())
    covered = float(shapely.area(cov.union)) * mpu**2
    one = unit_area(cov.footprints) if len(cov.footprints) else 0.0
    inside = float(tr["eff_cameras"].sum()) * one * mpu**2
    pop = tr["popn"].fillna(0)
    return {
        "cameras_read": n_read,
        "audited_cameras": len(gdf_cameras),
        "camera_locations": int(pd.Series(shapely.to_wkb(gdf_cameras.geometry.values)).nunique()),
        "tracts": len(tr),
        "tracts_with_camera": int((tr["cameras"] > 0).sum()),
        "residents": float(pop.sum()),
        "residents_in_tracts_with_camera": float(pop[tr["cameras"] > 0].sum()),
        "cameras_per_1000_residents": len(gdf_cameras) / float(pop.sum()) * 1000
        if pop.sum() > 0
        else None,
        "coverage_km2": covered / 1e6,
        "land_km2": land / 1e6,
        "covered_land_km2": inside / 1e6,
        "covered_land_share": inside / land if land > 0 else None,
        "radius_m": radius_m,
    }


def audit_report(out: str | Path, *, force: bool = False, **kwargs: Any) -> CensusResult:
    """Run :func:`run_audit` and write its report into ``out`` (checked before any work)."""
    from camcensus.report import check_output, write_report

    given = [*(kwargs.get("cameras") or [])]
    given += [kwargs.get(k) for k in ("tracts", "acs", "districts", "stops", "buildings")]
    check_output(Path(out), [p for p in given if p is not None], force=force)
    result = run_audit(**kwargs)
    write_report(result, out, force=force)
    return result
