"""Readers and writers, one module per source."""

from camcensus.io import census, decode, formats

__all__ = ["census", "decode", "formats"]
