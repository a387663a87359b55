"""Command line: the camera detector (``camcensus detect train|run|evaluate``).

Registered on :data:`camcensus.cli.app` when imported; the commands parse options and call
:mod:`camcensus.detect`. ``train`` needs ``camcensus[train]`` (JAX, onnx); ``run`` and
``evaluate`` need only onnxruntime (``camcensus[cv]``); ``import`` (detections into a
platform project as machine tags, for verify tasks) needs neither.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from camcensus._errors import Ledger, OptionError
from camcensus.cli import Database, _friendly_errors, _progress
from camcensus.cli import app as app
from camcensus.io.formats import json_safe, write_csv

__all__ = ["CROP_FOV_RANGE", "app", "detect_app", "evaluate", "import_detections", "run", "train"]

detect_app = typer.Typer(
    help="Camera detector: train on synthetic panoramas, pre-tag panoramas, audit recall.",
    no_args_is_help=True,
)
app.add_typer(detect_app, name="detect")

ModelDir = Annotated[Path, typer.Option("--model", help="Model folder (detect train --out).")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the synthetic city and training.")]
Threads = Annotated[
    int | None, typer.Option("--threads", help="onnxruntime threads (default: all cores).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace files already in --out.")]

#: Accepted ``detect train --crop-fov`` (degrees): 84 crops a panorama at 20°, 4 at 120°.
CROP_FOV_RANGE = (20.0, 120.0)


def _missing_extra(exc: ImportError, extra: str) -> OptionError:
    return OptionError(f"{exc.name or exc}: not installed. Fix: pip install 'camcensus[{extra}]'")


def _refuse_overwrite(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise OptionError(f"{path} exists. Fix: choose another --out or pass --force")


@detect_app.command(
    epilog="Example: camcensus detect train --synthetic 200 --epochs 30 --seed 0 --out "
    "models/cam; camcensus detect train --tags-from sqlite:///camcensus.db --project demo "
    "--media media --out models/demo"
)
def train(
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    synthetic: Annotated[
        int, typer.Option("--synthetic", help="Synthetic panoramas to train on.")
    ] = 200,
    tags_from: Annotated[
        str | None,
        typer.Option(
            "--tags-from",
            help="Train on a platform project's agreed tags instead: the database URL "
            "(sqlite:///camcensus.db, postgresql+psycopg://...) or a SQLite file.",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option("--project", help="The project of --tags-from (default: every project)."),
    ] = None,
    media: Annotated[
        Path,
        typer.Option("--media", help="The platform's media root (panorama images of --tags-from)."),
    ] = Path("media"),
    epochs: Annotated[int, typer.Option("--epochs", help="Passes over the patches.")] = 30,
    channels: Annotated[
        int, typer.Option("--channels", help="Backbone channels (16: docs/detect.md, Width).")
    ] = 16,
    holdout: Annotated[
        int,
        typer.Option(
            "--holdout", help="Held-out synthetic panoramas (city seed + 1) for the model card."
        ),
    ] = 20,
    mining: Annotated[
        bool,
        typer.Option(
            "--mining/--no-mining",
            help="A second round on the first model's false positives (hard negatives).",
        ),
    ] = True,
    crop_fov: Annotated[
        float,
        typer.Option(
            "--crop-fov",
            help="Field of view (degrees) of the 640-px crops the model is trained for and "
            "`detect run` tiles with (45 gives cameras 1.39x the pixels of 60; docs/detect.md, "
            "Measured).",
        ),
    ] = 60.0,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
) -> None:
    """Train the detector on synthetic panoramas and write model.onnx, config.json and
    model_card.md (with held-out metrics)."""
    update, status = _progress()
    with _friendly_errors(), status:
        if synthetic < 1 or epochs < 1 or holdout < 0:
            raise OptionError(
                f"--synthetic {synthetic}, --epochs {epochs}, --holdout {holdout}: expected "
                "positive counts (holdout may be 0)"
            )
        lo, hi = CROP_FOV_RANGE
        if not lo <= crop_fov <= hi:
            raise OptionError(
                f"--crop-fov {crop_fov}: expected degrees in [{lo:g}, {hi:g}] (narrower needs "
                "hundreds of crops per panorama, wider leaves cameras too few pixels). "
                "Fix: pass e.g. --crop-fov 45 or 60"
            )
        _refuse_overwrite(out / "model.onnx", force)
        try:
            import jax  # noqa: F401
            import onnx  # noqa: F401
        except ImportError as exc:
            raise _missing_extra(exc, "train") from exc
        from camcensus.detect.evaluate import evaluate_synthetic
        from camcensus.detect.infer import load_detector
        from camcensus.detect.train import train_synthetic, write_model_dir

        ledger = Ledger()
        data: dict[str, Any]
        if tags_from is not None:
            result, patches, data = _train_from_tags(  # seed: data["seed"]
                tags_from, project, media, epochs, channels, seed, mining, crop_fov, ledger, update
            )
        else:
            result, patches = train_synthetic(
                synthetic,
                epochs=epochs,
                channels=channels,
                seed=seed,
                mine=mining,
                crop_fov_deg=crop_fov,
                progress=update,
            )
            data = {"synthetic_panoramas": synthetic, "seed": seed}
        write_model_dir(out, result, data=data)
        metrics = None
        if holdout and tags_from is None:
            detector = load_detector(out)
            metrics, _d, _t = evaluate_synthetic(detector, holdout, seed=seed + 1, progress=update)
            write_model_dir(out, result, data=data, metrics=metrics)
    Console().print(
        Text(
            f"Model: {out} ({len(patches.images):,} patches, {result.seconds:.0f} s training, "
            f"final loss {result.history[-1]['loss']:.3f})"
        )
    )
    if tags_from is not None:
        Console().print(
            Text(
                f"Data: project {data['project'] or '(all)'}: {data['panoramas']:,} panoramas, "
                f"{data['agreed_cameras']:,} agreed cameras, {data['unagreed_candidates']:,} "
                "unagreed candidates (ignore regions)"
            )
        )
        for e in ledger:
            Console().print(Text(f"Left out ({e.stage}): {e.count:,} {e.reason}"))
    if metrics:
        _print_metrics(metrics)


def _train_from_tags(
    database: str,
    project: str | None,
    media: Path,
    epochs: int,
    channels: int,
    seed: int,
    mining: bool,
    crop_fov: float,
    ledger: Ledger,
    update: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    """Read a platform project's agreed tags and panoramas, and train on them."""
    from camcensus.cli import _existing_database
    from camcensus.db import connect
    from camcensus.detect.tagdata import image_loader, project_training_data, train_from_tags

    url = database if "://" in database else f"sqlite:///{database}"
    if media.exists() and not media.is_dir():
        raise OptionError(f"--media {media}: not a folder. Fix: pass the platform's media root")
    engine = connect(_existing_database(url))
    try:
        update("reading the project's tags")
        data = project_training_data(engine, project=project, ledger=ledger)
    finally:
        engine.dispose()
    result, patches, info = train_from_tags(
        data,
        image_loader(media),
        epochs=epochs,
        channels=channels,
        seed=seed,
        mine=mining,
        crop_fov_deg=crop_fov,
        ledger=ledger,
        progress=update,
    )
    info["database"] = url.split("://", 1)[0] + "://..."
    return result, patches, info


@detect_app.command(
    epilog="Example: camcensus detect run --model models/cam --panoramas panoramas/ "
    "--out detections.csv; camcensus detect run --model models/cam --database "
    "sqlite:///camcensus.db --project demo --media media (imports machine tags for verify tasks)"
)
def run(
    model: ModelDir,
    panoramas: Annotated[
        Path | None,
        typer.Option(
            "--panoramas",
            help="Folder of equirectangular images (stem = panorama id) or a CSV with "
            "panorama_id, path[, heading_deg].",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Detections CSV to write (machine tags; needed with --panoramas).",
            show_default=False,
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project",
            help="Run over this platform project's panoramas instead (not gold, not yet run "
            "with this model) and import the detections as machine tags for verify tasks.",
            show_default=False,
        ),
    ] = None,
    database: Database = None,
    media: Annotated[
        Path,
        typer.Option("--media", help="The platform's media root (the images of --project)."),
    ] = Path("media"),
    score_min: Annotated[float, typer.Option("--score-min", help="Lowest score written.")] = 0.3,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Crops per batch.")] = 8,
    threads: Threads = None,
    force: ForceOpt = False,
) -> None:
    """Detect cameras in panoramas; write one machine tag per detection (heading, pitch, fov,
    score, type), or with --project store them in the platform for volunteers to verify.
    Machine tags never settle a camera on their own."""
    update, status = _progress()
    with _friendly_errors(), status:
        if not 0 <= score_min <= 1:
            raise OptionError(f"--score-min {score_min}: expected a score in [0, 1]")
        if (panoramas is None) == (project is None):
            raise OptionError(
                "give --panoramas (images to run, with --out) or --project (a platform "
                "project's panoramas, imported as machine tags), not both or neither"
            )
        if panoramas is not None and out is None:
            raise OptionError("--panoramas needs --out: the detections CSV to write")
        if out is not None:
            _refuse_overwrite(out, force)
        try:
            from camcensus.detect.infer import detect_panoramas, load_detector, read_panorama_list
        except ImportError as exc:
            raise _missing_extra(exc, "cv") from exc
        detector = load_detector(model, threads=threads)
        if project is not None:
            result, dets, n_run, ledger = _run_project(
                detector, project, database, media, score_min, batch_size, update
            )
        else:
            assert panoramas is not None
            table = read_panorama_list(panoramas)
            n_run = len(table)
            dets = detect_panoramas(
                detector, table, batch_size=batch_size, score_min=score_min, progress=update
            )
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            write_csv(dets, tmp)
            tmp.replace(out)
    where = f"{out} (" if out is not None else "("
    Console().print(Text(f"Detections: {where}{len(dets):,} machine tags on {n_run:,} panoramas)"))
    if project is not None:
        _print_import(result, project)
        for e in ledger:
            Console().print(Text(f"Left out ({e.stage}): {e.count:,} {e.reason}"))


def _run_project(
    detector: Any,
    project: str,
    database: str | None,
    media: Path,
    score_min: float,
    batch_size: int,
    update: Any,
) -> tuple[Any, Any, int, Ledger]:
    """Run the detector over a project's panoramas not yet run with it; import the detections
    (a panorama whose image cannot be read is counted, not recorded as seen)."""
    from camcensus.cli import _existing_database
    from camcensus.db import connect, session_factory
    from camcensus.db import verify as db_verify
    from camcensus.detect.infer import detect_panoramas
    from camcensus.detect.tagdata import image_loader

    if media.exists() and not media.is_dir():
        raise OptionError(f"--media {media}: not a folder. Fix: pass the platform's media root")
    engine = connect(_existing_database(database))
    ledger = Ledger()
    try:
        with session_factory(engine)() as session:
            todo = db_verify.panoramas_to_detect(
                session, project=project, model_id=detector.model_id
            )
        load = image_loader(media)
        loaded: list[str] = []
        unreadable = 0

        def items() -> Any:
            nonlocal unreadable
            rows = zip(
                todo["panorama_id"].tolist(),
                todo["image_uri"].tolist(),
                todo["heading_deg"].tolist(),
                strict=True,
            )
            for pid, uri, heading in rows:
                try:
                    image = load(str(uri))
                except (OSError, ValueError):
                    unreadable += 1
                    continue
                loaded.append(str(pid))
                yield str(pid), image, float(heading)

        dets = detect_panoramas(
            detector, items(), batch_size=batch_size, score_min=score_min, progress=update
        )
        ledger.exclude(
            "detect run", "panoramas whose image could not be read (not recorded)", unreadable
        )
        update("importing the machine tags")
        with session_factory(engine).begin() as session:
            result = db_verify.import_detections(
                session,
                project=project,
                detections=dets,
                model_id=detector.model_id,
                panoramas=loaded,
            )
    finally:
        engine.dispose()
    return result, dets, len(loaded), ledger


def _print_import(result: Any, project: str) -> None:
    seen = result.panoramas - result.no_camera
    Console().print(
        Text(
            f"Imported model {result.model_id!r} into project {project!r}: "
            f"{result.tags:,} machine tags on {seen:,} panoramas, {result.no_camera:,} "
            "panoramas with no detection."
        )
    )
    for reason, count in result.skipped.items():
        Console().print(Text(f"Skipped: {count:,} {reason}"))


_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff")


def _panorama_ids(path: Path) -> list[str]:
    """The panoramas the detector ran over: a CSV with ``panorama_id`` (e.g. the CSV given to
    detect run), or a folder as detect run reads it (its panoramas.csv, else the image stems)."""
    from camcensus._errors import InputError, Problem
    from camcensus.io.formats import read_csv_or_refuse

    if path.is_dir():
        listing = path / "panoramas.csv"
        if not listing.is_file():
            stems = sorted(p.stem for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
            if not stems:
                raise OptionError(
                    f"--panoramas {path}: no panorama images and no panoramas.csv. Fix: pass "
                    "the folder or CSV given to detect run --panoramas"
                )
            return stems
        path = listing
    if not path.is_file():
        raise OptionError(f"--panoramas {path}: no such folder or CSV")

    table = read_csv_or_refuse(
        path,
        expected="a UTF-8 CSV with a panorama_id column, or a folder of panoramas",
        fix="pass the folder or CSV given to detect run --panoramas",
        dtype={"panorama_id": str},
        keep_default_na=False,
    )
    if "panorama_id" not in table.columns:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    "panorama_id",
                    "no such column",
                    "a CSV with a panorama_id column",
                    "pass the CSV given to detect run --panoramas",
                )
            ]
        )
    return [str(v) for v in table["panorama_id"]]


@detect_app.command(
    "import",
    epilog="Example: camcensus detect import --database sqlite:///camcensus.db --project demo "
    "--detections detections.csv --panoramas panoramas/",
)
def import_detections(
    project: Annotated[str, typer.Option("--project", help="The platform project's name.")],
    detections: Annotated[
        Path,
        typer.Option("--detections", help="Detections CSV (detect run --out): machine tags."),
    ],
    database: Database = None,
    model_id: Annotated[
        str | None,
        typer.Option(
            "--model-id",
            help="The model's id (default: the detections' decoder_id column).",
            show_default=False,
        ),
    ] = None,
    panoramas: Annotated[
        Path | None,
        typer.Option(
            "--panoramas",
            help="The panoramas the detector ran over (the folder or CSV given to detect run); "
            "those without a detection are recorded as 'the detector saw nothing'.",
            show_default=False,
        ),
    ] = None,
    all_panoramas: Annotated[
        bool,
        typer.Option(
            "--all-panoramas",
            help="The detector ran over every panorama of the project (instead of --panoramas).",
        ),
    ] = False,
) -> None:
    """Store a detector's detections in a platform project as machine tags for volunteers to
    verify (one model submission per panorama; a panorama imported before for this model is
    skipped and counted, never overwritten). Machine tags never settle a camera on their own."""
    from camcensus.cli import _existing_database
    from camcensus.db import connect, session_factory
    from camcensus.db import verify as db_verify

    with _friendly_errors():
        if panoramas is not None and all_panoramas:
            raise OptionError("--panoramas and --all-panoramas: give one of them, not both")
        ran: Any = "all" if all_panoramas else None
        if panoramas is not None:
            ran = _panorama_ids(panoramas)
        table = db_verify.read_detections(detections)
        engine = connect(_existing_database(database))
        try:
            with session_factory(engine).begin() as session:
                result = db_verify.import_detections(
                    session,
                    project=project,
                    detections=table,
                    model_id=model_id,
                    panoramas=ran,
                )
        finally:
            engine.dispose()
    _print_import(result, project)
    if ran is None:
        Console().print(
            Text(
                "Note: only panoramas with a detection were recorded; pass --panoramas (or "
                "--all-panoramas) to record where the detector saw nothing."
            )
        )


@detect_app.command(
    epilog="Example: camcensus detect evaluate --model models/cam --synthetic 50 --seed 1 "
    "--out metrics.json"
)
def evaluate(
    model: ModelDir,
    out: Annotated[Path, typer.Option("--out", help="metrics.json to write.")],
    synthetic: Annotated[
        int, typer.Option("--synthetic", help="Held-out synthetic panoramas.")
    ] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out synthetic city.")] = 1,
    panoramas: Annotated[
        Path | None,
        typer.Option(
            "--panoramas",
            help="Evaluate on these panoramas instead (a folder or CSV as for detect run); "
            "needs --truth.",
            show_default=False,
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            help="Ground truth of --panoramas: a tags CSV (camcensus export tags --format csv: "
            "cameras agreed by 2 volunteers are the truth, other tags are ignored) or a cameras "
            "CSV (panorama_id, heading_deg, pitch_deg[, size_deg, category]).",
            show_default=False,
        ),
    ] = None,
    groups: Annotated[
        Path | None,
        typer.Option(
            "--groups",
            help="CSV PanoramaId,group (neighbourhood group per panorama); default: the "
            "synthetic city's tracts.",
        ),
    ] = None,
    score_threshold: Annotated[
        float, typer.Option("--score-threshold", help="Threshold of precision and recall.")
    ] = 0.5,
    threads: Threads = None,
    force: ForceOpt = False,
) -> None:
    """Precision, recall and AP on held-out synthetic panoramas, by camera size band, score
    reliability and recall by neighbourhood group (a single correction refused when the spread
    is large)."""
    import pandas as pd

    update, status = _progress()
    with _friendly_errors(), status:
        if synthetic < 1:
            raise OptionError(f"--synthetic {synthetic}: expected at least 1 panorama")
        _refuse_overwrite(out, force)
        from camcensus.detect.evaluate import evaluate_synthetic
        from camcensus.detect.infer import load_detector

        mapping: Any = "tract"
        if groups is not None:
            table = pd.read_csv(groups, dtype=str)
            if not {"PanoramaId", "group"} <= set(table.columns):
                raise OptionError(
                    f"{groups}: expected columns PanoramaId, group (found "
                    f"{', '.join(table.columns)})"
                )
            mapping = dict(zip(table["PanoramaId"], table["group"], strict=True))
        if (panoramas is None) != (truth is None):
            raise OptionError(
                "--panoramas and --truth go together: the panoramas to run and their ground truth"
            )
        detector = load_detector(model, threads=threads)
        if panoramas is not None and truth is not None:
            from camcensus.detect.evaluate import evaluate_panoramas, read_truth
            from camcensus.detect.infer import read_panorama_list

            if mapping == "tract":
                mapping = None
            ledger = Ledger()
            truth_table, ignore, fmt = read_truth(truth, ledger=ledger)
            metrics, _d, _t = evaluate_panoramas(
                detector,
                read_panorama_list(panoramas),
                truth_table,
                ignore=ignore,
                groups=mapping,
                score_threshold=score_threshold,
                ledger=ledger,
                progress=update,
            )
            metrics["truth"] = {"file": str(truth), "format": fmt, "ignore_candidates": len(ignore)}
            metrics["excluded"] = ledger.records()
            trained_on = {str(p) for p in detector.config.get("data", {}).get("panorama_ids", [])}
            metrics["held_out"] = not (trained_on & set(_t["panorama_id"].astype(str)))
        else:
            trained_seed = detector.config.get("data", {}).get("seed")
            metrics, _d, _t = evaluate_synthetic(
                detector,
                synthetic,
                seed=seed,
                groups=mapping,
                score_threshold=score_threshold,
                progress=update,
            )
            metrics["held_out"] = (
                trained_seed is None
                or "synthetic_panoramas" not in detector.config.get("data", {})
                or int(trained_seed) != seed
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        text = json.dumps(json_safe(metrics), indent=1, allow_nan=False, default=str)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    if not metrics["held_out"]:
        what = (
            "the panoramas include ones the model was trained on"
            if panoramas is not None
            else f"--seed {seed} is the training city's seed"
        )
        Console().print(Text(f"Warning: {what}: not held out.", style="red"))
    _print_metrics(metrics)
    Console().print(Text(f"Metrics: {out}"))


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) and math.isfinite(value) else "n/a"


def _print_metrics(metrics: dict[str, Any]) -> None:
    from rich.table import Table

    kind = "panoramas" if "truth" in metrics else "synthetic panoramas"
    table = Table(title=f"Held-out {kind} ({metrics['panoramas']})")
    for col in ("cameras", "n", "precision", "recall", "AP", "recall at P >= 0.8"):
        table.add_column(col)
    for name, b in [("all", metrics["overall"]), *metrics["by_size"].items()]:
        op = b.get("at_precision_0.8", {})
        table.add_row(
            name,
            str(b["cameras"]),
            _num(b["precision"]),
            _num(b["recall"]),
            _num(b["ap"]),
            _num(op.get("recall")),
        )
    Console().print(table)
    group = metrics.get("by_group")
    if group:
        Console().print(
            Text(
                f"Recall by group: spread {_num(group['spread'])} "
                f"(limit {group['max_spread']:.2f}); single correction: "
                f"{group['single_correction']}"
            )
        )
