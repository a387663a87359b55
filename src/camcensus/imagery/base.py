"""What every imagery source shares: the ``panoramas`` columns, ids, dates and HTTP with retries.

Each source returns a :class:`pandas.DataFrame` with :data:`PANORAMA_COLUMNS` (the
``panoramas`` contract of docs/platform.md, minus the project and status columns) and puts the
image it pinned into an :class:`~camcensus.imagery.store.ImageStore`, so every volunteer sees the
same pixels. Records a source leaves out are counted in a :class:`~camcensus._errors.Ledger`.
"""

from __future__ import annotations

import io
import json
import math
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from camcensus._errors import InputError, OptionError, Problem

if TYPE_CHECKING:
    import httpx

__all__ = [
    "MAX_ANSWER_BYTES",
    "PANORAMA_COLUMNS",
    "SOURCES",
    "SourceError",
    "captured_from",
    "check_bbox",
    "equirect_problem",
    "get_with_retries",
    "image_size",
    "json_from",
    "new_panorama_id",
    "panoramas_frame",
]

#: Columns of the ``panoramas`` contract a source fills (docs/platform.md).
PANORAMA_COLUMNS: tuple[str, ...] = (
    "panorama_id",
    "lon",
    "lat",
    "heading_deg",
    "captured",
    "source",
    "source_ref",
    "image_uri",
    "width_px",
    "height_px",
    "licence",
    "republishable",
    "intersection_id",
)

#: The values of the ``source`` column.
SOURCES: tuple[str, ...] = ("folder", "panoramax", "mapillary", "gsv", "synthetic")

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_WAIT_S = 30.0
# Query parameters that carry a user's secret: never shown in an error message.
_SECRET_PARAMS = frozenset({"key", "access_token", "token", "signature"})


class SourceError(InputError):
    """Raised when an imagery service cannot be used: unreachable, failing, or answering
    something that is not its documented format. The problem names the URL as its file."""


def new_panorama_id() -> str:
    """Return a random panorama id (16 URL-safe characters, never sequential)."""
    return secrets.token_urlsafe(12)


def panoramas_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Return ``rows`` as a ``panoramas`` frame with :data:`PANORAMA_COLUMNS` and fixed dtypes."""
    df = pd.DataFrame(list(rows), columns=list(PANORAMA_COLUMNS))
    df["lon"] = df["lon"].astype("float64")
    df["lat"] = df["lat"].astype("float64")
    df["heading_deg"] = df["heading_deg"].astype("float64")
    df["width_px"] = df["width_px"].astype("int64")
    df["height_px"] = df["height_px"].astype("int64")
    df["republishable"] = df["republishable"].astype("bool")
    for col in ("panorama_id", "source", "image_uri", "licence"):
        df[col] = df[col].astype("object")
    for col in ("captured", "source_ref", "intersection_id"):
        df[col] = df[col].astype("object").where(df[col].notna(), None)
    return df


def image_size(data: bytes) -> tuple[int, int, str]:
    """Return ``(width, height, format)`` of an encoded image, reading only its header.

    Raises
    ------
    ValueError
        When Pillow cannot identify the bytes as an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            return int(im.width), int(im.height), str(im.format or "")
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"not a readable image ({err})") from err


def equirect_problem(
    width: int, height: int, *, file: str, row: int | None, column: str | None = None
) -> Problem | None:
    """Return a :class:`Problem` when ``width × height`` is not a full 2:1 equirectangular image."""
    if width == 2 * height and height >= 2:
        return None
    return Problem(
        file=file,
        row=row,
        column=column,
        found=f"an image of {width}×{height} px (ratio {width / max(height, 1):.3f}:1)",
        expected="a full 360°×180° equirectangular panorama, exactly twice as wide as high",
        fix=(
            "export the full sphere from the camera's stitching software (equirectangular, "
            "e.g. 5760×2880); a cropped or partial panorama cannot be tagged with true pitches"
        ),
    )


_DATE = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?")


def captured_from(value: object) -> str | None:
    """Return a capture date as ``YYYY-MM-DD`` or ``YYYY-MM`` (``None`` when unknown).

    Accepts ISO dates and date-times (``2022-05-03T13:28:56+00:00``), ``YYYY-MM``, and
    epoch milliseconds (Mapillary's ``captured_at``). Raises ``ValueError`` for anything else.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date")
    if isinstance(value, int | float):
        dt = datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
        return dt.strftime("%Y-%m-%d")
    text = str(value).strip()
    if not text:
        return None
    m = _DATE.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a date")
    year, month, day = int(m.group(1)), int(m.group(2)), m.group(3)
    if day is None:
        if not 1 <= month <= 12:
            raise ValueError(f"{text!r} has no month {month}")
        return f"{year:04d}-{month:02d}"
    try:
        return datetime(year, month, int(day)).strftime("%Y-%m-%d")
    except ValueError as err:
        raise ValueError(f"{text!r} is not a date ({err})") from err


def check_bbox(bbox: Sequence[float] | None, *, option: str = "bbox") -> tuple[float, ...] | None:
    """Return ``bbox`` as ``(west, south, east, north)`` in degrees, or raise ``OptionError``."""
    if bbox is None:
        return None
    try:
        w, s, e, n = (float(v) for v in bbox)
    except (TypeError, ValueError) as err:
        raise OptionError(
            f"{option} must be four numbers [west, south, east, north] in degrees, e.g. "
            "[2.18, 48.98, 2.19, 48.99]"
        ) from err
    ok = all(math.isfinite(v) for v in (w, s, e, n))
    if not (ok and -180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise OptionError(
            f"{option}={[w, s, e, n]} is not [west, south, east, north] with west < east, "
            "south < north, longitudes in [-180, 180] and latitudes in [-90, 90]; e.g. "
            "[2.18, 48.98, 2.19, 48.99]"
        )
    return (w, s, e, n)


def _problem(url: str, found: str, expected: str, fix: str) -> SourceError:
    return SourceError(
        [Problem(file=url, row=None, column=None, found=found, expected=expected, fix=fix)]
    )


#: Largest answer :func:`get_with_retries` reads by default (bytes).
MAX_ANSWER_BYTES = 100 * 1024 * 1024


class _TooLargeError(Exception):
    """An answer grew past the byte limit."""


def _bounded_get(
    client: httpx.Client,
    url: str,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    max_bytes: int,
) -> httpx.Response:
    """GET ``url`` reading at most ``max_bytes`` of body; return a fully read response."""
    import httpx

    # No params at all (not {}) keeps the query of a paging link's URL.
    with client.stream(
        "GET", url, params=dict(params) if params else None, headers=dict(headers or {})
    ) as streamed:
        declared = streamed.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _TooLargeError(f"Content-Length {int(declared):,}")
        chunks: list[bytes] = []
        size = 0
        for chunk in streamed.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _TooLargeError(f"more than {max_bytes:,} bytes streamed")
            chunks.append(chunk)
        # The body is decoded already: the new response must not decode it again.
        kept = [
            (k, v)
            for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(
            streamed.status_code,
            headers=kept,
            content=b"".join(chunks),
            request=streamed.request,
        )


def get_with_retries(
    client: httpx.Client,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    retries: int,
    backoff_s: float,
    service: str,
    fix: str,
    max_bytes: int = MAX_ANSWER_BYTES,
) -> httpx.Response:
    """GET ``url``, retrying timeouts, connection errors, 429 and 5xx answers.

    Parameters
    ----------
    client
        The HTTP client (its timeout applies to every try).
    url, params, headers
        The request. Secrets belong in ``headers`` so they never appear in an error message.
    retries
        How many times to try again after the first failure.
    backoff_s
        Wait before the first retry; doubled on each further retry (``Retry-After`` wins when
        the service sends one, up to 30 s).
    service, fix
        Named in the error raised when every try failed.
    max_bytes
        Largest body read (the answer is streamed and refused once it grows past this, so a
        broken or hostile server cannot fill the memory).

    Raises
    ------
    SourceError
        After the last failed try, or at once on a 4xx answer other than 429; the problem
        names the URL, what came back and ``fix``.
    """
    import httpx

    shown = str(
        httpx.URL(
            url,
            params={k: ("***" if k in _SECRET_PARAMS else v) for k, v in (params or {}).items()},
        )
    )
    last = ""
    for attempt in range(retries + 1):
        wait = backoff_s * (2**attempt)
        try:
            # No params at all (not {}) keeps the query of a paging link's URL.
            response = _bounded_get(client, url, params, headers, max_bytes)
        except _TooLargeError as err:
            raise _problem(
                shown,
                f"an answer larger than {max_bytes:,} bytes ({err})",
                f"an answer from {service} under {max_bytes:,} bytes",
                fix,
            ) from None
        except httpx.TimeoutException:
            last = f"no answer within the timeout ({client.timeout.read} s)"
        except httpx.TransportError as err:
            last = f"a connection error ({type(err).__name__}: {err})"
        else:
            if response.status_code < 400:
                return response
            last = f"HTTP {response.status_code}"
            if response.status_code not in _RETRY_STATUS:
                raise _problem(
                    shown,
                    f"{last} from {service}",
                    "HTTP 200",
                    fix,
                )
            retry_after = response.headers.get("retry-after", "")
            if retry_after.isdigit():
                wait = float(retry_after)
        if attempt < retries:
            time.sleep(min(wait, _MAX_WAIT_S))
    raise _problem(
        shown,
        f"{last} on each of {retries + 1} tries",
        f"an answer from {service}",
        fix,
    )


def json_from(response: httpx.Response, *, service: str, expected: str) -> Any:
    """Return the JSON body of ``response``, or raise :class:`SourceError` naming the URL."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        head = response.content[:60].decode("utf-8", "replace")
        raise _problem(
            str(response.request.url),
            f"a body that is not JSON ({head!r}…)",
            expected,
            f"check that the URL points at {service} (not a web page or a proxy's error "
            "page) and try again",
        ) from None
