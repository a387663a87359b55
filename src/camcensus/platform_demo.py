"""The platform's whole loop on a synthetic city: the demo anyone can run, and tag by hand.

:func:`setup_demo` stores a seeded synthetic city in a platform database (one project whose
panoramas are rendered on first request, a few gold panoramas with known answers, an admin and,
optionally, accounts for simulated volunteers). :func:`run_platform_demo` then starts the real
server on a loopback port, lets simulated volunteers (each with its own miss / mislabel model)
tag every panorama through the HTTP API exactly as the browser does, and exports Amnesty's raw
files from the database — the files the census reads.
"""

from __future__ import annotations

import json
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import geopandas as gpd
    import httpx
    from sqlalchemy import Engine

    from camcensus.exposure import ExposureIndex
    from camcensus.simulate import SyntheticCity

__all__ = [
    "DEMO_PROJECT",
    "DemoRun",
    "DemoSetup",
    "demo_cameras",
    "demo_exposure",
    "demo_streets",
    "run_platform_demo",
    "running_server",
    "setup_demo",
]

#: Name of the demo's project.
DEMO_PROJECT = "demo"
_LICENCE = "synthetic (no restriction)"
_CAPTURED = "2021-05"
_WIDTH, _HEIGHT = 4096, 2048
_CLIENT_BUILD = "camcensus-demo-volunteer"

Progress = Callable[[str], None]


def _noop(_: str) -> None:
    return None


@dataclass(frozen=True)
class DemoSetup:
    """What :func:`setup_demo` stored: the project, the admin's and volunteers' log-ins."""

    project: str
    seed: int
    admin_pseudonym: str
    admin_password: str
    volunteers: tuple[tuple[str, str], ...]
    n_panoramas: int
    n_gold: int


@dataclass(frozen=True)
class DemoRun:
    """What :func:`run_platform_demo` did: the export's files and the load it put on the server."""

    export: dict[str, Path]
    submissions: int
    tags: int
    images_served: int
    seconds: float
    volunteers: int

    @property
    def submissions_per_second(self) -> float:
        """Sustained acknowledged submissions per second over the tagging phase."""
        return self.submissions / self.seconds if self.seconds > 0 else 0.0


def _panoramas_frame(city: SyntheticCity, seed: int) -> pd.DataFrame:
    """The city's panoramas as ``panoramas`` contract rows, imagery rendered on first request.

    Headings are :func:`camcensus.simulate.scene.panorama_headings` (what the renderer uses),
    so a ray clicked in a served image is the ray the stored heading implies.
    """
    from camcensus.imagery.synthetic import panoramas_from_synthetic

    frame = panoramas_from_synthetic(city, seed=seed, width=_WIDTH, height=_HEIGHT)
    frame["captured"] = _CAPTURED
    frame["source_ref"] = None
    frame["licence"] = _LICENCE
    return frame


def _intersections_frame(city: SyntheticCity) -> pd.DataFrame:
    i = city.intersections
    return pd.DataFrame(
        {
            "intersection_id": i["IntersectionId"].astype(str),
            "lon": i["Long"].astype(float),
            "lat": i["Lat"].astype(float),
            "panorama_id": i["PanoramaId"].astype(str),
            "area": i["Borough"].astype(str),
            "traffic_signal": i["TrafficSignal"].astype(str) != "",
        }
    )


def _gold_city(seed: int) -> SyntheticCity:
    """The small city of seed ``seed + 1`` whose panoramas are the demo's gold panoramas."""
    from camcensus.simulate import simulate_city

    return simulate_city(seed + 1, nx=4, ny=4)


def setup_demo(
    engine: Engine,
    *,
    seed: int | None = None,
    volunteers: int = 0,
    n_gold: int = 5,
    city: SyntheticCity | None = None,
) -> DemoSetup:
    """Store a seeded synthetic city as the project ``demo`` of an upgraded platform database.

    Parameters
    ----------
    engine
        A platform database (:func:`camcensus.db.connect`, upgraded).
    seed
        The city's seed (default: setting ``seed``).
    volunteers
        Accounts to create for simulated volunteers (their passwords are random).
    n_gold
        Gold panoramas (known answers, from a second city of the same seed) added to the
        project; they give feedback and never count toward completion.
    city
        The city, when the caller has simulated it already.
    """
    from sqlalchemy.orm import Session

    from camcensus import settings
    from camcensus.db import accounts, projects
    from camcensus.simulate import simulate_city
    from camcensus.simulate.scene import objects_in_view, panorama_scene

    seed = settings.get_int("seed") if seed is None else seed
    city = city if city is not None else simulate_city(seed)
    frame = _panoramas_frame(city, seed)
    gold_city = _gold_city(seed)
    gold = _panoramas_frame(gold_city, seed + 1).head(n_gold)
    with Session(engine) as session, session.begin():
        projects.create_project(
            session,
            name=DEMO_PROJECT,
            title=f"Synthetic city (seed {seed})",
            panoramas=pd.concat([frame, gold], ignore_index=True),
            intersections=_intersections_frame(city),
            licence=_LICENCE,
        )
        for pid in gold["panorama_id"]:
            view = objects_in_view(panorama_scene(gold_city, pid, seed=seed + 1))
            cams = view[(view["kind"] == "camera") & view["visible"]]
            answer = [
                {
                    "heading_deg": float(r["heading_deg"]),
                    "pitch_deg": float(r["pitch_deg"]),
                    "attachment": str(r["attachment"]),
                    "camera_type": str(r["camera_type"]),
                }
                for r in cams.to_dict("records")
            ]
            projects.mark_gold(session, pid, answer)
        admin_password = secrets.token_urlsafe(12)
        accounts.create_volunteer(
            session, pseudonym="demo-admin", password=admin_password, role="admin"
        )
        logins = []
        for i in range(volunteers):
            password = secrets.token_urlsafe(12)
            name = f"sim-volunteer-{i + 1:03d}"
            accounts.create_volunteer(session, pseudonym=name, password=password)
            logins.append((name, password))
    return DemoSetup(
        project=DEMO_PROJECT,
        seed=seed,
        admin_pseudonym="demo-admin",
        admin_password=admin_password,
        volunteers=tuple(logins),
        n_panoramas=len(frame),
        n_gold=len(gold),
    )


def demo_streets(city: SyntheticCity) -> gpd.GeoDataFrame:
    """Return the synthetic city's street grid: one LineString per block between crossings.

    The crossings are the city's intersections (projected to the city's metric CRS and put on
    the grid they were drawn from), so neighbouring blocks share their end points exactly.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``osm_id`` (``"demo-<n>"``), ``highway`` (``"residential"``), ``name``
        (``"Street <column>"`` / ``"Avenue <row>"``) and LineString geometry in the city's CRS.
    """
    import geopandas as gpd
    import shapely

    i = city.intersections
    pts = gpd.GeoSeries(
        gpd.points_from_xy(i["Long"].astype(float), i["Lat"].astype(float)), crs="EPSG:4326"
    ).to_crs(city.crs)
    x, y = pts.x.to_numpy(), pts.y.to_numpy()
    # The grid's spacing: the most common step between neighbouring distinct columns.
    xs = np.unique(np.round(x))
    steps = np.diff(xs)
    block = float(np.median(steps[steps > 1.0])) if (steps > 1.0).any() else 100.0
    gx = np.round((x - x.min()) / block).astype("int64")
    gy = np.round((y - y.min()) / block).astype("int64")
    x0, y0 = float(np.round(x.min())), float(np.round(y.min()))
    nodes = {(int(a), int(b)) for a, b in zip(gx, gy, strict=True)}
    lines, names = [], []
    for a, b in sorted(nodes):
        for da, db, label in ((1, 0, f"Avenue {b + 1}"), (0, 1, f"Street {a + 1}")):
            if (a + da, b + db) in nodes:
                lines.append(
                    shapely.LineString(
                        [(x0 + a * block, y0 + b * block),
                         (x0 + (a + da) * block, y0 + (b + db) * block)]
                    )
                )  # fmt: skip
                names.append(label)
    return gpd.GeoDataFrame(
        {
            "osm_id": [f"demo-{k + 1}" for k in range(len(lines))],
            "highway": "residential",
            "name": names,
        },
        geometry=lines,
        crs=city.crs,
    )


def demo_cameras(city: SyntheticCity, *, public_only: bool = True) -> gpd.GeoDataFrame:
    """Return the synthetic city's true cameras as the ``cameras`` contract table (EPSG:4326).

    Each panorama's true counts become camera rows at its crossing
    (:func:`camcensus.cameras.cameras_from_counts`), as Amnesty's coverage places them.

    Parameters
    ----------
    city
        The synthetic city.
    public_only
        Keep only cameras on street furniture (Amnesty's public cameras).
    """
    import geopandas as gpd

    from camcensus.cameras import cameras_from_counts, public_cameras

    t = city.truth
    counts = gpd.GeoDataFrame(
        {
            "PanoramaId": t["PanoramaId"].astype(str),
            "attached_street_median": t["attached_street"],
            "attached_building_median": t["attached_building"],
            "attached_unknown_median": t["attached_unknown"],
            "type_dome_median": t["type_dome"],
            "type_bullet_median": t["type_bullet"],
        },
        geometry=t.geometry,
        crs=t.crs,
    )
    cameras = cameras_from_counts(counts, licence=_LICENCE, tier="synthetic truth")
    if public_only:
        cameras = public_cameras(cameras)
    return cameras.reset_index(drop=True).to_crs("EPSG:4326")


def demo_exposure(
    city: SyntheticCity | None = None,
    *,
    seed: int | None = None,
    radius_m: float | None = None,
    public_only: bool = True,
) -> ExposureIndex:
    """Return the exposure index of the demo city: its street grid and its true cameras.

    Parameters
    ----------
    city
        The city (default: the demo's, :func:`camcensus.simulate.simulate_city` of ``seed``).
    seed
        The city's seed (default: setting ``seed``, as :func:`setup_demo`).
    radius_m
        Disc radius (default: setting ``camera_radius_m``, Amnesty's 120 m).
    public_only
        Count only the cameras on street furniture, as Amnesty's coverage does.
    """
    from camcensus import settings
    from camcensus.coverage import footprints
    from camcensus.exposure import ExposureIndex, network_from_lines
    from camcensus.simulate import simulate_city

    if city is None:
        city = simulate_city(settings.get_int("seed") if seed is None else seed)
    cameras = demo_cameras(city, public_only=public_only)
    network = network_from_lines(demo_streets(city), crs=city.crs)
    gdf_footprints = footprints(cameras, "disc", radius_m=radius_m, crs=city.crs)
    return ExposureIndex(network, gdf_footprints, cameras)


_OWN_FILES = frozenset(
    {"platform.sqlite", "platform.sqlite-wal", "platform.sqlite-shm", "media", "export",
     "platform_run.json"}
)  # fmt: skip


def _clear_own_files(folder: Path) -> None:
    """Empty ``folder`` of an earlier run's files; refuse when it holds anything else."""
    import shutil

    from camcensus.report import OutputError

    folder.mkdir(parents=True, exist_ok=True)
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in _OWN_FILES)
    if foreign:
        raise OutputError(
            folder,
            f"holds files the platform demo does not write ({', '.join(foreign[:5])})",
            "choose another --out",
        )
    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_from_env() -> Any:
    """Return the platform app over ``$CAMCENSUS_PLATFORM_DATABASE`` (a uvicorn app factory).

    ``$CAMCENSUS_PLATFORM_MEDIA`` is the media root; ``$CAMCENSUS_PLATFORM_RATE_LIMITS=0``
    turns the rate limits off (simulated volunteers, benchmarks).
    """
    import os

    from camcensus.db import connect
    from camcensus.web import WebSettings, create_app

    engine = connect(os.environ["CAMCENSUS_PLATFORM_DATABASE"])
    from camcensus.web.app import tune_gc_for_serving

    limits = os.environ.get("CAMCENSUS_PLATFORM_RATE_LIMITS", "1") != "0"
    app = create_app(
        engine,
        media_root=os.environ["CAMCENSUS_PLATFORM_MEDIA"],
        settings=WebSettings(rate_limits=limits),
    )
    tune_gc_for_serving()  # this function runs in the serving process (a uvicorn factory)
    return app


@contextmanager
def running_server(
    url: str, media_root: Path, *, workers: int = 1, rate_limits: bool = True
) -> Iterator[str]:
    """Run the platform's real HTTP server (uvicorn) in a child process; yield its URL.

    The server gets its own process (and core), as in production: the clients that load it
    never share its interpreter lock.

    Parameters
    ----------
    url
        The database URL (upgraded).
    media_root
        The media root.
    workers
        uvicorn worker processes.
    rate_limits
        False for simulated volunteers, who submit faster than any person.
    """
    import os
    import signal
    import subprocess
    import sys

    import httpx

    port = _free_port()
    env = dict(
        os.environ,
        CAMCENSUS_PLATFORM_DATABASE=url,
        CAMCENSUS_PLATFORM_MEDIA=str(media_root),
        CAMCENSUS_PLATFORM_RATE_LIMITS="1" if rate_limits else "0",
    )
    env.update(CAMCENSUS_PLATFORM_PORT=str(port), CAMCENSUS_PLATFORM_WORKERS=str(workers))
    args = [sys.executable, "-m", "camcensus.platform_demo"]
    proc = subprocess.Popen(args, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the platform server exited ({proc.returncode}) at start")
            try:
                if httpx.get(f"{base}/api/csrf", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the platform server did not answer on 127.0.0.1 in 60 s")
            time.sleep(0.1)
        time.sleep(0.5 * (workers - 1))  # every worker answers on its own
        yield base
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _csrf_client(base: str) -> httpx.Client:
    """An HTTP client holding the CSRF cookie and sending it back in the header."""
    import httpx

    client = httpx.Client(base_url=base, timeout=30.0)
    token = client.get("/api/csrf").raise_for_status().json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    return client


def _check(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {response.text[:300]}"
        )
    if response.status_code == 204:
        return {}
    body: dict[str, Any] = response.json()
    return body


class _Volunteer:
    """One simulated volunteer: a logged-in HTTP client and an error model."""

    def __init__(self, base: str, pseudonym: str, password: str, model: Any, seed: int) -> None:
        self.client = _csrf_client(base)
        _check(self.client.post("/api/login", json={"pseudonym": pseudonym, "password": password}))
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.done = False

    def close(self) -> None:
        self.client.close()


def run_platform_demo(
    folder: str | Path,
    *,
    seed: int | None = None,
    city: SyntheticCity | None = None,
    n_volunteers: int = 80,
    workers: int = 16,
    image_every: int = 250,
    progress: Progress = _noop,
) -> DemoRun:
    """Run the whole platform loop on a synthetic city and export Amnesty's raw files.

    The database (``platform.sqlite``), the rendered images (``media/``) and the export
    (``export/``) are written into ``folder``. Simulated volunteers log in, take tasks and
    submit tags through the real HTTP server; every ``image_every``-th task also downloads its
    panorama (rendered on first request), as a phone would.
    """
    from sqlalchemy.orm import Session

    from camcensus import settings
    from camcensus.db import connect, upgrade
    from camcensus.db.export import export_decode
    from camcensus.simulate import simulate_city
    from camcensus.simulate.scene import objects_in_view, panorama_scene
    from camcensus.simulate.volunteers import draw_volunteer_models, simulate_tags

    seed = settings.get_int("seed") if seed is None else seed
    folder = Path(folder)
    _clear_own_files(folder)
    db_path = folder / "platform.sqlite"
    engine = connect(f"sqlite:///{db_path}")
    upgrade(engine)
    city = city if city is not None else simulate_city(seed)
    progress("storing the synthetic city in the platform database")
    setup = setup_demo(engine, seed=seed, volunteers=n_volunteers, city=city)
    models = draw_volunteer_models(n_volunteers, seed=seed)
    views: dict[str, pd.DataFrame] = {}
    lock = threading.Lock()
    counters = {"submissions": 0, "tags": 0, "images": 0, "tasks": 0}

    gold_city = _gold_city(seed)
    gold_ids = set(gold_city.panoramas["PanoramaId"].astype(str))

    def view_of(panorama_id: str) -> pd.DataFrame:
        with lock:
            cached = views.get(panorama_id)
        if cached is None:
            if panorama_id in gold_ids:
                scene = panorama_scene(gold_city, panorama_id, seed=seed + 1)
            else:
                scene = panorama_scene(city, panorama_id, seed=seed)
            cached = objects_in_view(scene)
            with lock:
                views[panorama_id] = cached
        return cached

    def one_task(v: _Volunteer) -> None:
        r = v.client.post(f"/api/projects/{setup.project}/tasks", json={})
        task = _check(r)
        if not task:
            v.done = True
            return
        panorama = task["panorama"]
        with lock:
            counters["tasks"] += 1
            fetch = counters["tasks"] % image_every == 0
        if fetch:
            img = v.client.get(panorama["image_url"], params={"w": 1024})
            if img.status_code != 200 or not img.content.startswith(b"\xff\xd8"):
                raise RuntimeError(f"panorama image not served: {img.status_code}")
            with lock:
                counters["images"] += 1
        answer = simulate_tags(view_of(panorama["panorama_id"]), v.model, rng=v.rng)
        payload = {
            "no_camera": bool(answer["no_camera"]),
            "tags": answer["tags"],
            "client_build": _CLIENT_BUILD,
        }
        _check(v.client.post(f"/api/tasks/{task['task_id']}/submit", json=payload))
        with lock:
            counters["submissions"] += 1
            counters["tags"] += len(answer["tags"])

    media = folder / "media"
    with running_server(f"sqlite:///{db_path}", media, rate_limits=False) as base:
        progress(f"{n_volunteers} simulated volunteers tagging through {base}")
        todo: queue.Queue[_Volunteer] = queue.Queue()
        volunteers = [
            _Volunteer(base, name, password, models[i], seed * 1000 + i)
            for i, (name, password) in enumerate(setup.volunteers)
        ]
        for v in volunteers:
            todo.put(v)
        failures: list[BaseException] = []
        start = time.perf_counter()

        def work() -> None:
            while not failures:
                try:
                    v = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    one_task(v)
                except BaseException as exc:
                    failures.append(exc)
                    return
                if not v.done:
                    todo.put(v)

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - start
        for v in volunteers:
            v.close()
        if failures:
            raise failures[0]
    progress("exporting Amnesty's raw files from the platform database")
    with Session(engine) as session:
        from camcensus.db.projects import project_progress

        state = project_progress(session, setup.project)
    if state["todo"] or state["in_progress"]:
        raise RuntimeError(f"the simulated volunteers left panoramas untagged: {state}")
    export = export_decode(engine, project=setup.project, out=folder / "export")
    engine.dispose()
    (folder / "platform_run.json").write_text(
        json.dumps(
            {
                "submissions": counters["submissions"],
                "tags": counters["tags"],
                "images_served": counters["images"],
                "seconds": round(seconds, 3),
                "volunteers": n_volunteers,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return DemoRun(
        export={k: Path(v) for k, v in export.items()},
        submissions=counters["submissions"],
        tags=counters["tags"],
        images_served=counters["images"],
        seconds=seconds,
        volunteers=n_volunteers,
    )


def _serve_from_env() -> None:
    """Serve :func:`app_from_env` on ``127.0.0.1:$CAMCENSUS_PLATFORM_PORT`` (the child process
    of :func:`running_server`); no access log, as the platform never keeps addresses."""
    import os

    import uvicorn

    uvicorn.run(
        "camcensus.platform_demo:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ["CAMCENSUS_PLATFORM_PORT"]),
        workers=int(os.environ.get("CAMCENSUS_PLATFORM_WORKERS", "1")),
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_keep_alive=30,
    )


if __name__ == "__main__":
    _serve_from_env()
