"""Report sections: what each stage contributes to the page, the tables, figures and results.

A *section builder* takes a :class:`ReportContext` and returns a :class:`Section` (or ``None``
when its stage did not run). :func:`camcensus.report.write_report` calls every registered
builder, writes each section's tables (``tables/<name>.csv``), merges the sections' ``results``
into ``results.json`` and renders the sections in ``order`` into ``index.html``. A new stage
adds its part of the report by writing one builder and registering it with
:func:`register_section`; nothing else in the report changes.

Every text in a section is plain text: the page escapes it (no markup from data ever reaches the
page as markup).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from camcensus._geo import borough_outlines

if TYPE_CHECKING:
    import geopandas as gpd

    from camcensus.pipeline import CensusResult

__all__ = [
    "Block",
    "Bullets",
    "Cards",
    "Figure",
    "Heading",
    "MapView",
    "ReportContext",
    "Section",
    "SectionBuilder",
    "Table",
    "Text",
    "build_sections",
    "register_section",
    "section_builders",
]


@dataclass(frozen=True)
class Text:
    """A paragraph; ``lead`` is shown in bold before it; ``style`` picks its look."""

    text: str
    lead: str = ""
    style: Literal["p", "note", "small"] = "p"


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A bulleted list (e.g. findings)."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Cards:
    """Headline numbers: ``(value, label)`` pairs, values already formatted."""

    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    """A table: shown on the page (``html``) and/or written to ``tables/<name>.csv`` (``csv``).

    ``index`` names the index column when the index is data (e.g. ``"borough"``); otherwise the
    index is dropped. ``labels`` maps column names to the headings shown on the page (default:
    the name with spaces for underscores). ``total`` makes the last row bold: by default, when
    the last index label is ``"Total"``.
    """

    name: str
    title: str
    frame: pd.DataFrame
    index: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    caption: str = ""
    total: bool | None = None
    html: bool = True
    csv: bool = True

    @property
    def has_total(self) -> bool:
        """Return whether the last row is a total (shown in bold)."""
        if self.total is not None:
            return self.total
        return bool(self.index is not None and len(self.frame) and self.frame.index[-1] == "Total")

    def data(self) -> pd.DataFrame:
        """Return the frame as written: the index, when it is data, as the first column."""
        if self.index is None:
            return self.frame.reset_index(drop=True)
        return self.frame.rename_axis(self.index).reset_index()


@dataclass(frozen=True)
class Figure:
    """A PNG already written into the report's ``figures`` folder."""

    name: str
    path: Path
    alt: str


@dataclass(frozen=True)
class MapView:
    """The interactive, offline MapLibre map of tracts, coverage and intersections."""


Block = Text | Heading | Bullets | Cards | Table | Figure | MapView


@dataclass(frozen=True)
class Section:
    """One part of the report.

    Parameters
    ----------
    id
        HTML anchor and key (``"census"``).
    title
        Heading on the page; empty for an untitled section (the headline numbers).
    order
        Position on the page (ascending).
    blocks
        What the page shows, in order; :class:`Table` blocks are also written as CSV.
    results
        Keys merged into ``results.json`` (two sections must not give the same key).
    database
        Frames stored in ``camcensus.sqlite``, by table name.
    """

    id: str
    title: str
    order: int
    blocks: tuple[Block, ...] = ()
    results: Mapping[str, Any] = field(default_factory=dict)
    database: Mapping[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        """Return the section's tables by name."""
        return {b.name: b.frame for b in self.blocks if isinstance(b, Table)}

    @property
    def figures(self) -> dict[str, Path]:
        """Return the section's figures by name."""
        return {b.name: b.path for b in self.blocks if isinstance(b, Figure)}


@dataclass(frozen=True)
class ReportContext:
    """What a section builder may use.

    ``figures`` is the folder to write PNGs into, or ``None`` when only numbers are wanted
    (:func:`camcensus.report.results_dict`); ``inputs`` are the checksummed input records,
    computed before anything was written.
    """

    result: CensusResult
    figures: Path | None
    inputs: tuple[Mapping[str, Any], ...] = ()

    @cached_property
    def outlines(self) -> gpd.GeoDataFrame:
        """Return borough polygons in the measurement CRS (computed once)."""
        return borough_outlines(self.result.tracts.to_crs(self.result.measure_crs))


SectionBuilder = Callable[[ReportContext], Section | None]

_BUILDERS: list[SectionBuilder] = []


def register_section(builder: SectionBuilder) -> SectionBuilder:
    """Add a section builder (usable as a decorator); registering twice has no effect."""
    if builder not in _BUILDERS:
        _BUILDERS.append(builder)
    return builder


def section_builders() -> list[SectionBuilder]:
    """Return the registered builders (the built-in ones first)."""
    importlib.import_module("camcensus.report.builtin")  # registers the built-in sections

    return list(_BUILDERS)


def build_sections(ctx: ReportContext) -> list[Section]:
    """Run every builder; return the sections in page order, checking names are unique."""
    sections = [s for b in section_builders() if (s := b(ctx)) is not None]
    sections.sort(key=lambda s: s.order)
    seen: dict[str, str] = {}
    for s in sections:
        names = [f"section {s.id}"]
        names += [f"table {b.name}" for b in s.blocks if isinstance(b, Table) and b.csv]
        names += [f"figure {b.name}" for b in s.blocks if isinstance(b, Figure)]
        names += [f"result {k}" for k in s.results]
        for n in names:
            if n in seen:
                raise ValueError(f"{n} is given by two report sections: {seen[n]} and {s.id}")
            seen[n] = s.id
    return sections
