"""Review design: which panoramas the experts review, with their inclusion probabilities.

Reproduces Amnesty's quantitative review (methodology note, section 1.4.2, "Selection of
intersections with stratification and importance sampling"): 8 strata of the decoders' median of
public cameras (0, 1, 2) crossed with their agreement class, 13 panoramas drawn at random in each,
each reviewed panorama weighted by the inverse of its inclusion probability. Panoramas with a
median of 3 or more are left out of the design (as Amnesty did); they are counted, never dropped
silently. Neyman and proportional allocation of the same number of reviews are offered beside
Amnesty's equal allocation.

Within a stratum the panoramas are drawn by simple random sampling without replacement, so a
panorama of stratum ``h`` has inclusion probability ``n_h / N_h`` and weight ``N_h / n_h``; the
inclusion probabilities of the design's population sum to ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from camcensus._errors import ContractError, InputError, OptionError, Problem
from camcensus.aggregate import agreement_class
from camcensus.io.decode import CATEGORIES
from camcensus.io.formats import read_csv, write_atomic, write_csv
from camcensus.report._atomic import OutputError

__all__ = [
    "ALLOCATIONS",
    "AMNESTY_STRATA",
    "allocate",
    "amnesty_strata",
    "plan_review",
    "read_plan",
    "read_reviews",
    "write_plan",
    "write_reviews",
]

Allocation = Literal["equal", "neyman", "proportional"]
ALLOCATIONS: tuple[str, ...] = ("equal", "neyman", "proportional")

AMNESTY_STRATA: tuple[str, ...] = (
    "median0:Unanimous",
    "median0:2 vs 1",
    "median1:Unanimous",
    "median1:2 vs 1",
    "median1:All disagree",
    "median2:Unanimous",
    "median2:2 vs 1",
    "median2:All disagree",
)
"""Amnesty's 8 strata (methodology 1.4.2): decoders' median 0/1/2 x agreement class; a median
of 0 with all three decoders disagreeing is impossible, hence 8 and not 9."""

#: Label of panoramas with a median of 3 or more (left out of Amnesty's design).
LEFT_OUT_HIGH = "median3+"
#: Label of panoramas with no usable median (missing, negative or not a whole number).
LEFT_OUT_OTHER = "no stratum"

_PLAN_COLUMNS = ("PanoramaId", "stratum", "inclusion_probability", "weight")


def amnesty_strata(
    counts_or_submissions: pd.DataFrame, category: str = "attached_street"
) -> pd.Series:
    """Return Amnesty's stratum label of every panorama.

    Parameters
    ----------
    counts_or_submissions
        Either per-panorama counts with ``<category>_median`` and ``<category>_agreement``
        columns (the aggregated file, e.g. Amnesty's Brooklyn CSV), or submissions with
        ``PanoramaId`` and the raw ``<category>`` counts (one row per volunteer answer; the
        median and agreement class are computed over each panorama's answers).
    category
        Count column the strata are built on (Amnesty: ``attached_street``).

    Returns
    -------
    pandas.Series
        Named ``stratum``; for counts, aligned with the input's index; for submissions, indexed
        by ``PanoramaId``. Labels are those of :data:`AMNESTY_STRATA`, ``"median3+"`` for a
        median of 3 or more and ``"no stratum"`` for a missing or fractional median (both are
        outside the design).
    """
    df = counts_or_submissions
    med_col, agr_col = f"{category}_median", f"{category}_agreement"
    if med_col in df.columns and agr_col in df.columns:
        median = pd.to_numeric(df[med_col], errors="coerce").to_numpy(dtype="float64")
        agreement = df[agr_col].astype(object).to_numpy()
        index = df.index
    elif "PanoramaId" in df.columns and category in df.columns:
        values = pd.to_numeric(df[category], errors="coerce")
        groups = values.groupby(df["PanoramaId"].astype(str), sort=True)
        lists = groups.agg(list)
        median = np.array([np.median(v) if len(v) else np.nan for v in lists], dtype="float64")
        agreement = np.array(
            [agreement_class(np.asarray(v, dtype="float64"))[()] for v in lists], dtype=object
        )
        index = lists.index
    else:
        raise ContractError(
            f"amnesty_strata needs either {med_col!r} and {agr_col!r} (per-panorama counts) or "
            f"'PanoramaId' and {category!r} (submissions); found columns {list(df.columns)[:12]}"
        )
    labels = np.full(len(median), LEFT_OUT_OTHER, dtype=object)
    whole = np.isfinite(median) & (median >= 0) & (np.floor(median) == median)
    labels[whole & (median >= 3)] = LEFT_OUT_HIGH
    for m in (0, 1, 2):
        for agr in ("Unanimous", "2 vs 1", "All disagree"):
            label = f"median{m}:{agr}"
            if label not in AMNESTY_STRATA:
                continue
            labels[whole & (median == m) & (agreement == agr)] = label
    return pd.Series(labels, index=index, name="stratum")


def allocate(
    sizes: Mapping[str, int],
    n: int,
    *,
    allocation: Allocation = "equal",
    sd: Mapping[str, float] | None = None,
    min_per_stratum: int = 2,
) -> dict[str, int]:
    """Return the number of reviews per stratum.

    Shares are 1 per stratum (``equal``), ``N_h`` (``proportional``) or ``N_h * S_h``
    (``neyman``, ``S_h`` from ``sd``). Each stratum first gets ``min(min_per_stratum, N_h)``
    (two reviews are the fewest that estimate a stratum's variance; ``equal`` uses no minimum
    beyond its equal share); the rest of ``n`` is shared in proportion, no stratum getting more
    than its size (the excess goes to the others), and rounded by largest remainders.

    Raises
    ------
    OptionError
        ``n`` is larger than the population, or ``neyman`` lacks a stratum's ``sd``.
    """
    labels = list(sizes)
    size = np.array([int(sizes[k]) for k in labels], dtype="int64")
    total = int(size.sum())
    if n < 1:
        raise OptionError(f"n={n}: the number of reviews must be at least 1; e.g. n=104")
    if n > total:
        raise OptionError(
            f"n={n} reviews but the design's strata hold only {total} panoramas; pass n <= {total}"
        )
    if allocation == "equal":
        share = np.where(size > 0, 1.0, 0.0)
        floor = np.zeros(len(labels), dtype="int64")
    elif allocation == "proportional":
        share = size.astype("float64")
        floor = np.minimum(size, min_per_stratum)
    elif allocation == "neyman":
        if sd is None:
            raise OptionError(
                "allocation='neyman' needs the per-stratum standard deviations of a pilot: "
                "pass pilot= (a reviews frame or a {stratum: sd} dict)"
            )
        missing = [k for k in labels if size[labels.index(k)] > 0 and k not in sd]
        if missing:
            raise OptionError(
                f"the pilot has no standard deviation for strata {missing}; review a few "
                "panoramas of each stratum first (a pilot), or pass allocation='proportional'"
            )
        s = np.array([max(float(sd.get(k, 0.0)), 0.0) for k in labels])
        share = size * s
        if share.sum() <= 0:
            share = size.astype("float64")
        floor = np.minimum(size, min_per_stratum)
    else:
        raise OptionError(
            f"allocation={allocation!r} is not one of {', '.join(ALLOCATIONS)}; "
            "e.g. allocation='equal' (Amnesty's design)"
        )
    if floor.sum() > n:
        raise OptionError(
            f"n={n} is smaller than {int(floor.sum())}, the minimum of {min_per_stratum} per "
            f"stratum over {len(labels)} strata; pass a larger n or min_per_stratum=1"
        )
    alloc = floor.astype("float64")
    fixed = alloc >= size
    left = float(n - floor.sum())
    # Water-filling: share what is left among strata with room; cap at N_h and re-share.
    while left > 1e-9:
        room = ~fixed & (share > 0)
        if not room.any():
            room = ~fixed
            share = np.where(room, 1.0, 0.0)
        add = left * share * room / (share * room).sum()
        new = np.minimum(alloc + add, size)
        capped = (alloc + add >= size) & room
        left -= float((new - alloc).sum())
        alloc = new
        fixed |= capped
        if not capped.any():
            break
    base = np.floor(alloc + 1e-9).astype("int64")
    rest = n - int(base.sum())
    order = np.argsort(-(alloc - base), kind="stable")
    for i in order:
        if rest <= 0:
            break
        if base[i] < size[i]:
            base[i] += 1
            rest -= 1
    return {k: int(b) for k, b in zip(labels, base, strict=True)}


def _pilot_sd(
    pilot: pd.DataFrame | Mapping[str, float],
    labels: pd.Series,
    decoders: pd.Series,
    category: str,
    pilot_value: str,
    pilot_floor: str = "jeffreys",
) -> dict[str, float]:
    if pilot_floor not in ("jeffreys", "none"):
        raise OptionError(f"pilot_floor={pilot_floor!r} is not 'jeffreys' or 'none'")
    if isinstance(pilot, Mapping):
        return {str(k): float(v) for k, v in pilot.items()}
    if category not in pilot.columns:
        raise OptionError(
            f"the pilot has no {category!r} column (the reference count); pass a reviews frame "
            f"with PanoramaId and {category!r}, or a {{stratum: sd}} dict"
        )
    df = pilot.copy()
    if "stratum" not in df.columns:
        by_id = pd.Series(labels.to_numpy(), index=decoders.index)
        df["stratum"] = df["PanoramaId"].astype(str).map(by_id)
    y = pd.to_numeric(df[category], errors="coerce")
    if f"{category}_median" in df.columns:
        x = pd.to_numeric(df[f"{category}_median"], errors="coerce")
    else:
        x = df["PanoramaId"].astype(str).map(decoders)
    ratio = x.sum() / y.sum() if y.sum() > 0 else 1.0
    if pilot_value == "reference":
        value, scale = y, 1.0
    elif pilot_value == "residual":
        value, scale = x - ratio * y, float(ratio)
    else:
        raise OptionError(
            f"pilot_value={pilot_value!r} is not 'residual' or 'reference'; e.g. 'residual'"
        )
    sd = value.groupby(df["stratum"]).std(ddof=1)
    out = {str(k): float(v) for k, v in sd.items() if np.isfinite(v)}
    if pilot_floor == "jeffreys":
        # A rare event (a camera all volunteers missed) is often absent from a small pilot,
        # whose sd is then 0 and Neyman would starve the stratum: floor the sd at that of a
        # 0/1 count whose rate is the Jeffreys posterior mean of "reference != decoders".
        known = x.notna() & y.notna()
        wrong = (y != x)[known].groupby(df["stratum"][known]).agg(["sum", "size"])
        for k, row in wrong.iterrows():
            rate = (float(row["sum"]) + 0.5) / (float(row["size"]) + 1.0)
            floor = scale * float(np.sqrt(rate * (1.0 - rate)))
            if str(k) in out:
                out[str(k)] = max(out[str(k)], floor)
    return out


def plan_review(
    counts: pd.DataFrame,
    *,
    strata: str | pd.Series = "amnesty",
    n: int = 104,
    allocation: Allocation = "equal",
    pilot: pd.DataFrame | Mapping[str, float] | None = None,
    pilot_value: Literal["residual", "reference"] = "residual",
    pilot_floor: Literal["jeffreys", "none"] = "jeffreys",
    category: str = "attached_street",
    min_per_stratum: int = 2,
    seed: int = 0,
) -> pd.DataFrame:
    """Return the panoramas the experts should review, with inclusion probabilities.

    Parameters
    ----------
    counts
        One row per panorama: ``PanoramaId`` and, for ``strata="amnesty"``,
        ``<category>_median`` and ``<category>_agreement``.
    strata
        ``"amnesty"`` (the 8 strata of :data:`AMNESTY_STRATA`; panoramas with a median of 3 or
        more are left out and counted), the name of a column of ``counts``, or a Series of
        labels aligned with ``counts`` (rows with a missing label are left out and counted).
    n
        Number of panoramas to review (Amnesty: 104 = 8 x 13).
    allocation
        ``"equal"`` (Amnesty's), ``"proportional"`` (``n_h`` proportional to ``N_h``) or
        ``"neyman"`` (``n_h`` proportional to ``N_h S_h``, ``S_h`` from ``pilot``).
    pilot
        For Neyman: a reviews frame (``PanoramaId``, the reference ``category`` and, optionally,
        ``stratum`` and ``<category>_median``) or a dict ``{stratum: sd}``.
    pilot_value
        What the pilot's per-stratum sd is taken of: ``"residual"`` (the ratio's linearised
        residual ``median - R * reference``, the quantity whose variance the ratio's variance
        sums; the default) or ``"reference"`` (the reference count).
    category
        Count category the strata (and the pilot) are built on.
    min_per_stratum
        Fewest reviews per stratum for proportional and Neyman allocation.
    seed
        Seed of the draws; the same inputs and seed give the same plan whatever the row order.

    Returns
    -------
    pandas.DataFrame
        One row per panorama to review, ordered by stratum then ``PanoramaId``: ``PanoramaId``,
        ``stratum``, ``stratum_size`` (``N_h``), ``stratum_n`` (``n_h``),
        ``inclusion_probability`` (``n_h / N_h``), ``weight`` (``N_h / n_h``) and the
        decoders' ``<c>_median`` of every category present in ``counts``. ``attrs`` holds
        ``strata`` (``{stratum: {"N": N_h, "n": n_h}}``), ``left_out`` (``{label: count}``
        of panoramas outside the design), ``allocation``, ``n``, ``seed`` and ``category``.
    """
    problems: list[str] = []
    if "PanoramaId" not in counts.columns:
        raise OptionError("counts has no 'PanoramaId' column; pass the per-panorama counts")
    ids = counts["PanoramaId"].astype(str)
    dup = ids[ids.duplicated()]
    if len(dup):
        problems.append(
            f"{len(dup)} duplicated PanoramaId (e.g. {dup.iloc[0]!r}); one row per panorama"
        )
    if problems:
        raise OptionError("; ".join(problems))
    if isinstance(strata, pd.Series):
        if len(strata) != len(counts):
            raise OptionError(
                f"strata has {len(strata)} labels but counts has {len(counts)} rows; pass one "
                "label per row of counts"
            )
        labels = pd.Series(strata.to_numpy(), index=counts.index).astype(object)
        labels = labels.where(labels.notna(), None)
        design = sorted({str(v) for v in labels if v is not None})
        labels = labels.map(lambda v: LEFT_OUT_OTHER if v is None else str(v))
    elif strata == "amnesty":
        labels = amnesty_strata(counts, category)
        design = list(AMNESTY_STRATA)
    elif strata in counts.columns:
        raw = counts[strata]
        labels = raw.astype(object).where(raw.notna(), None)
        design = sorted({str(v) for v in labels if v is not None})
        labels = labels.map(lambda v: LEFT_OUT_OTHER if v is None else str(v))
    else:
        raise OptionError(
            f"strata={strata!r} is neither 'amnesty' nor a column of counts "
            f"({', '.join(map(str, counts.columns[:10]))}); pass 'amnesty' or a column name"
        )
    in_design = labels.isin(design)
    left_out = {str(k): int(v) for k, v in labels[~in_design].value_counts().items()}
    sizes = {h: int((labels == h).sum()) for h in design}
    med_col = f"{category}_median"
    decoders = (
        pd.Series(pd.to_numeric(counts[med_col], errors="coerce").to_numpy(), index=ids)
        if med_col in counts.columns
        else pd.Series(np.nan, index=ids)
    )
    sd = None
    pilot_missing: list[str] = []
    if allocation == "neyman" and pilot is not None:
        sd = _pilot_sd(pilot, labels, decoders, category, pilot_value, pilot_floor)
        # A stratum the pilot did not reach (or reached once) gets the pilot's largest sd:
        # the conservative choice, recorded in attrs["pilot_missing"].
        pilot_missing = [h for h in design if sizes[h] > 0 and h not in sd]
        if pilot_missing and sd:
            fill = max(sd.values())
            sd = {**sd, **dict.fromkeys(pilot_missing, fill)}
    n_h = allocate(sizes, n, allocation=allocation, sd=sd, min_per_stratum=min_per_stratum)

    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"PanoramaId": ids.to_numpy(), "stratum": labels.to_numpy()})
    medians = [f"{c}_median" for c in CATEGORIES if f"{c}_median" in counts.columns]
    for col in medians:
        frame[col] = pd.to_numeric(counts[col], errors="coerce").to_numpy()
    parts = []
    for h in design:
        members = frame[frame["stratum"] == h].sort_values("PanoramaId", kind="stable")
        k = n_h[h]
        if k == 0 or members.empty:
            continue
        pick = np.sort(rng.choice(len(members), size=k, replace=False))
        chosen = members.iloc[pick].copy()
        chosen.insert(2, "stratum_size", len(members))
        chosen.insert(3, "stratum_n", k)
        chosen.insert(4, "inclusion_probability", k / len(members))
        chosen.insert(5, "weight", len(members) / k)
        parts.append(chosen)
    plan = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_PLAN_COLUMNS)
    plan.attrs.update(
        {
            "strata": {h: {"N": sizes[h], "n": n_h[h]} for h in design},
            "left_out": left_out,
            "allocation": allocation,
            "n": int(n),
            "seed": int(seed),
            "category": category,
            "pilot_missing": pilot_missing,
        }
    )
    return plan


def _atomic_csv(frame: pd.DataFrame, path: Path) -> None:
    write_atomic(path, lambda tmp: write_csv(frame, tmp))


def _check_target(path: Path, inputs: Iterable[str | Path], force: bool) -> None:
    target = path.resolve()
    for inp in inputs:
        if Path(inp).resolve() == target:
            raise OutputError(
                path,
                f"the output file is the input {inp}",
                "choose another output path; camcensus never overwrites its inputs",
            )
    if target.is_dir():
        raise OutputError(path, "this is a folder", "pass a file path such as plan.csv")
    if target.exists() and not force:
        raise OutputError(
            path, "the file exists", "pass force=True (--force) to replace it, or another path"
        )


def write_plan(
    plan: pd.DataFrame,
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
) -> Path:
    """Write a plan as CSV, atomically; refuse to overwrite an input (or, without ``force``,
    any existing file).

    ``inputs`` are the files the plan was made from; ``plan.attrs["source"]`` (set by
    :func:`read_plan`) counts as one too.
    """
    path = Path(path)
    missing = [c for c in _PLAN_COLUMNS if c not in plan.columns]
    if missing:
        raise OptionError(f"the plan lacks columns {missing}; make it with plan_review()")
    sources = [*inputs]
    if plan.attrs.get("source"):
        sources.append(str(plan.attrs["source"]))
    _check_target(path, sources, force)
    _atomic_csv(plan, path)
    return path


def write_reviews(
    reviews: pd.DataFrame,
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    force: bool = False,
) -> Path:
    """Write expert reviews (``PanoramaId`` + reference counts) as CSV, atomically."""
    path = Path(path)
    if "PanoramaId" not in reviews.columns:
        raise OptionError("the reviews lack a 'PanoramaId' column")
    sources = [*inputs]
    if reviews.attrs.get("source"):
        sources.append(str(reviews.attrs["source"]))
    _check_target(path, sources, force)
    _atomic_csv(reviews, path)
    return path


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    try:
        return read_csv(path, dtype={"PanoramaId": str, "stratum": str}, keep_default_na=True)
    except FileNotFoundError:
        raise InputError(
            [Problem(str(path), None, None, "no such file", f"a {what} CSV", "check the path")]
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(
            [
                Problem(
                    str(path),
                    None,
                    None,
                    f"a file that is not a readable CSV ({type(exc).__name__}: {exc})",
                    f"a {what} CSV with a header row",
                    f"export the {what} again as comma-separated UTF-8",
                )
            ]
        ) from None


def _check_ids(df: pd.DataFrame, file: str, problems: list[Problem]) -> None:
    ids = df["PanoramaId"]
    for i in np.flatnonzero(ids.isna() | (ids.astype(str).str.strip() == "")):
        problems.append(
            Problem(file, int(i) + 1, "PanoramaId", "an empty id", "a panorama id", "fill it in")
        )
    seen: dict[str, int] = {}
    for j, v in enumerate(ids.astype(str)):
        if v in seen and v not in ("", "nan"):
            problems.append(
                Problem(
                    file,
                    j + 1,
                    "PanoramaId",
                    f"{v!r} again (first on row {seen[v]})",
                    "one row per panorama",
                    "remove the duplicate row",
                )
            )
        seen.setdefault(v, j + 1)


def _check_numbers(
    df: pd.DataFrame,
    col: str,
    file: str,
    problems: list[Problem],
    *,
    ok: Callable[[float], bool],
    expected: str,
    fix: str,
) -> pd.Series:
    values = pd.to_numeric(df[col], errors="coerce")
    for i in np.flatnonzero(values.isna().to_numpy()):
        problems.append(Problem(file, int(i) + 1, col, repr(df[col].iloc[i]), expected, fix))
    for i in np.flatnonzero(values.notna().to_numpy()):
        if not ok(float(values.iloc[i])):
            problems.append(Problem(file, int(i) + 1, col, repr(df[col].iloc[i]), expected, fix))
    return values


def read_plan(path: str | Path) -> pd.DataFrame:
    """Read a plan written by :func:`write_plan` (or by hand), checking every row.

    Raises
    ------
    InputError
        Listing every problem: a missing column, an empty or repeated ``PanoramaId``, an
        inclusion probability outside (0, 1], a weight that is not its inverse.
    """
    path = Path(path)
    file = str(path)
    df = _read_csv(path, "plan")
    problems: list[Problem] = []
    for col in _PLAN_COLUMNS:
        if col not in df.columns:
            problems.append(
                Problem(
                    file,
                    None,
                    col,
                    "no such column",
                    f"the columns {', '.join(_PLAN_COLUMNS)}",
                    "write the plan with `camcensus quality plan` (plan_review + write_plan)",
                )
            )
    if problems:
        raise InputError(problems)
    _check_ids(df, file, problems)
    pi = _check_numbers(
        df,
        "inclusion_probability",
        file,
        problems,
        ok=lambda v: 0 < v <= 1,
        expected="a probability in (0, 1]",
        fix="use n_h / N_h of the panorama's stratum",
    )
    w = _check_numbers(
        df,
        "weight",
        file,
        problems,
        ok=lambda v: v >= 1,
        expected="a weight >= 1 (1 / inclusion_probability)",
        fix="use N_h / n_h of the panorama's stratum",
    )
    both = pi.notna() & w.notna() & (pi > 0)
    bad = both & ~np.isclose(w * pi, 1.0, rtol=1e-6)
    for i in np.flatnonzero(bad.to_numpy()):
        problems.append(
            Problem(
                file,
                int(i) + 1,
                "weight",
                f"{df['weight'].iloc[i]!r} with inclusion_probability "
                f"{df['inclusion_probability'].iloc[i]!r}",
                "weight = 1 / inclusion_probability",
                "recompute the weight from the inclusion probability",
            )
        )
    for i in np.flatnonzero(df["stratum"].isna().to_numpy()):
        problems.append(
            Problem(file, int(i) + 1, "stratum", "an empty stratum", "a label", "fill it in")
        )
    if problems:
        raise InputError(problems)
    if "stratum_size" not in df.columns:
        df["stratum_size"] = df.groupby("stratum")["weight"].transform("sum").round()
    if "stratum_n" not in df.columns:
        df["stratum_n"] = df.groupby("stratum")["weight"].transform("size")
    df.attrs["source"] = str(path)
    df.attrs["strata"] = {
        str(h): {"N": int(g["stratum_size"].iloc[0]), "n": int(g["stratum_n"].iloc[0])}
        for h, g in df.groupby("stratum", sort=False)
    }
    return df


def read_reviews(path: str | Path, *, categories: Iterable[str] | None = None) -> pd.DataFrame:
    """Read expert reviews: ``PanoramaId`` and reference counts (whole numbers >= 0).

    Parameters
    ----------
    path
        CSV with ``PanoramaId`` and one column per reviewed category, named as the
        submissions' count columns (``attached_street``, ``attached_building``, ...); other
        columns (``stratum``, ``weight``, each expert's counts, ...) are kept as they are.
    categories
        Categories that must be present; by default at least one of them.

    Raises
    ------
    InputError
        Listing every problem with its row and column.
    """
    path = Path(path)
    file = str(path)
    df = _read_csv(path, "reviews")
    problems: list[Problem] = []
    wanted = list(categories) if categories is not None else None
    if "PanoramaId" not in df.columns:
        problems.append(
            Problem(file, None, "PanoramaId", "no such column", "a PanoramaId column", "add it")
        )
    present = [c for c in CATEGORIES if c in df.columns]
    if wanted is not None:
        for c in wanted:
            if c not in df.columns:
                problems.append(
                    Problem(
                        file,
                        None,
                        c,
                        "no such column",
                        f"the reference count {c!r}",
                        f"add a {c!r} column with the experts' count of each panorama",
                    )
                )
    elif not present:
        problems.append(
            Problem(
                file,
                None,
                None,
                f"none of the count columns ({', '.join(CATEGORIES)})",
                "at least one reference count column",
                "name the columns as the submissions' count columns, e.g. attached_street",
            )
        )
    if problems:
        raise InputError(problems)
    _check_ids(df, file, problems)
    for c in wanted if wanted is not None else present:
        values = _check_numbers(
            df,
            c,
            file,
            problems,
            ok=lambda v: v >= 0 and math.floor(v) == v,
            expected="a whole number of cameras >= 0",
            fix="enter the experts' (or the meta-expert's) count",
        )
        if values.notna().all():
            df[c] = values.astype("int64")
    if problems:
        raise InputError(problems)
    df.attrs["source"] = str(path)
    return df
