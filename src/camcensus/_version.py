"""The installed package's version, for reports, the API and the build recorded with data."""

from __future__ import annotations

from importlib import metadata

__all__ = ["package_version"]


def package_version() -> str:
    """Return camcensus's installed version, or ``0+unknown`` (a valid PEP 440 version) when
    it runs from a source tree without package metadata."""
    try:
        return metadata.version("camcensus")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0+unknown"
