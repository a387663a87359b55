"""Schemathesis over the app's OpenAPI schema: no generated request may cause a 5xx.

Every operation of ``/openapi.json`` is fuzzed in-process (ASGI) by a logged-in admin (so the
admin, expert and volunteer routes are all reached past their role checks) with the CSRF header
supplied. Hypothesis is derandomized and each operation gets a bounded number of examples, so
the run is reproducible and takes seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error

from camcensus.web.security import CSRF_HEADER
from test_web_api import Browser, add_project, logged_in, make_app, tag, take_task, write_jpeg

#: Examples per operation (x ~27 operations; about 20 s on 2 cores).
MAX_EXAMPLES = 15
#: Operations that would end the fuzzing session (tested in test_web_api.py).
SKIP = {("POST", "/api/logout")}
#: Operations fuzzed anonymously: a log-in or sign-up replaces the session it comes with.
ANONYMOUS = {("POST", "/api/login"), ("POST", "/api/signup")}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    """A project with a tagged panorama, an image and a queued review; rate limits off."""
    application = make_app(tmp_path, rate_limits=False)
    add_project(application)
    write_jpeg(tmp_path / "media" / "images" / "pano-0.jpg", 256, 128)
    yield application
    application.state.engine.dispose()


def _fuzz(
    operation: Any, headers: dict[str, str], cookies: dict[str, str], failures: list[str]
) -> set[int]:
    """Run the operation's generated cases; return the status codes seen."""
    label = f"{operation.method.upper()} {operation.path}"
    seen: set[int] = set()

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        # A Panoramax source would make the server try the network; folder sources only.
        if isinstance(case.body, dict) and case.body.get("source") == "panoramax":
            case.body["source"] = "folder"
        try:
            response = case.call_and_validate(
                headers=headers, cookies=cookies, checks=[not_a_server_error]
            )
        except AssertionError as exc:
            failures.append(f"{label}: {exc}")
            raise
        seen.add(response.status_code)

    # Hypothesis re-raises the (shrunk) failure; it is in ``failures`` already, and the other
    # operations still run, so one run reports them all.
    with contextlib.suppress(AssertionError):
        run()
    return seen


def test_no_generated_request_causes_a_server_error(app: FastAPI) -> None:
    volunteer = logged_in(app, "lynx")
    task = take_task(volunteer)
    volunteer.post(
        f"/api/tasks/{task['task_id']}/submit",
        json={"no_camera": False, "tags": [tag("a", 12.0)]},
    )
    admin = logged_in(app, "boss", role="admin")
    admin.post("/api/admin/projects/city/reviews", json={"panorama_ids": ["pano-1"]})
    anonymous = Browser(app)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for operation in operations:
        key = (operation.method.upper(), operation.path)
        if key in SKIP:
            continue
        who = anonymous if key in ANONYMOUS else admin
        statuses[" ".join(key)] = _fuzz(
            operation, {CSRF_HEADER: who.csrf}, dict(who.client.cookies), failures
        )
    assert failures == [], "\n".join(failures[:5])
    # The fuzzing got past the checks: most operations answered 2xx at least once.
    # (Random ids mostly answer 404; the fixed ones above let many reach their library call.)
    answered = [op for op, codes in statuses.items() if any(c < 300 for c in codes)]
    assert len(answered) >= 10, statuses
    lost = [op for op, codes in statuses.items() if 401 in codes and "login" not in op]
    assert lost == [], lost
    # The session survived the fuzzing: the admin is still logged in.
    assert admin.get("/api/me").json()["role"] == "admin"
