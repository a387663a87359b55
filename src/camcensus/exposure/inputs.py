"""Inputs of the exposure work: cameras from any source, and the index built from paths."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd

from camcensus._errors import InputError, Ledger, Problem
from camcensus.exposure.network import read_streets

if TYPE_CHECKING:
    from camcensus.exposure.routes import ExposureIndex

__all__ = ["load_index", "read_buildings", "read_cameras"]

_OSM_SUFFIXES = (".osm", ".pbf")


def read_cameras(
    path: str | Path, *, public_only: bool = False, ledger: Ledger | None = None
) -> gpd.GeoDataFrame:
    """Read cameras from any camera inventory file, for the exposure work.

    Parameters
    ----------
    path
        Anything :func:`camcensus.io.camera_files.read_cameras_file` reads: Amnesty's
        per-intersection counts CSV (one camera per counted camera at the panorama point), an
        OSM file (``man_made=surveillance``), a city list, or a file holding the ``cameras``
        table (e.g. from ``camcensus cameras import`` or ``camcensus locate``).
    public_only
        Keep only cameras on street furniture (``mount == "street"``), as Amnesty's coverage
        does; the others are counted in ``ledger``.

    Returns
    -------
    geopandas.GeoDataFrame
        The ``cameras`` table, points in EPSG:4326.
    """
    from camcensus.io.camera_files import read_cameras_file

    gdf = read_cameras_file(path, ledger=ledger)
    gdf["mount"] = gdf["mount"].fillna("unknown")
    if public_only:
        public = (gdf["mount"] == "street").to_numpy()
        if ledger is not None:
            ledger.exclude(
                "read cameras",
                "cameras not on street furniture (public_only: mount is not 'street')",
                int((~public).sum()),
            )
        gdf = gdf.loc[public].reset_index(drop=True)
    return gdf


def read_buildings(path: str | Path) -> gpd.GeoDataFrame:
    """Read building footprints from an OSM file or any polygon file (WGS84 out)."""
    path = Path(path)
    if path.name.lower().endswith(_OSM_SUFFIXES):
        from camcensus.io.osm import read_osm_buildings

        return read_osm_buildings(path)
    if not path.exists():
        raise InputError(
            [Problem(str(path), None, None, "no such file", "a buildings file", "check the path")]
        )
    if path.is_dir():
        raise InputError(
            [Problem(str(path), None, None, "a folder", "a buildings file", "give a file's path")]
        )
    return gpd.read_file(path).to_crs("EPSG:4326")


def load_index(
    *,
    cameras: str | Path,
    streets: str | Path,
    buildings: str | Path | None = None,
    model: str = "disc",
    radius_m: float | None = None,
    public_only: bool = False,
) -> ExposureIndex:
    """Read cameras, streets (and buildings), draw the footprints and build the index.

    See :func:`read_cameras` and :func:`camcensus.exposure.read_streets` for the accepted
    files; ``model`` and ``radius_m`` go to :func:`camcensus.coverage.footprints` (buildings
    only matter to the ``occluded`` and ``pixel_density`` models).
    """
    from camcensus.coverage import footprints
    from camcensus.exposure.routes import ExposureIndex

    ledger = Ledger()
    gdf_cameras = read_cameras(cameras, public_only=public_only, ledger=ledger)
    network = read_streets(streets)
    kwargs: dict[str, object] = {"radius_m": radius_m, "crs": network.crs}
    if buildings is not None:
        kwargs["buildings"] = read_buildings(buildings)
    gdf_footprints = footprints(gdf_cameras, model, **kwargs)  # type: ignore[arg-type]
    index = ExposureIndex(network, gdf_footprints, gdf_cameras)
    for e in ledger.exclusions:
        network.ledger.exclude(e.stage, e.reason, e.count)
    for note in ledger.notes:
        network.ledger.note(note)
    return index
