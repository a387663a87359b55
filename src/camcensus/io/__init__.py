"""Readers and writers, one module per source."""

from camcensus.io import camera_files, census, citylists, decode, directions, formats, osm

__all__ = ["camera_files", "census", "citylists", "decode", "directions", "formats", "osm"]
