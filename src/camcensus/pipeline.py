"""The main job: a thin orchestrator of the stages (:mod:`camcensus.stages`).

counts -> districts and summary tables -> camera inventory -> footprints and per-tract
coverage -> census join -> headline numbers -> (with stops) the disparity stage.
Library functions behind ``camcensus demo`` and ``camcensus reproduce nyc``; the CLI only
parses arguments and calls them. NYC specifics live in :mod:`camcensus.studies.nyc`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS

from camcensus import settings, stages
from camcensus._errors import InputError, Ledger, OptionError
from camcensus.aggregate import Pick, aggregate_submissions, has_zero_rows
from camcensus.coverage import add_coverage
from camcensus.io import census as io_census
from camcensus.io import decode
from camcensus.io._validate import Errors

if TYPE_CHECKING:
    from camcensus.stats.disparity import DisparityResult
    from camcensus.stats.inputs import StopsFormat
    from camcensus.studies import StudyDesign

__all__ = [
    "CensusResult",
    "Options",
    "aggregate_to_csv",
    "coverage_to_csv",
    "demo_inputs_folder",
    "demo_report",
    "read_counts",
    "reproduce_nyc",
    "run_census",
    "run_demo",
    "run_from_files",
    "stats_to_folder",
]

Progress = Callable[[str], None]


def _pick() -> Pick:
    return "first" if settings.get_str("pick") == "first" else "random"


@dataclass(frozen=True)
class Options:
    """Settings of one run; every default comes from :mod:`camcensus.settings` (and so from
    the ``CAMCENSUS_*`` environment) at the time the options are made."""

    radius_m: float = field(default_factory=lambda: settings.get_float("camera_radius_m"))
    band_m: float = field(default_factory=lambda: settings.get_float("band_m"))
    quad_segs: int = field(default_factory=lambda: settings.get_int("quad_segs"))
    decoders: int = field(default_factory=lambda: settings.get_int("decoders"))
    pick: Pick = field(default_factory=_pick)
    seed: int = field(default_factory=lambda: settings.get_int("seed"))
    snap_m: float = field(default_factory=lambda: settings.get_float("snap_m"))
    min_population: int = field(default_factory=lambda: settings.get_int("min_population"))

    def __post_init__(self) -> None:
        for name, option, value in (
            ("camera_radius_m", "--radius-m", self.radius_m),
            ("band_m", "--band-m", self.band_m),
            ("quad_segs", "quad_segs", self.quad_segs),
            ("decoders", "decoders", self.decoders),
            ("pick", "--pick", self.pick),
            ("seed", "--seed", self.seed),
            ("snap_m", "snap_m", self.snap_m),
            ("min_population", "min_population", self.min_population),
        ):
            settings.require(name, value, option)


@dataclass(frozen=True)
class CensusResult:
    """Everything the report shows, with the ledger of what was left out and why."""

    title: str
    panoramas: gpd.GeoDataFrame
    tracts: gpd.GeoDataFrame
    coverage: shapely.Geometry
    measure_crs: CRS
    tables: dict[str, pd.DataFrame]
    numbers: dict[str, Any]
    ledger: Ledger
    options: Options
    skipped: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    comparison: pd.DataFrame | None = None
    reference: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    disparity: DisparityResult | None = None
    sensitivity: dict[str, pd.DataFrame] = field(default_factory=dict)
    cameras: gpd.GeoDataFrame | None = None
    footprints: gpd.GeoDataFrame | None = None
    study_area: Any = None
    #: :class:`camcensus.audit.AuditSummary` of ``camcensus audit`` (None for a census).
    audit: Any = None

    def replace(self, **changes: Any) -> CensusResult:
        """Return a copy with ``changes`` (the result itself never changes)."""
        return dataclasses.replace(self, **changes)


def _noop(_: str) -> None:
    return None


def run_census(
    panoramas: gpd.GeoDataFrame,
    tracts: gpd.GeoDataFrame,
    *,
    census: pd.DataFrame | None = None,
    boroughs: gpd.GeoDataFrame | None = None,
    options: Options | None = None,
    ledger: Ledger | None = None,
    title: str = "Camera census",
    licence: str = "",
    files: dict[str, str] | None = None,
    progress: Progress = _noop,
) -> CensusResult:
    """Run the census stages on one-row-per-panorama counts.

    Parameters
    ----------
    panoramas
        The ``counts`` table (:func:`camcensus.io.decode.intersections_from_csv` or
        :func:`camcensus.aggregate.aggregate_submissions`), any CRS.
    tracts
        :func:`camcensus.io.census.tracts_from_file`.
    census
        :func:`camcensus.io.census.census_from_csv`; adds population and surveillance levels.
    boroughs
        District polygons; when given, every panorama's district is (re)assigned from them.
    options
        Radius, buffer, seeds; see :class:`Options`.
    ledger
        Receives every exclusion and note.
    licence
        Re-publication terms of the camera positions (kept on every camera row).
    files
        Paths of the inputs by role, for error messages.
    """
    options = options or Options()
    ledger = ledger if ledger is not None else Ledger()
    files = files or {}
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    counts = stages.counts_stage(panoramas, tracts, gdf_districts=boroughs, ledger=ledger)
    gdf_cameras = stages.cameras_stage(counts.counts, licence=licence)
    timings["aggregate_tables"] = time.perf_counter() - t0

    progress("coverage")
    t1 = time.perf_counter()
    cov = stages.coverage_stage(
        tracts,
        gdf_cameras,
        counts.counts,
        radius_m=options.radius_m,
        band_m=options.band_m,
        quad_segs=options.quad_segs,
        snap_m=options.snap_m,
        ledger=ledger,
    )
    timings["coverage"] = time.perf_counter() - t1
    skipped = [*counts.skipped, *cov.skipped]

    tr = cov.tracts
    if census is not None:
        tr = stages.population_stage(
            tr,
            census,
            min_population=options.min_population,
            ledger=ledger,
            tracts_file=files.get("tracts", "tracts"),
            census_file=files.get("census", "census table"),
        )
    else:
        skipped.append(
            {"output": "surveillance level per 1,000 residents", "reason": "no census table"}
        )
    in_area = stages.study_area(tr, counts.counts)
    if not in_area.all():
        ledger.note(
            f"The input covers {int(in_area.sum()):,} of {len(tr):,} tracts (districts: "
            + ", ".join(sorted(map(str, tr.loc[in_area, "borough"].unique())))
            + "): land, residents and comparisons are those of this study area only."
        )
    numbers = stages.headline_numbers(counts, cov, tr, in_area=in_area, radius_m=options.radius_m)
    timings["total"] = time.perf_counter() - t0
    return CensusResult(
        title=title,
        panoramas=counts.counts,
        tracts=tr,
        coverage=cov.union,
        measure_crs=cov.measure_crs,
        tables=counts.tables,
        numbers=numbers,
        ledger=ledger,
        options=options,
        skipped=skipped,
        timings=timings,
        cameras=cov.cameras,
        footprints=cov.footprints,
        study_area=in_area,
    )


def read_counts(
    *,
    intersections: str | Path | None = None,
    raw_counts: str | Path | None = None,
    raw_intersections: str | Path | None = None,
    panoramas: str | Path | None = None,
    boroughs: gpd.GeoDataFrame | None = None,
    options: Options,
    errors: Errors = "raise",
    ledger: Ledger,
    progress: Progress = _noop,
) -> tuple[gpd.GeoDataFrame, dict[str, str]]:
    """Read Decode-format counts: the aggregated file, or the raw export aggregated here.

    Returns the ``counts`` table and the input paths by role.
    """
    inputs: dict[str, str] = {}
    raw_given = [p for p in (raw_counts, raw_intersections, panoramas) if p is not None]
    if intersections is not None and raw_given:
        raise OptionError(
            "give either --intersections (aggregated counts) or the raw export (--raw-counts, "
            "--raw-intersections, --panoramas), not both: one would be ignored"
        )
    if intersections is not None:
        pan = decode.intersections_from_csv(intersections, errors=errors, ledger=ledger)
        inputs["intersections"] = str(intersections)
    elif raw_counts is not None and raw_intersections is not None:
        subs = decode.submissions_from_csv(raw_counts, errors=errors, ledger=ledger)
        inter = decode.raw_intersections_from_csv(raw_intersections)
        pans = decode.panoramas_from_csv(panoramas) if panoramas else None
        progress("aggregating submissions")
        pan = aggregate_submissions(
            subs,
            inter,
            pans,
            boroughs=boroughs,
            decoders=options.decoders,
            pick=options.pick,
            seed=options.seed,
            ledger=ledger,
        )
        inputs["raw_counts"] = str(raw_counts)
        inputs["raw_intersections"] = str(raw_intersections)
        if panoramas:
            inputs["panoramas"] = str(panoramas)
    else:
        raise OptionError(
            "give --intersections (aggregated counts) or both --raw-counts and "
            "--raw-intersections (raw export)"
        )
    return pan, inputs


def run_from_files(
    *,
    tracts: str | Path,
    intersections: str | Path | None = None,
    raw_counts: str | Path | None = None,
    raw_intersections: str | Path | None = None,
    panoramas: str | Path | None = None,
    census: str | Path | None = None,
    boroughs: str | Path | None = None,
    tracts_layer: str | None = None,
    tracts_crs: str | None = None,
    stops: Sequence[str | Path] = (),
    stops_format: StopsFormat = "auto",
    stops_crs: str | None = None,
    ntas: str | Path | None = None,
    race_table: str | Path | None = None,
    sensitivity: bool = True,
    threshold: float | str | None = None,
    permutations: int | None = None,
    options: Options | None = None,
    errors: Errors = "raise",
    title: str = "Camera census",
    licence: str = "",
    design: StudyDesign | None = None,
    model_reference: str | Path | None = None,
    progress: Progress = _noop,
) -> CensusResult:
    """Run the census (and, with ``stops``, the disparity stage) from Decode-format files.

    Give either the aggregated ``intersections`` file (``counts_per_intersections.csv`` or any
    column subset) or the raw export (``raw_counts`` = counts.csv and ``raw_intersections`` =
    intersections.csv, with ``panoramas`` = panorama_url.csv), plus the tracts, and optionally
    the ACS table and district polygons. With ``stops`` (records and/or tract-count files) and
    the census, the disparity models run too (:func:`camcensus.stats.workflow.disparity_stage`)
    with the study's ``design`` (default: generic) and ``model_reference`` (a published
    per-tract coverage table that explains differences from published models).
    """
    options = options or Options()
    ledger = Ledger()
    progress("reading inputs")
    if stops and census is None:
        raise OptionError("the disparity models need the census table: pass --census")
    _check_model_inputs(stops, ntas=ntas, race_table=race_table)
    gdf_boroughs = io_census.boroughs_from_file(boroughs, ledger=ledger) if boroughs else None
    pan, inputs = read_counts(
        intersections=intersections,
        raw_counts=raw_counts,
        raw_intersections=raw_intersections,
        panoramas=panoramas,
        boroughs=gdf_boroughs,
        options=options,
        errors=errors,
        ledger=ledger,
        progress=progress,
    )
    gdf_tracts = io_census.tracts_from_file(
        tracts, layer=tracts_layer, crs=tracts_crs, ledger=ledger
    )
    inputs["tracts"] = str(tracts)
    table = io_census.census_from_csv(census, ledger=ledger) if census else None
    if census:
        inputs["census"] = str(census)
    if boroughs:
        inputs["boroughs"] = str(boroughs)
    result = run_census(
        pan,
        gdf_tracts,
        census=table,
        boroughs=gdf_boroughs,
        options=options,
        ledger=ledger,
        title=title,
        licence=licence,
        files=inputs,
        progress=progress,
    )
    if stops and table is not None:
        progress("disparity models")
        for i, p in enumerate(stops):
            inputs[f"stops_{i + 1}"] = str(p)
        if ntas:
            inputs["ntas"] = str(ntas)
        if race_table:
            inputs["race_table"] = str(race_table)
        result = _with_disparity(
            result,
            pan,
            gdf_tracts,
            table,
            stops=stops,
            stops_format=stops_format,
            stops_crs=stops_crs or settings.get_str("stops_crs"),
            ntas=ntas,
            race_table=race_table,
            sensitivity=sensitivity,
            threshold=settings.get_float("threshold") if threshold is None else threshold,
            permutations=settings.get_int("permutations") if permutations is None else permutations,
            design=design,
            reference=model_reference,
            progress=progress,
        )
    return result.replace(inputs=inputs)


def _check_model_inputs(
    stops: Sequence[str | Path], *, ntas: str | Path | None, race_table: str | Path | None
) -> None:
    """Refuse model inputs that would be silently ignored or counted twice."""
    if not stops:
        unused = [o for o, v in (("--ntas", ntas), ("--race-table", race_table)) if v]
        if unused:
            raise OptionError(
                f"{' and '.join(unused)} serve the disparity models, which need --stops (and "
                "--census): add them, or leave these out"
            )
    seen: set[Path] = set()
    for p in stops:
        key = Path(p).resolve()
        if key in seen:
            raise OptionError(f"--stops {p} is given twice: its stops would be counted twice")
        seen.add(key)


def _with_disparity(
    result: CensusResult,
    pan: gpd.GeoDataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    census: pd.DataFrame,
    *,
    stops: Sequence[str | Path],
    stops_format: StopsFormat,
    stops_crs: str,
    ntas: str | Path | None,
    race_table: str | Path | None,
    sensitivity: bool,
    threshold: float | str,
    permutations: int,
    design: StudyDesign | None,
    reference: str | Path | None,
    progress: Progress,
) -> CensusResult:
    from camcensus.stats import workflow
    from camcensus.studies import GENERIC

    t0 = time.perf_counter()
    o = result.options

    def at_radius(r: float) -> gpd.GeoDataFrame:
        cov = add_coverage(
            gdf_tracts,
            pan,
            radius_m=r,
            band_m=o.band_m,
            quad_segs=o.quad_segs,
            snap_m=o.snap_m,
        )
        return stages.population_stage(cov, census, min_population=o.min_population)

    disparity, sens = workflow.disparity_stage(
        result.tracts,
        gdf_tracts,
        stops=stops,
        stops_format=stops_format,
        stops_crs=stops_crs,
        ntas=ntas,
        race_table=race_table,
        coverage_at_radius=at_radius
        if sensitivity and "attached_street_median" in pan.columns
        else None,
        threshold=threshold,
        permutations=permutations,
        seed=o.seed,
        min_population=o.min_population,
        ledger=result.ledger,
        rate_model=has_zero_rows(pan),
        progress=progress,
        reference=reference,
        design=design or GENERIC,
    )
    timings = {**result.timings, "disparity": time.perf_counter() - t0}
    return result.replace(disparity=disparity, sensitivity=sens, timings=timings)


def reproduce_nyc(**kwargs: Any) -> CensusResult:
    """Reproduce Amnesty's NYC census (see :func:`camcensus.studies.nyc.reproduce_nyc`)."""
    from camcensus.studies import nyc

    return nyc.reproduce_nyc(**kwargs)


def run_demo(
    folder: str | Path,
    *,
    seed: int | None = None,
    options: Options | None = None,
    platform: bool = True,
    progress: Progress = _noop,
) -> CensusResult:
    """Simulate a seeded synthetic city, collect its census, and run the census on the files.

    With ``platform`` (the default) the counts are collected the way a group would collect
    them: the city's panoramas go into a platform database, the real server runs on a loopback
    port, simulated volunteers tag every panorama through its HTTP API, and Amnesty's raw
    export is written from the database (:func:`camcensus.platform_demo.run_platform_demo`;
    the export is in ``folder/platform/export``). Without it, the volunteers' counts are drawn
    directly (:func:`camcensus.simulate.simulate_city`), which is faster.
    """
    from camcensus.simulate import simulate_city

    seed = settings.get_int("seed") if seed is None else seed
    progress("simulating a synthetic city")
    city = simulate_city(seed)
    paths = city.write(Path(folder))
    platform_note = ""
    if platform:
        from camcensus.platform_demo import run_platform_demo

        for role in ("raw_counts", "raw_intersections", "panoramas"):
            paths[role].unlink()
        run = run_platform_demo(Path(folder) / "platform", seed=seed, city=city, progress=progress)
        paths.update(
            raw_counts=run.export["counts"],
            raw_intersections=run.export["intersections"],
            panoramas=run.export["panorama_url"],
        )
        platform_note = (
            f" The counts were collected through the platform: {run.volunteers} simulated "
            f"volunteers made {run.submissions:,} submissions ({run.tags:,} tags) through the "
            f"HTTP API in {run.seconds:.1f} s ({run.submissions_per_second:.0f} per second)."
        )
    options = options or Options(seed=seed)
    result = run_from_files(
        tracts=paths["tracts"],
        raw_counts=paths["raw_counts"],
        raw_intersections=paths["raw_intersections"],
        panoramas=paths["panoramas"],
        census=paths["census"],
        boroughs=paths["boroughs"],
        stops=[paths["stops"]],
        stops_format="records",
        stops_crs=city.crs,
        permutations=199,
        threshold="median",
        options=options,
        title=f"Synthetic city (seed {seed})",
        licence="synthetic (no restriction)",
        progress=progress,
    )
    truth = city.truth
    numbers = {
        **result.numbers,
        "truth": {
            "public_cameras": int(truth["attached_street"].sum()),
            "building_cameras": int(truth["attached_building"].sum()),
            "beta_nonwhite": city.params["beta_nonwhite"],
        },
    }
    result.ledger.note(
        "Synthetic city: counts are simulated. The true number of public cameras is "
        f"{int(truth['attached_street'].sum())}; the volunteers' medians find "
        f"{result.numbers.get('public_cameras', 0)}." + platform_note
    )
    return result.replace(numbers=numbers)


def demo_inputs_folder(out: str | Path) -> Path:
    """Return where the demo writes its synthetic input files: ``<out>-inputs``, beside the
    report (a report folder never holds its inputs)."""
    out = Path(out)
    return out.parent / f"{out.name}-inputs"


def demo_report(
    out: str | Path,
    *,
    seed: int | None = None,
    force: bool = False,
    platform: bool = True,
    progress: Progress = _noop,
) -> CensusResult:
    """Run the demo (:func:`run_demo`) and write its report into ``out``; with ``platform``,
    the platform's export the census was computed from is copied into ``out/export``."""
    from camcensus.report import OutputError, check_output, write_report

    seed = settings.get_int("seed") if seed is None else seed
    folder = demo_inputs_folder(out)
    check_output(Path(out), [], force=force)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
        own = {"counts.csv", "intersections.csv", "panorama_url.csv", "tracts.gpkg",
               "boroughs.gpkg", "census.csv", "stops.csv", "platform"}  # fmt: skip
        foreign = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [folder.name]
        foreign = [f for f in foreign if f not in own]
        if foreign or not force:
            raise OutputError(
                folder,
                "the demo's input folder already holds files"
                + (f" that the demo does not write ({', '.join(foreign[:5])})" if foreign else ""),
                "choose another --out" if foreign else "pass --force to replace the demo's files",
            )
    result = run_demo(folder, seed=seed, platform=platform, progress=progress)
    progress("writing the report")
    export = folder / "platform" / "export"
    write_report(result, out, force=force, attachments={"export": export} if platform else None)
    return result


def _check_csv_target(out: Path, inputs: Sequence[str | Path | None], *, force: bool) -> None:
    """Refuse to write a CSV over an input file, into a folder's place, or over an existing
    file without ``force``."""
    from camcensus.report import OutputError

    target = out.resolve()
    for p in inputs:
        if p is not None and Path(p).resolve() == target:
            raise OutputError(out, f"the output is the input file {p}", "choose another --out")
    if target.is_dir():
        raise OutputError(out, "this is a folder", "give the path of a .csv file for --out")
    if target.exists() and not force:
        raise OutputError(
            out, "the file exists", "pass --force to replace it, or choose another --out"
        )


def _write_csv_atomic(df: pd.DataFrame, out: Path) -> Path:
    """Write ``df`` (spreadsheet-safe) to a temporary file beside ``out``, then rename it."""
    import os

    from camcensus.io.formats import write_csv

    tmp = out.parent / f".{out.name}.tmp"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_csv(df, tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def aggregate_to_csv(
    *,
    raw_counts: str | Path,
    raw_intersections: str | Path,
    out: str | Path,
    panoramas: str | Path | None = None,
    boroughs: str | Path | None = None,
    options: Options | None = None,
    errors: Errors = "raise",
    force: bool = False,
) -> tuple[int, Ledger]:
    """Aggregate Decode's raw export into one row per panorama and write it as CSV (with
    ``Lat``/``Long``); return the number of rows and the ledger. An existing ``out`` is
    replaced only with ``force``."""
    options = options or Options()
    out = Path(out)
    _check_csv_target(out, [raw_counts, raw_intersections, panoramas, boroughs], force=force)
    ledger = Ledger()
    gdf, _ = read_counts(
        raw_counts=raw_counts,
        raw_intersections=raw_intersections,
        panoramas=panoramas,
        boroughs=io_census.boroughs_from_file(boroughs) if boroughs else None,
        options=options,
        errors=errors,
        ledger=ledger,
    )
    table = pd.DataFrame(gdf.drop(columns="geometry"))
    table["Lat"], table["Long"] = gdf.geometry.y, gdf.geometry.x
    _write_csv_atomic(table, out)
    return len(table), ledger


def coverage_to_csv(
    *,
    intersections: str | Path,
    tracts: str | Path,
    out: str | Path,
    tracts_layer: str | None = None,
    tracts_crs: str | None = None,
    options: Options | None = None,
    errors: Errors = "raise",
    force: bool = False,
) -> tuple[int, Ledger]:
    """Compute Amnesty's four coverage columns per tract and write them as CSV; return the
    number of tracts and the ledger. An existing ``out`` is replaced only with ``force``."""
    from camcensus.coverage import COVERAGE_COLUMNS
    from camcensus.io._validate import missing_columns

    options = options or Options()
    out = Path(out)
    _check_csv_target(out, [intersections, tracts], force=force)
    ledger = Ledger()
    pan = decode.intersections_from_csv(intersections, errors=errors, ledger=ledger)
    problems = missing_columns(
        pd.DataFrame(columns=pan.columns),
        Path(intersections),
        ["attached_street_median"],
        why="public cameras, whose coverage this command computes",
    )
    if problems:
        raise InputError(problems)
    gdf_tracts = io_census.tracts_from_file(
        tracts, layer=tracts_layer, crs=tracts_crs, ledger=ledger
    )
    cameras = stages.cameras_stage(pan)
    cov = stages.coverage_stage(
        gdf_tracts,
        cameras,
        pan,
        radius_m=options.radius_m,
        band_m=options.band_m,
        quad_segs=options.quad_segs,
        snap_m=options.snap_m,
        ledger=ledger,
    )
    cols = [c for c in ("GEOID", "borough", *COVERAGE_COLUMNS) if c in cov.tracts.columns]
    _write_csv_atomic(pd.DataFrame(cov.tracts[cols]), out)
    return len(cov.tracts), ledger


def stats_to_folder(
    out: str | Path,
    *,
    force: bool = False,
    **kwargs: Any,
) -> list[str]:
    """Run :func:`camcensus.stats.workflow.stats_from_files` and write ``models.json`` and
    ``tables/*.csv`` into ``out`` (atomically; an earlier output is replaced only with
    ``force``). Returns the findings."""
    from camcensus.report import check_output, replace_folder
    from camcensus.stats.workflow import stats_from_files

    out = Path(out)
    files = {"tract_table", "tracts", "census", "ntas", "reference"}
    inputs = [v for k, v in kwargs.items() if k in files]
    inputs += list(kwargs.get("stops") or [])
    check_output(out, [p for p in inputs if p is not None], force=force)
    given = {k: v for k, v in kwargs.items() if v is not None}
    result, ledger = stats_from_files(**given)
    with replace_folder(out) as tmp:
        from camcensus.io.formats import json_safe, write_csv

        write_csv(result.coefficients(), tmp / "tables" / "model_coefficients.csv")
        write_csv(result.survival, tmp / "tables" / "survival.csv")
        for name, table in result.tables.items():
            write_csv(table, tmp / "tables" / f"{name}.csv")
        doc = {
            "generated_by": "camcensus stats",
            "models": [m.to_dict() for m in result.models],
            "findings": result.findings,
            "exclusions": ledger.records(),
            "notes": ledger.notes,
        }
        (tmp / "models.json").write_text(json.dumps(json_safe(doc), indent=2, allow_nan=False))
    return list(result.findings)
