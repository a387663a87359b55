"""The installed package's version, for reports, the API and the build recorded with data."""

from __future__ import annotations

from functools import cache
from importlib import metadata

__all__ = ["package_version"]


@cache
def package_version() -> str:
    """Return camcensus's installed version, or ``0+unknown`` (a valid PEP 440 version) when
    it runs from a source tree without package metadata. Read once per process: every page the
    platform renders records it, and reading the metadata costs ~0.3 ms of file I/O."""
    try:
        return metadata.version("camcensus")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0+unknown"
