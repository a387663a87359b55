"""Load on the volunteer platform: 200 concurrent simulated volunteers against the real server.

The server runs as its own process (uvicorn over :func:`camcensus.web.create_app`, the app
``camcensus serve`` runs, with the in-memory rate limits off) on a loopback port, so the load
generator never shares its interpreter. The load generator is one asyncio process with a small
keep-alive HTTP/1.1 client (it costs the two cores far less than a full client library would);
every volunteer holds its own connection and log-in session and loops *get a task -> tag it ->
submit*, each tag a random ray.

For each database (SQLite file, PostgreSQL 15 in a throwaway cluster) and each number of server
worker processes, two phases run on a fresh database:

- **capacity** (closed loop): the volunteers never pause, so the server is saturated; the
  sustained acknowledged submissions per second is the platform's capacity;
- **target rate** (open loop): the volunteers together offer ``--rate`` submissions per second
  (each volunteer takes a task every ``volunteers / rate`` seconds and submits half-way), the
  issue's launch-day spike; p50/p99 latency of get-task and submit at that load is the figure
  the target (>= 300 submissions/s with p99 < 100 ms on SQLite) is checked against.

The baseline in the same run is Decode's campaign average (137,325 submissions in ten weeks).
Then the time to render one synthetic panorama in-process and to serve it over HTTP (first
request renders it, later requests read the cached JPEG; ``?w=1024`` for phones).

Every phase records the server's CPU per acknowledged submission (one get-task + one submit)
and the machine's load average: on a shared machine the rates and latencies say little, the
CPU per submission much more (1000 / it is the submissions per second one server core can
carry).

Usage: python benchmarks/bench_platform.py [--quick] [--json out/bench_platform.json]

The issue's target (SQLite, 1 worker, 200 volunteers, 300/s offered, on an idle machine)::

    python benchmarks/bench_platform.py --databases sqlite --workers 1 --seconds 10 --no-images
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROJECT = "bench"
#: Decode's whole campaign: 137,325 submissions in ten weeks (Amnesty International, 2021).
DECODE_SUBMISSIONS_PER_S = 137_325 / (10 * 7 * 86_400)
TARGET_RATE = 300.0
TARGET_P99_MS = 100.0
_PG_BIN = Path("/usr/lib/postgresql/15/bin")
_SEED = 0


# --- the server process --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server_process(url: str, media: Path, *, workers: int = 1) -> Iterator[int]:
    """Run the platform server in child processes (rate limits off); yield its loopback port."""
    from camcensus.platform_demo import running_server

    with running_server(url, media, workers=workers, rate_limits=False) as base:
        yield int(base.rsplit(":", 1)[1])


# --- the database --------------------------------------------------------------------------


def _panoramas(n: int) -> Any:
    """``n`` panoramas whose images are the demo city's synthetic panoramas (cycled)."""
    import pandas as pd

    from camcensus.imagery.synthetic import synthetic_uri
    from camcensus.simulate import simulate_city

    ids = simulate_city(_SEED).panoramas["PanoramaId"].astype(str).tolist()
    rng = np.random.default_rng(_SEED)
    side = int(np.ceil(np.sqrt(n)))
    idx = np.arange(n)
    return pd.DataFrame(
        {
            "panorama_id": [f"bench-{i:06d}" for i in idx],
            "lon": -75.0 + (idx % side) * 1e-3,
            "lat": 39.75 + (idx // side) * 1e-3,
            "heading_deg": np.round(rng.uniform(0, 360, n), 2) % 360,
            "captured": "2021-05",
            "source": "synthetic",
            "source_ref": None,
            "image_uri": [synthetic_uri(_SEED, ids[i % len(ids)]) for i in idx],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "synthetic (no restriction)",
            "republishable": True,
            "intersection_id": None,
        }
    )


def seed_database(url: str, *, n_panoramas: int, n_volunteers: int) -> list[tuple[str, str]]:
    """Store the project ``bench`` and log-in sessions; return ``(session token, csrf)`` pairs.

    Sessions are opened in the database directly: log-in (argon2) is not what is measured.
    """
    import secrets

    from sqlalchemy.orm import Session

    from camcensus.db import accounts, connect, projects, upgrade

    engine = connect(url)
    upgrade(engine)
    out = []
    with Session(engine) as session, session.begin():
        projects.create_project(
            session,
            name=PROJECT,
            title="Benchmark",
            panoramas=_panoramas(n_panoramas),
            licence="synthetic (no restriction)",
        )
        for i in range(n_volunteers):
            v = accounts.create_volunteer(
                session, pseudonym=f"bench-{i:04d}", password=secrets.token_urlsafe(12)
            )
            csrf = secrets.token_urlsafe(32)
            token = accounts.start_session(session, v.volunteer_id, csrf_token=csrf)
            out.append((token, csrf))
    engine.dispose()
    return out


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """Start a throwaway PostgreSQL 15 cluster (durable defaults: fsync and synchronous
    commit on, like SQLite's ``synchronous=FULL``); yield a database URL."""
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="camcensus-bench-pg-"))
    data, sockets, log = root / "data", root / "sockets", root / "server.log"
    sockets.mkdir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(sockets, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_postgres, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stderr}\n{tail}")

    run(str(_PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E",
        "UTF8", "--no-instructions")  # fmt: skip
    options = (
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c max_connections=400 "
        "-c shared_buffers=256MB"
    )
    run(str(_PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "start")
    try:
        dsn = f"host=127.0.0.1 port={port} user=postgres"
        with psycopg.connect(f"{dsn} dbname=postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE camcensus_bench")
        with psycopg.connect(f"{dsn} dbname=camcensus_bench", autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/camcensus_bench"
    finally:
        subprocess.run(
            [*as_postgres, str(_PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


# --- the load generator --------------------------------------------------------------------


class _Http:
    """A keep-alive HTTP/1.1 connection with one volunteer's cookies (no client library)."""

    def __init__(self, port: int, token: str, csrf: str) -> None:
        self.port = port
        self.head = (
            f"Host: 127.0.0.1:{port}\r\nCookie: camcensus_session={token}; "
            f"camcensus_csrf={csrf}\r\nX-CSRF-Token: {csrf}\r\n"
        ).encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        extra = b""
        if method != "GET":
            extra = b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self.writer.write(f"{method} {path} HTTP/1.1\r\n".encode() + self.head + extra + b"\r\n")
        if body:
            self.writer.write(body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                parts.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(p[:-2] for p in parts)
        else:
            data = b""
        if headers.get("connection") == "close":
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def _tags(rng: np.random.Generator) -> bytes:
    n = int(rng.choice([0, 0, 1, 1, 1, 2, 3]))
    tags = [
        {
            "client_id": f"t{j}",
            "heading_deg": round(float(rng.uniform(0, 360)) % 360, 3),
            "pitch_deg": round(float(rng.uniform(-10, 40)), 3),
            "fov_deg": 70.0,
            "attachment": str(rng.choice(["street", "building", "unknown"])),
            "camera_type": str(rng.choice(["dome", "bullet", "unknown"])),
        }
        for j in range(n)
    ]
    payload = {"no_camera": n == 0, "tags": tags, "client_build": "bench-platform"}
    return json.dumps(payload).encode()


@dataclass
class PhaseResult:
    """What one phase measured."""

    name: str
    offered_per_s: float | None
    seconds: float
    submissions: int
    get_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    exhausted: bool = False
    #: acknowledged submissions over the whole phase (warm-up included), and the CPU seconds
    #: the server's processes and this load generator spent over it
    all_submissions: int = 0
    server_cpu_s: float | None = None
    client_cpu_s: float | None = None
    #: the machine's 1-minute load average at the phase's start and end (a shared machine
    #: slows every figure but the CPU per submission)
    load_start: float | None = None
    load_end: float | None = None

    @property
    def submissions_per_s(self) -> float:
        return self.submissions / self.seconds

    def summary(self) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float | None:
            return round(float(np.percentile(values, q)), 2) if values else None

        return {
            "phase": self.name,
            "offered_submissions_per_s": self.offered_per_s,
            "submissions_per_s": round(self.submissions_per_s, 1),
            "submissions": self.submissions,
            "seconds": round(self.seconds, 2),
            "get_task_p50_ms": pct(self.get_ms, 50),
            "get_task_p99_ms": pct(self.get_ms, 99),
            "submit_p50_ms": pct(self.submit_ms, 50),
            "submit_p99_ms": pct(self.submit_ms, 99),
            "requests": len(self.get_ms) + len(self.submit_ms),
            "errors": dict(self.errors),
            "exhausted": self.exhausted,
            "server_cpu_ms_per_submission": _per(self.server_cpu_s, self.all_submissions),
            "client_cpu_ms_per_submission": _per(self.client_cpu_s, self.all_submissions),
            "load_average_1min": [self.load_start, self.load_end],
        }


def _per(cpu_s: float | None, n: int) -> float | None:
    return round(1000 * cpu_s / n, 2) if cpu_s is not None and n else None


def _server_cpu_s() -> float:
    """CPU seconds (user + system) of this process's children: the server's processes."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            t = child.cpu_times()
            total += t.user + t.system
    return total


async def _phase(
    port: int,
    sessions: list[tuple[str, str]],
    *,
    name: str,
    seconds: float,
    warmup: float,
    rate: float | None,
    seed: int,
) -> PhaseResult:
    """Run every volunteer for ``warmup + seconds``; count only what the last ``seconds`` saw."""
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    measure_from = start + warmup
    end = measure_from + seconds
    result = PhaseResult(name=name, offered_per_s=rate, seconds=seconds, submissions=0)
    period = len(sessions) / rate if rate else 0.0
    tasks_path = f"/api/projects/{PROJECT}/tasks"

    def error(kind: str) -> None:
        result.errors[kind] = result.errors.get(kind, 0) + 1

    async def volunteer(i: int, token: str, csrf: str) -> None:
        http = _Http(port, token, csrf)
        rng = np.random.default_rng([seed, i])
        due = start + (rng.uniform(0, period) if rate else 0.0)
        try:
            while True:
                now = loop.time()
                if rate and due > now:
                    await asyncio.sleep(due - now)
                t0 = loop.time()
                if t0 >= end:
                    return
                status, body = await http.request("POST", tasks_path, b"{}")
                t1 = loop.time()
                if t0 >= measure_from:
                    result.get_ms.append((t1 - t0) * 1000)
                if status == 204:
                    result.exhausted = True
                    return
                if status != 200:
                    error(f"get-task {status}")
                    due += period
                    continue
                task_id = json.loads(body)["task_id"]
                payload = _tags(rng)
                if rate:
                    await asyncio.sleep(max(0.0, due + period / 2 - loop.time()))
                t2 = loop.time()
                status, body = await http.request("POST", f"/api/tasks/{task_id}/submit", payload)
                t3 = loop.time()
                if t2 >= measure_from:
                    result.submit_ms.append((t3 - t2) * 1000)
                if status != 200:
                    error(f"submit {status}")
                else:
                    result.all_submissions += 1
                    if measure_from <= t3 < end:
                        result.submissions += 1
                due += period
        except (OSError, asyncio.IncompleteReadError) as exc:
            error(type(exc).__name__)
        finally:
            await http.close()

    server0, client0 = _server_cpu_s(), time.process_time()
    result.load_start = round(os.getloadavg()[0], 2)
    await asyncio.gather(*(volunteer(i, t, c) for i, (t, c) in enumerate(sessions)))
    result.server_cpu_s = _server_cpu_s() - server0
    result.client_cpu_s = time.process_time() - client0
    result.load_end = round(os.getloadavg()[0], 2)
    return result


def run_load(
    port: int, sessions: list[tuple[str, str]], *, seconds: float, rate: float
) -> list[PhaseResult]:
    """The capacity phase (closed loop), then the target-rate phase (open loop)."""
    capacity = asyncio.run(
        _phase(port, sessions, name="capacity", seconds=seconds, warmup=2, rate=None, seed=1)
    )
    target = asyncio.run(
        _phase(port, sessions, name="target", seconds=seconds, warmup=2, rate=rate, seed=2)
    )
    return [capacity, target]


# --- images --------------------------------------------------------------------------------


def image_timings(port: int, session: tuple[str, str], *, repeats: int = 10) -> dict[str, Any]:
    """Time rendering one synthetic panorama in-process and serving panoramas over HTTP."""
    import httpx

    from camcensus.imagery.synthetic import render_jpeg
    from camcensus.simulate import simulate_city

    ids = simulate_city(_SEED).panoramas["PanoramaId"].astype(str).tolist()
    render_jpeg(_SEED, ids[-1])  # the city and the renderer's imports are warm
    t = time.perf_counter()
    jpeg = render_jpeg(_SEED, ids[0])
    render_s = time.perf_counter() - t
    token, csrf = session
    out: dict[str, Any] = {"render_4096x2048_ms": round(render_s * 1000, 1),
                           "jpeg_bytes": len(jpeg)}  # fmt: skip
    cookies = {"camcensus_session": token, "camcensus_csrf": csrf}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", cookies=cookies, timeout=60) as c:

        def get(pid: str, w: str) -> tuple[float, int]:
            t = time.perf_counter()
            r = c.get(f"/api/panoramas/{pid}/image", params={"w": w})
            if r.status_code != 200 or not r.content.startswith(b"\xff\xd8"):
                raise RuntimeError(f"image of {pid} not served: {r.status_code} {r.text[:200]}")
            return (time.perf_counter() - t) * 1000, len(r.content)

        get("bench-001563", "1024")  # the server's city is simulated once, untimed
        for pid, w in (("bench-000001", "4096"), ("bench-000002", "1024")):
            first, size = get(pid, w)
            cached = [get(pid, w)[0] for _ in range(repeats)]
            out[f"serve_w{w}_first_ms"] = round(first, 1)
            out[f"serve_w{w}_cached_ms"] = round(float(np.median(cached)), 2)
            out[f"serve_w{w}_bytes"] = size
    return out


# --- main ----------------------------------------------------------------------------------


def _configurations(args: argparse.Namespace) -> list[tuple[str, int]]:
    return [(db, int(w)) for db in args.databases.split(",") for w in args.workers.split(",")]


def _bench_one(
    database: str, workers: int, args: argparse.Namespace, root: Path
) -> tuple[list[PhaseResult], dict[str, Any] | None]:
    media = root / "media"
    media.mkdir(exist_ok=True)
    n_panoramas = int(args.panoramas)
    with contextlib.ExitStack() as stack:
        if database == "sqlite":
            db_file = root / f"bench-{workers}.sqlite"
            url = f"sqlite:///{db_file}"
        else:
            url = stack.enter_context(postgres_cluster())
        sessions = seed_database(url, n_panoramas=n_panoramas, n_volunteers=args.volunteers)
        port = stack.enter_context(server_process(url, media, workers=workers))
        phases = run_load(port, sessions, seconds=args.seconds, rate=args.rate)
        images = None
        if database == "sqlite" and workers == 1 and not args.no_images:
            images = image_timings(port, sessions[0])
    return phases, images


def _print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["database", "workers", "phase", "offered", "subm/s", "get p50", "get p99",
            "sub p50", "sub p99", "srv ms/sub", "load", "errors"]  # fmt: skip
    print(" | ".join(f"{c:>9}" for c in cols))
    for r in rows:
        cells = [
            r["database"], r["workers"], r["phase"], r["offered_submissions_per_s"] or "max",
            r["submissions_per_s"], r["get_task_p50_ms"], r["get_task_p99_ms"],
            r["submit_p50_ms"], r["submit_p99_ms"], r["server_cpu_ms_per_submission"],
            r["load_average_1min"][1], sum(r["errors"].values()),
        ]  # fmt: skip
        print(" | ".join(f"{c!s:>9}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2", help="server worker processes to compare")
    parser.add_argument("--volunteers", type=int, default=200)
    parser.add_argument("--rate", type=float, default=TARGET_RATE)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds a phase")
    parser.add_argument("--panoramas", type=int, default=8000)
    parser.add_argument("--quick", action="store_true", help="SQLite, 1 worker, 5 s phases")
    parser.add_argument(
        "--synchronous",
        default=None,
        help="SQLite synchronous level of the server (FULL, the default, or NORMAL)",
    )
    parser.add_argument("--no-images", action="store_true", help="skip the image timings")
    parser.add_argument("--json", type=Path, default=Path("out/bench_platform.json"))
    args = parser.parse_args(argv)
    if args.quick:
        args.databases, args.workers, args.seconds, args.panoramas = "sqlite", "1", 5.0, 4000
    if args.synchronous:
        os.environ["CAMCENSUS_SQLITE_SYNCHRONOUS"] = args.synchronous.upper()
    rows: list[dict[str, Any]] = []
    images: dict[str, Any] | None = None
    print(
        f"{args.volunteers} simulated volunteers, {os.cpu_count()} CPUs; target "
        f">= {TARGET_RATE:.0f} submissions/s with p99 < {TARGET_P99_MS:.0f} ms on SQLite"
    )
    with tempfile.TemporaryDirectory(prefix="camcensus-bench-") as tmp:
        for database, workers in _configurations(args):
            root = Path(tmp) / f"{database}-{workers}"
            root.mkdir()
            phases, got = _bench_one(database, workers, args, root)
            images = images or got
            for p in phases:
                rows.append({"database": database, "workers": workers, **p.summary()})
                print(f"  {database} x{workers} {p.name}: {rows[-1]}", flush=True)
    print()
    _print_table(rows)
    target_rows = [r for r in rows if r["phase"] == "target" and r["database"] == "sqlite"]
    verdicts = []
    for r in target_rows:
        met = (
            r["submissions_per_s"] >= 0.98 * TARGET_RATE
            and not r["errors"]
            and max(r["get_task_p99_ms"] or 1e9, r["submit_p99_ms"] or 1e9) < TARGET_P99_MS
        )
        load = max(v for v in r["load_average_1min"] if v is not None)
        idle = load < 0.5 * (os.cpu_count() or 1) + 0.5
        verdicts.append({"workers": r["workers"], "met": met, "load_average_1min": load})
        print(
            f"SQLite, {r['workers']} worker(s): target {'MET' if met else 'MISSED'}"
            + ("" if idle else f" (the machine was loaded, load average {load}: not a verdict)")
        )
    best = max((r["submissions_per_s"] for r in rows if r["phase"] == "capacity"), default=0.0)
    print(f"Baseline: Decode's campaign averaged {DECODE_SUBMISSIONS_PER_S:.3f} submissions/s; "
          f"the best capacity measured here is {best / DECODE_SUBMISSIONS_PER_S:,.0f} times "
          "that")  # fmt: skip
    if images:
        print("Images:", json.dumps(images))
    report = {
        "volunteers": args.volunteers,
        "sqlite_synchronous": os.environ.get("CAMCENSUS_SQLITE_SYNCHRONOUS", "FULL"),
        "cpus": os.cpu_count(),
        "target": {"submissions_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS},
        "decode_campaign_submissions_per_s": round(DECODE_SUBMISSIONS_PER_S, 4),
        "runs": rows,
        "sqlite_target": verdicts,
        "images": images,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
