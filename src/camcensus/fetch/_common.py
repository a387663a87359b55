"""What every fetcher shares: the result, the output file and its provenance record."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from camcensus._errors import Ledger, OptionError
from camcensus.fetch._http import Download, Fetcher, FetchStats
from camcensus.io.formats import write_atomic

__all__ = ["FetchResult", "fetcher_for", "finish", "out_path"]


@dataclass(frozen=True)
class FetchResult:
    """What a fetch wrote and how.

    ``path`` is the output file and ``sha256`` its checksum; ``rows`` the records in it;
    ``sources`` the downloads it was made from (URL without secrets, sha256, date, whether
    served from the cache); ``stats`` the requests, retries and cache hits; ``ledger`` every
    value made missing or record left out, with its reason; ``summary`` source-specific counts.
    The same facts are written beside the output as ``<name>.fetch.json``.
    """

    source: str
    path: Path
    sha256: str
    rows: int
    sources: tuple[dict[str, Any], ...]
    stats: FetchStats
    ledger: Ledger
    summary: dict[str, Any] = field(default_factory=dict)
    terms: str = ""

    @property
    def from_cache(self) -> bool:
        """Whether every download was served from the cache (no network use)."""
        return all(s["from_cache"] for s in self.sources)

    @property
    def provenance_path(self) -> Path:
        """The provenance record written beside the output."""
        return self.path.with_name(self.path.name + ".fetch.json")


def out_path(out: str | Path, suffixes: Sequence[str], *, option: str = "out") -> Path:
    """Return ``out`` as a path whose suffix is one of ``suffixes`` (else raise OptionError)."""
    path = Path(out)
    name = path.name.lower()
    if not any(name.endswith(s) for s in suffixes):
        raise OptionError(
            f"{option}={str(out)!r} must end in {' or '.join(suffixes)} (the file written), "
            f"e.g. {option}=data/out{suffixes[0]}"
        )
    return path


@contextmanager
def fetcher_for(fetcher: Fetcher | None) -> Iterator[Fetcher]:
    """Yield ``fetcher``, or a new default :class:`Fetcher` closed afterwards."""
    if fetcher is not None:
        yield fetcher
        return
    with Fetcher() as own:
        yield own


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy ``src`` to ``dest`` atomically."""
    write_atomic(dest, lambda tmp: shutil.copyfile(src, tmp))


def finish(
    source: str,
    path: Path,
    downloads: Sequence[Download],
    fetcher: Fetcher,
    ledger: Ledger,
    *,
    rows: int,
    summary: dict[str, Any],
    terms: str,
) -> FetchResult:
    """Write the provenance record beside ``path`` and return the :class:`FetchResult`."""
    from camcensus.io.formats import sha256

    for note in fetcher.notes:
        ledger.note(note)
    sources = tuple(
        {
            "url": d.url,
            "sha256": d.sha256,
            "bytes": d.size,
            "fetched": d.fetched,
            "from_cache": d.from_cache,
        }
        for d in downloads
    )
    result = FetchResult(
        source=source,
        path=path,
        sha256=sha256(path),
        rows=rows,
        sources=sources,
        stats=fetcher.stats,
        ledger=ledger,
        summary=summary,
        terms=terms,
    )
    record = {
        "source": source,
        "file": path.name,
        "sha256": result.sha256,
        "rows": rows,
        "downloads": list(sources),
        "summary": summary,
        "terms": terms,
        "left_out_or_missing": [
            {"stage": e.stage, "reason": e.reason, "count": e.count}
            for e in [*ledger.exclusions, *ledger.flagged]
        ],
        "notes": list(ledger.notes),
    }
    write_atomic(
        result.provenance_path,
        lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=str), encoding="utf-8"),
    )
    return result
