"""HTTP for :mod:`camcensus.fetch`: a checksummed cache, retries with backoff, progress bars.

Every download goes through one :class:`Fetcher`. A body is streamed to a temporary file while
its sha256 is computed, checked by the source's validator (a cut JSON document or zip file is
retried like a 5xx), and only then moved into the cache and recorded in ``manifest.json`` with
its URL (secrets removed), size, sha256 and date. A later request for the same URL and
parameters is served from the cache after its checksum is verified again; a copy that fails the
check is downloaded anew.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from camcensus._errors import OptionError, Problem
from camcensus.imagery.base import SourceError

if TYPE_CHECKING:
    import httpx
    from rich.progress import Progress

__all__ = [
    "BASE_URLS",
    "FetchError",
    "FetchStats",
    "Fetcher",
    "InvalidBodyError",
    "OfflineError",
    "base_url",
    "default_cache_dir",
]

#: Each source's default base URL and the environment variable that overrides it.
BASE_URLS: dict[str, tuple[str, str]] = {
    "overpass": ("CAMCENSUS_OVERPASS_URL", "https://overpass-api.de/api/interpreter"),
    "nominatim": ("CAMCENSUS_NOMINATIM_URL", "https://nominatim.openstreetmap.org"),
    "census_api": ("CAMCENSUS_CENSUS_API_URL", "https://api.census.gov/data"),
    "tiger": ("CAMCENSUS_TIGER_URL", "https://www2.census.gov/geo/tiger"),
    "nypd": ("CAMCENSUS_NYPD_URL", "https://www.nyc.gov/assets/nypd/downloads"),
    "panoramax": ("CAMCENSUS_PANORAMAX_URL", "https://api.panoramax.xyz"),
}

_CACHE_ENV = "CAMCENSUS_CACHE_DIR"
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_USER_AGENT = "camcensus (surveillance-camera census; +https://pypi.org/project/camcensus/)"
# ConnectError texts meaning the host name could not be resolved: no network (or no DNS).
_NO_DNS = re.compile(
    r"name resolution|name or service not known|nodename nor servname|getaddrinfo|"
    r"no address associated|temporary failure in name",
    re.IGNORECASE,
)
_MANIFEST = "manifest.json"


class FetchError(SourceError):
    """Raised when a public source cannot be downloaded or answers something unusable; the
    problem names the URL (without secrets), what came back and the fix."""


class OfflineError(FetchError):
    """Raised when a source's host cannot be reached at all (no network, no DNS)."""


class InvalidBodyError(Exception):
    """Raised by a validator: the body is not the source's format (``retry``: it looks cut
    short or is a transient server answer, so downloading again may help)."""

    def __init__(self, found: str, *, retry: bool = False) -> None:
        super().__init__(found)
        self.found = found
        self.retry = retry


def problem(url: str, found: str, expected: str, fix: str, *, offline: bool = False) -> FetchError:
    """Return a :class:`FetchError` (or :class:`OfflineError`) with one problem naming ``url``."""
    cls = OfflineError if offline else FetchError
    return cls([Problem(file=url, row=None, column=None, found=found, expected=expected, fix=fix)])


def base_url(name: str, override: str | None = None) -> str:
    """Return the base URL of source ``name``: ``override``, else its ``CAMCENSUS_*`` variable,
    else the public default (:data:`BASE_URLS`); without a trailing slash."""
    env, default = BASE_URLS[name]
    value = override or os.environ.get(env) or default
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        origin = "the option" if override else f"{env}" if os.environ.get(env) else "default"
        raise OptionError(
            f"the {name} URL {value[:80]!r} (from {origin}) is not an http(s) URL; e.g. {default}"
        )
    return value.strip().rstrip("/")


def default_cache_dir() -> Path:
    """Return the cache folder: ``$CAMCENSUS_CACHE_DIR``, else ``$XDG_CACHE_HOME/camcensus``,
    else ``~/.cache/camcensus``."""
    env = os.environ.get(_CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "camcensus"


@dataclass
class FetchStats:
    """What a :class:`Fetcher` did: requests sent, retries among them, cache hits, bytes."""

    requests: int = 0
    retries: int = 0
    cache_hits: int = 0
    downloads: int = 0
    bytes_downloaded: int = 0
    #: Cached copies whose sha256 no longer matched the manifest (downloaded again).
    cache_corrupt: int = 0
    #: Seconds waited before each retry (``Retry-After`` or the backoff).
    waits_s: list[float] = field(default_factory=list)
    #: Why tries failed (``HTTP 503``, ``timeout``, ``truncated body`` ...), with counts.
    failures: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain JSON-able values."""
        return {
            "requests": self.requests,
            "retries": self.retries,
            "cache_hits": self.cache_hits,
            "downloads": self.downloads,
            "bytes_downloaded": self.bytes_downloaded,
            "cache_corrupt": self.cache_corrupt,
            "waits_s": [round(w, 3) for w in self.waits_s],
            "failures": dict(sorted(self.failures.items())),
        }


@dataclass(frozen=True)
class Download:
    """A body in the cache: its file, sha256, size, the URL shown (no secrets) and when fetched."""

    path: Path
    sha256: str
    size: int
    url: str
    fetched: str
    from_cache: bool
    content_type: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _retry_after(value: str | None) -> float | None:
    """Return the seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body_head(data: bytes) -> str:
    """Return the first line of an error body, printable and short (a server's own message)."""
    text = data[:400].decode("utf-8", "replace")
    if text.lstrip().startswith("<"):
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        text = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    return text[:160]


class Fetcher:
    """Download with a checksummed cache, retries with exponential backoff and progress bars.

    Parameters
    ----------
    cache_dir
        Where bodies and ``manifest.json`` are kept (default :func:`default_cache_dir`).
    refresh
        Download again even when a verified copy is cached (the cache is then updated).
    timeout_s
        Each request's connect/read timeout (seconds).
    retries
        Tries after the first failed one (timeouts, connection errors, 408/429/5xx answers,
        truncated or cut bodies).
    backoff_s
        Wait before the first retry, doubled on each further retry; a ``Retry-After`` header
        (seconds or an HTTP date) replaces it.
    max_wait_s
        The longest single wait: a ``Retry-After`` asking for more is an error saying when to
        try again.
    progress
        Show a rich progress bar per download (on standard error).
    client
        An ``httpx.Client`` to use instead of a new one.
    sleep
        The function that waits (tests pass one that records instead of sleeping).
    """

    def __init__(
        self,
        *,
        cache_dir: str | Path | None = None,
        refresh: bool = False,
        timeout_s: float = 60.0,
        retries: int = 4,
        backoff_s: float = 2.0,
        max_wait_s: float = 120.0,
        progress: bool = False,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        import httpx

        if not (isinstance(retries, int) and 0 <= retries <= 20):
            raise OptionError(f"retries={retries!r} must be an integer in 0..20, e.g. 4")
        for name, value in (("timeout_s", timeout_s), ("max_wait_s", max_wait_s)):
            if not (math.isfinite(float(value)) and float(value) > 0):
                raise OptionError(f"{name}={value!r} must be a positive number of seconds")
        if not (math.isfinite(float(backoff_s)) and float(backoff_s) >= 0):
            raise OptionError(f"backoff_s={backoff_s!r} must be >= 0 seconds, e.g. 2")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.refresh = refresh
        self.timeout_s = float(timeout_s)
        self.retries = retries
        self.backoff_s = float(backoff_s)
        self.max_wait_s = float(max_wait_s)
        self.stats = FetchStats()
        self.notes: list[str] = []
        self._sleep = sleep
        self._own = client is None
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(self.timeout_s),
            follow_redirects=True,
            headers={"User-Agent": _USER_AGENT},
        )
        self._progress: Progress | None = None
        if progress:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> Fetcher:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the progress display and close the client this fetcher opened."""
        if self._progress is not None:
            self._progress.stop()
        if self._own:
            self.client.close()

    # -- cache -----------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        """The cache's manifest (``{key: {url, file, sha256, bytes, fetched, content_type}}``)."""
        return self.cache_dir / _MANIFEST

    def manifest(self) -> dict[str, dict[str, Any]]:
        """Return the cache manifest's entries (empty when there is no cache yet)."""
        try:
            doc = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError):
            self.notes.append(f"the cache manifest {self.manifest_path} was unreadable; rebuilt")
            return {}
        entries = doc.get("entries") if isinstance(doc, dict) else None
        return entries if isinstance(entries, dict) else {}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        lock = self.cache_dir / ".lock"
        with lock.open("a") as fh:
            try:
                import fcntl

                fcntl.flock(fh, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows: no lock, last writer wins
                pass
            yield

    def _record(self, key: str, entry: dict[str, Any]) -> None:
        with self._locked():
            entries = self.manifest()
            entries[key] = entry
            tmp = self.manifest_path.with_suffix(".json.tmp")
            tmp.write_text(
                json.dumps({"version": 1, "entries": entries}, indent=1, sort_keys=True),
                encoding="utf-8",
            )
            os.replace(tmp, self.manifest_path)

    @staticmethod
    def cache_key(method: str, url: str, params: Mapping[str, str] | None, data: str | None) -> str:
        """Return the cache key of a request (secrets are never part of it)."""
        text = json.dumps([method, url, sorted((params or {}).items()), data])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _cached(self, key: str, shown: str) -> Download | None:
        entry = self.manifest().get(key)
        if not isinstance(entry, dict):
            return None
        path = self.cache_dir / str(entry.get("file", ""))
        if not path.is_file() or _sha256(path) != entry.get("sha256"):
            self.stats.cache_corrupt += 1
            self.notes.append(
                f"the cached copy of {shown} failed its sha256 check; downloaded again"
            )
            return None
        return Download(
            path,
            str(entry["sha256"]),
            int(entry.get("bytes", path.stat().st_size)),
            str(entry.get("url", shown)),
            str(entry.get("fetched", "")),
            True,
            str(entry.get("content_type", "")),
        )

    # -- download --------------------------------------------------------------------------
    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        secret_params: Mapping[str, str] | None = None,
        data: str | None = None,
        service: str,
        expected: str,
        fix: str,
        validate: Callable[[Path], None] | None = None,
        label: str | None = None,
        suffix: str = "",
    ) -> Download:
        """Return ``url``'s body from the cache, or download it (``POST`` when ``data``).

        Parameters
        ----------
        url, params, data
            The request; ``data`` is sent as the form field ``data`` (Overpass).
        secret_params
            Query parameters kept out of the cache key, the manifest and every message
            (an API key).
        service, expected, fix
            Named in errors: who answered, what was expected, what to do.
        validate
            Called with the downloaded file; raises :class:`InvalidBodyError` when it is not the
            source's format (retried when ``InvalidBodyError.retry``).
        label
            The progress bar's text.
        suffix
            The cached file's suffix (``.zip``), for readers that go by it.

        Raises
        ------
        OfflineError
            When the host name cannot be resolved, or no try could connect.
        FetchError
            After the last failed try, or at once on a 4xx answer other than 408/429, a
            ``Retry-After`` longer than ``max_wait_s``, or a body ``validate`` refuses for good.
        """
        import httpx

        method = "POST" if data is not None else "GET"
        shown = str(httpx.URL(url, params=dict(params or {})))
        for name in secret_params or {}:
            shown += f"{'&' if '?' in shown else '?'}{name}=***"
        key = self.cache_key(method, url, params, data)
        if not self.refresh:
            hit = self._cached(key, shown)
            if hit is not None:
                self.stats.cache_hits += 1
                return hit
        all_params = {**(params or {}), **(secret_params or {})}
        host = urlsplit(url).netloc
        connect_failures = 0
        last = ""
        for attempt in range(self.retries + 1):
            self.stats.requests += 1
            if attempt:
                self.stats.retries += 1
            wait = self.backoff_s * (2**attempt)
            outcome = self._try(
                method, url, all_params, data, shown, service, expected, fix, label, suffix
            )
            if isinstance(outcome, Path):
                try:
                    if validate is not None:
                        validate(outcome)
                except InvalidBodyError as bad:
                    outcome.unlink(missing_ok=True)
                    if not bad.retry:
                        raise problem(shown, bad.found, expected, fix) from None
                    last = bad.found
                    self.stats.failures["cut or transient body"] += 1
                else:
                    return self._store(key, outcome, shown)
            else:
                kind, last, retry_after = outcome
                self.stats.failures[kind] += 1
                if kind == "connection error":
                    connect_failures += 1
                if retry_after is not None:
                    if retry_after > self.max_wait_s:
                        raise problem(
                            shown,
                            f"{last} asking to wait {retry_after:,.0f} s (Retry-After)",
                            f"an answer from {service}",
                            f"try again in {math.ceil(retry_after / 60)} min; {fix}",
                        )
                    wait = retry_after
            if attempt < self.retries:
                self.stats.waits_s.append(min(wait, self.max_wait_s))
                self._sleep(min(wait, self.max_wait_s))
        tries = self.retries + 1
        if connect_failures == tries:
            raise problem(
                shown,
                f"no connection to {host} on any of {tries} tries ({last})",
                f"an answer from {service}",
                "check the internet connection (camcensus fetch needs one; offline, use files "
                f"already fetched: the cache is {self.cache_dir}) or the URL; {fix}",
                offline=True,
            )
        raise problem(shown, f"{last} on each of {tries} tries", f"an answer from {service}", fix)

    def _try(
        self,
        method: str,
        url: str,
        params: Mapping[str, str],
        data: str | None,
        shown: str,
        service: str,
        expected: str,
        fix: str,
        label: str | None,
        suffix: str,
    ) -> Path | tuple[str, str, float | None]:
        """One try: the temporary file holding the body, or ``(kind, text, retry_after)``."""
        import httpx

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.cache_dir, prefix=".part-", suffix=suffix)
        tmp = Path(name)
        try:
            with (
                os.fdopen(fd, "wb") as fh,
                self.client.stream(
                    method,
                    url,
                    params=dict(params) if params else None,
                    data={"data": data} if data is not None else None,
                ) as response,
            ):
                if response.status_code >= 400:
                    head = _body_head(response.read())
                    text = f"HTTP {response.status_code}" + (f" ({head})" if head else "")
                    if response.status_code not in _RETRY_STATUS:
                        tmp.unlink(missing_ok=True)
                        raise problem(shown, f"{text} from {service}", expected, fix)
                    tmp.unlink(missing_ok=True)
                    return (
                        f"HTTP {response.status_code}",
                        text,
                        _retry_after(response.headers.get("retry-after")),
                    )
                declared = response.headers.get("content-length", "")
                total = int(declared) if declared.isdigit() else None
                task = None
                if self._progress is not None:
                    task = self._progress.add_task(label or shown[:60], total=total)
                size = 0
                for chunk in response.iter_bytes():
                    fh.write(chunk)
                    size += len(chunk)
                    if task is not None and self._progress is not None:
                        self._progress.update(task, advance=len(chunk))
                if task is not None and self._progress is not None:
                    self._progress.update(task, total=size, completed=size)
                self.stats.bytes_downloaded += size
                if (
                    total is not None
                    and size < total
                    and "content-encoding" not in response.headers
                ):
                    tmp.unlink(missing_ok=True)
                    return ("truncated body", f"a body cut at {size:,} of {total:,} bytes", None)
                self._content_type = response.headers.get("content-type", "")
            return tmp
        except FetchError:
            raise
        except httpx.TimeoutException:
            tmp.unlink(missing_ok=True)
            return ("timeout", f"no answer within the timeout ({self.timeout_s:g} s)", None)
        except httpx.ConnectError as err:
            tmp.unlink(missing_ok=True)
            if _NO_DNS.search(str(err)):
                raise problem(
                    shown,
                    f"no network: the name {urlsplit(url).hostname!r} could not be resolved "
                    f"({err})",
                    f"an answer from {service}",
                    "connect to the internet and try again (camcensus fetch needs it); offline, "
                    f"use files already fetched (the cache is {self.cache_dir}) or the copies "
                    "in ../shared/data",
                    offline=True,
                ) from None
            return ("connection error", f"a connection error ({err})", None)
        except (httpx.RemoteProtocolError, httpx.ReadError) as err:
            tmp.unlink(missing_ok=True)
            return ("truncated body", f"the connection closed mid-body ({err})", None)
        except httpx.TransportError as err:
            tmp.unlink(missing_ok=True)
            return ("connection error", f"a transport error ({type(err).__name__}: {err})", None)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    _content_type = ""

    def _store(self, key: str, tmp: Path, shown: str) -> Download:
        digest = _sha256(tmp)
        folder = self.cache_dir / "files" / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / (key + tmp.suffix)
        os.replace(tmp, final)
        fetched = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        size = final.stat().st_size
        self._record(
            key,
            {
                "url": shown,
                "file": str(final.relative_to(self.cache_dir)),
                "sha256": digest,
                "bytes": size,
                "fetched": fetched,
                "content_type": self._content_type,
            },
        )
        self.stats.downloads += 1
        return Download(final, digest, size, shown, fetched, False, self._content_type)
