"""Durability: a submission acknowledged to the client survives SIGKILL of the server.

The real server (``camcensus serve``) runs as a subprocess on a file database; simulated
volunteers submit concurrently; the server is killed with SIGKILL while requests are in
flight; it is restarted on the same database. Every submission the client got a 2xx for must
be stored with exactly the tags sent, and no stored submission may be half-written (a
submission without its tags, or counters that disagree with the rows).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from camcensus.db import accounts, connect, projects, upgrade
from camcensus.db.models import Assignment, Panorama, Submission, Tag

PROJECT = "durable"
N_PANORAMAS = 150
N_VOLUNTEERS = 12
#: Acknowledged submissions to wait for before the server is killed.
KILL_AFTER = 60

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(url: str) -> list[tuple[str, str]]:
    """Store the project and open one log-in session per volunteer: (token, csrf) pairs."""
    engine = connect(url)
    upgrade(engine)
    n = N_PANORAMAS
    panoramas = pd.DataFrame(
        {
            "panorama_id": [f"dur-{i:04d}" for i in range(n)],
            "lon": [-75.0 + 1e-3 * (i % 15) for i in range(n)],
            "lat": [39.75 + 1e-3 * (i // 15) for i in range(n)],
            "heading_deg": [float(7 * i % 360) for i in range(n)],
            "captured": "2021-05",
            "source": "synthetic",
            "source_ref": None,
            "image_uri": [f"synthetic:0:dur-{i:04d}" for i in range(n)],
            "width_px": 4096,
            "height_px": 2048,
            "licence": "synthetic (no restriction)",
            "republishable": True,
            "intersection_id": None,
        }
    )
    logins = []
    with Session(engine) as session, session.begin():
        projects.create_project(
            session, name=PROJECT, title="Durability", panoramas=panoramas, licence="test"
        )
        for i in range(N_VOLUNTEERS):
            v = accounts.create_volunteer(
                session, pseudonym=f"durable-{i:02d}", password=secrets.token_urlsafe(12)
            )
            csrf = secrets.token_urlsafe(32)
            logins.append((accounts.start_session(session, v.volunteer_id, csrf_token=csrf), csrf))
    engine.dispose()
    return logins


@contextlib.contextmanager
def _server(url: str, media: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Run ``camcensus serve`` on a free loopback port; yield the process and its URL."""
    port = _free_port()
    args = [sys.executable, "-m", "camcensus.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--database", url, "--media", str(media)]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                pytest.fail(f"camcensus serve exited with {proc.returncode}:\n{err[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/api/csrf", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "camcensus serve did not answer within 60 s"
            time.sleep(0.05)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _payload(rng: random.Random) -> dict[str, Any]:
    """A submission as the tagging page sends it: 0-3 rays, one of them edited sometimes."""
    tags: list[dict[str, Any]] = []
    for j in range(rng.choice([0, 1, 1, 2, 3])):
        tags.append(
            {
                "client_id": f"c{j}",
                "heading_deg": round(rng.uniform(0, 359.9), 4),
                "pitch_deg": round(rng.uniform(-10, 45), 4),
                "fov_deg": round(rng.uniform(30, 90), 2),
                "attachment": rng.choice(["street", "building", "unknown"]),
                "camera_type": rng.choice(["dome", "bullet", "unknown"]),
            }
        )
    if tags and rng.random() < 0.3:
        tags.append({**tags[0], "client_id": "c0-moved", "replaces": "c0", "pitch_deg": 12.5})
    return {"no_camera": not tags, "tags": tags, "client_build": "durability-test"}


class _Load:
    """Volunteers submitting concurrently; records what was sent and what was acknowledged."""

    def __init__(self, base: str, logins: list[tuple[str, str]]) -> None:
        self.base = base
        self.logins = logins
        self.lock = threading.Lock()
        self.sent: dict[str, dict[str, Any]] = {}  # task id -> payload
        self.acked: dict[str, str] = {}  # submission id -> task id
        self.unexpected: list[str] = []
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._volunteer, args=(i,), daemon=True)
            for i in range(len(logins))
        ]

    def _volunteer(self, i: int) -> None:
        token, csrf = self.logins[i]
        rng = random.Random(1000 + i)
        cookies = {"camcensus_session": token, "camcensus_csrf": csrf}
        with httpx.Client(
            base_url=self.base, cookies=cookies, headers={"X-CSRF-Token": csrf}, timeout=10
        ) as client:
            while not self.stop.is_set():
                try:
                    r = client.post(f"/api/projects/{PROJECT}/tasks", json={})
                    if r.status_code == 204:
                        return
                    if r.status_code != 200:
                        with self.lock:
                            self.unexpected.append(f"get-task {r.status_code}: {r.text[:200]}")
                        return
                    task_id = r.json()["task_id"]
                    payload = _payload(rng)
                    with self.lock:
                        self.sent[task_id] = payload
                    r = client.post(f"/api/tasks/{task_id}/submit", json=payload)
                except httpx.TransportError:
                    return  # the server was killed
                if r.status_code != 200:
                    with self.lock:
                        self.unexpected.append(f"submit {r.status_code}: {r.text[:200]}")
                    return
                with self.lock:
                    self.acked[r.json()["submission_id"]] = task_id

    def run_until_killed(self, proc: subprocess.Popen[bytes]) -> None:
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(self.acked) < KILL_AFTER and time.monotonic() < deadline:
            if not any(t.is_alive() for t in self.threads):
                break
            time.sleep(0.005)
        # SIGKILL while requests are in flight: no shutdown code of the server runs.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        self.stop.set()
        for t in self.threads:
            t.join(timeout=15)


def _stored(url: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int], dict[str, int]]:
    """Submissions, tags, n_done per panorama and submitted assignments per panorama."""
    engine = connect(url)
    with Session(engine) as session:
        subs = pd.DataFrame(
            session.execute(
                select(
                    Submission.submission_id,
                    Submission.assignment_id,
                    Submission.panorama_id,
                    Submission.no_camera,
                )
            ).all(),
            columns=["submission_id", "assignment_id", "panorama_id", "no_camera"],
        )
        tags = pd.DataFrame(
            session.execute(
                select(
                    Tag.submission_id,
                    Tag.client_tag_id,
                    Tag.heading_deg,
                    Tag.pitch_deg,
                    Tag.fov_deg,
                    Tag.attachment,
                    Tag.camera_type,
                    Tag.current,
                )
            ).all(),
            columns=[
                "submission_id",
                "client_tag_id",
                "heading_deg",
                "pitch_deg",
                "fov_deg",
                "attachment",
                "camera_type",
                "current",
            ],
        )
        n_done = dict(session.execute(select(Panorama.panorama_id, Panorama.n_done)).all())
        submitted: dict[str, int] = {}
        for pid in session.scalars(
            select(Assignment.panorama_id).where(Assignment.status == "submitted")
        ):
            submitted[pid] = submitted.get(pid, 0) + 1
    engine.dispose()
    return subs, tags, {str(k): int(v) for k, v in n_done.items()}, submitted


def _check_durable(url: str, load: _Load) -> None:
    assert not load.unexpected, load.unexpected[:5]
    assert len(load.acked) >= KILL_AFTER // 2, f"only {len(load.acked)} submissions before kill"
    subs, tags, n_done, submitted = _stored(url)
    by_id = subs.set_index("submission_id")
    missing = sorted(set(load.acked) - set(by_id.index))
    assert not missing, f"{len(missing)} acknowledged submissions lost after SIGKILL: {missing[:5]}"
    for submission_id, task_id in load.acked.items():
        assert by_id.loc[submission_id, "assignment_id"] == task_id
    # Every stored submission (acknowledged or cut off before its answer) holds exactly the
    # tags its request carried: nothing half-written.
    tags_of = {sid: g for sid, g in tags.groupby("submission_id")}
    for row in subs.itertuples():
        submission_id, task_id = str(row.submission_id), str(row.assignment_id)
        assert task_id in load.sent, f"{submission_id}: a task nobody submitted"
        sent = load.sent[task_id]
        assert bool(row.no_camera) == sent["no_camera"]
        stored = tags_of.get(submission_id, tags.iloc[:0]).sort_values("client_tag_id")
        expected = sorted(sent["tags"], key=lambda t: t["client_id"])
        assert list(stored["client_tag_id"]) == [t["client_id"] for t in expected], (
            f"submission {submission_id} is stored with tags "
            f"{list(stored['client_tag_id'])}, its request sent "
            f"{[t['client_id'] for t in expected]}"
        )
        replaced = {t.get("replaces") for t in expected}
        for got, want in zip(stored.itertuples(), expected, strict=True):
            for col in ("heading_deg", "pitch_deg", "fov_deg"):
                assert abs(float(getattr(got, col)) - want[col]) < 1e-9, (submission_id, col)
            assert (got.attachment, got.camera_type) == (want["attachment"], want["camera_type"])
            assert bool(got.current) == (want["client_id"] not in replaced)
    orphans = set(tags["submission_id"]) - set(subs["submission_id"])
    assert not orphans, f"tags without their submission: {sorted(orphans)[:5]}"
    per_panorama = subs.groupby("panorama_id").size().to_dict()
    for pid, count in n_done.items():
        assert count == per_panorama.get(pid, 0) == submitted.get(pid, 0), pid


def _kill_and_restart(url: str, tmp_path: Path) -> _Load:
    logins = _seed(url)
    media = tmp_path / "media"
    with _server(url, media) as (proc, base):
        load = _Load(base, logins)
        load.run_until_killed(proc)
    # The restarted server opens the same database (recovery runs) and serves tasks again.
    with _server(url, media) as (_, base):
        token, csrf = logins[0]
        cookies = {"camcensus_session": token, "camcensus_csrf": csrf}
        with httpx.Client(base_url=base, cookies=cookies, timeout=10) as client:
            r = client.post(
                f"/api/projects/{PROJECT}/tasks", json={}, headers={"X-CSRF-Token": csrf}
            )
            assert r.status_code in (200, 204), r.text
    return load


def test_acknowledged_submissions_survive_sigkill_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'platform.sqlite'}"
    load = _kill_and_restart(url, tmp_path)
    _check_durable(url, load)
    engine = connect(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    engine.dispose()


@pytest.mark.postgis
def test_acknowledged_submissions_survive_sigkill_postgresql(
    postgis_fresh_url: str, tmp_path: Path
) -> None:
    load = _kill_and_restart(postgis_fresh_url, tmp_path)
    _check_durable(postgis_fresh_url, load)
