"""Stop records: to tracts, and the record-level analyses.

Two kinds, labelled in every table (``definition``): Amnesty's, as its methodology note defines
them (pages 44-49: the innocence linear probability model, "stopped while Black", per-crime
slopes, the five-crime share), and camcensus extras (innocence and Black share by a median split
with Wilson intervals, Spearman correlations per crime).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import stats as sps

from camcensus import settings
from camcensus._errors import Ledger
from camcensus._geo import (
    check_crs,
    check_crs_plausible,
    locate_points,
    measurement_crs,
    metres_per_unit,
)
from camcensus.stats._result import Estimate, ModelResult
from camcensus.stats.profile import glm_from_formula, lm_from_formula

__all__ = [
    "AMNESTY_FIVE_CRIMES",
    "black_share_by_surveillance",
    "check_stops_crs",
    "crime_correlations",
    "crime_slopes",
    "five_crime_share",
    "innocence_by_race",
    "innocence_by_race_and_surveillance",
    "innocence_lpm",
    "stop_counts",
    "stopped_while_black",
    "stops_to_tracts",
]

_Z = float(sps.norm.ppf(0.975))


def check_stops_crs(crs: str) -> str:
    """Return ``crs`` when pyproj knows it; else raise :class:`~camcensus.OptionError` naming
    ``--stops-crs`` and a CRS that works."""
    return check_crs(crs, "--stops-crs")


def stops_to_tracts(
    records: pd.DataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    crs: str | None = None,
    snap_m: float | None = None,
    ledger: Ledger | None = None,
    source: str = "stop records",
) -> pd.DataFrame:
    """Give each stop record its tract (spatial join in ``crs``, NYPD's state plane feet).

    A stop in no tract (on a pier, in the water) goes to the nearest tract when it lies within
    ``snap_m`` metres (default: the ``snap_m`` setting), as prepdata.R did for all of them;
    farther ones are left out. Both are counted in ``ledger``. ``crs`` (default: the
    ``stops_crs`` setting) must fit the coordinates: degrees declared as feet, or the reverse,
    raise :class:`~camcensus._errors.InputError` naming ``source``. Returns the kept records
    with a ``GEOID`` column.
    """
    crs = str(settings.get("stops_crs")) if crs is None else check_stops_crs(crs)
    snap_m = float(settings.get("snap_m")) if snap_m is None else float(snap_m)
    pts = gpd.GeoDataFrame(
        geometry=shapely.points(records["x"].to_numpy(), records["y"].to_numpy()), crs=crs
    )
    check_crs_plausible(pts, source, crs_option="--stops-crs")
    measure = measurement_crs(pts)
    pts_m = pts.to_crs(measure)
    tracts = gdf_tracts.to_crs(measure)
    per_unit = metres_per_unit(measure)
    located = locate_points(
        np.asarray(pts_m.geometry.values), np.asarray(tracts.geometry.values), snap=math.inf
    )
    owner = located.owner.copy()
    dist_m = located.snap_distance * per_unit
    far = located.snapped[dist_m > snap_m]
    near = located.snapped[dist_m <= snap_m]
    owner[far] = -1
    if ledger is not None:
        if len(near):
            ledger.note(
                f"{len(near)} stop(s) lay outside every tract and were given to the nearest "
                f"tract (at most {dist_m[dist_m <= snap_m].max():,.1f} m away)"
            )
        if len(far):
            ledger.exclude(
                "stops",
                f"stop farther than {snap_m:g} m from every tract "
                f"(up to {dist_m[dist_m > snap_m].max():,.0f} m)",
                len(far),
            )
    kept = owner >= 0
    out = records.loc[kept].copy()
    out["GEOID"] = list(tracts["GEOID"].to_numpy()[owner[kept]])
    return out.reset_index(drop=True)


def stop_counts(records: pd.DataFrame) -> pd.DataFrame:
    """Return the long table ``GEOID, year, count`` of stops per tract and year."""
    return records.groupby(["GEOID", "year"]).size().rename("count").astype(float).reset_index()


def _prop(k: float, n: float, term: str, method: str = "wilson") -> Estimate:
    """A proportion with its Wilson 95% interval."""
    if n <= 0:
        nan = float("nan")
        return Estimate(term, nan, nan, nan, nan, nan, 0, method)
    p = k / n
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * np.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return Estimate(
        term,
        p,
        float(np.sqrt(p * (1 - p) / n)),
        centre - half,
        centre + half,
        float("nan"),
        int(n),
        method,
    )


def _race_group(race: pd.Series) -> pd.Series:
    r = race.fillna("").str.upper()
    return pd.Series(
        np.select(
            [r.str.contains("HISPANIC"), r.eq("BLACK"), r.eq("WHITE")],
            ["Hispanic", "Black", "White"],
            "Other / unknown",
        ),
        index=race.index,
    )


def innocence_by_race_and_surveillance(
    records: pd.DataFrame, surv: pd.Series, *, threshold: float | None = None
) -> pd.DataFrame:
    """Chance that a stopped person is found innocent (not arrested, no summons, no weapon), by
    race and by surveillance of the stop's tract (above / at or below ``threshold``, default the
    median tract surveillance level). Returns one row per group with a Wilson 95% interval."""
    r = records.dropna(subset=["GEOID"]).copy()
    level = r["GEOID"].map(surv)
    r = r.loc[level.notna()]
    level = level.loc[r.index]
    cut = float(surv.median()) if threshold is None else threshold
    r["surveillance"] = np.where(level > cut, "high", "low")
    r["race"] = _race_group(r["suspect_race_description"])
    r["innocent"] = ~(
        r["suspect_arrested_flag"] | r["summons_issued_flag"] | r["weapon_found_flag"]
    )
    rows = []
    for (race, lvl), g in r.groupby(["race", "surveillance"]):
        e = _prop(float(g["innocent"].sum()), float(len(g)), f"{race}|{lvl}")
        rows.append({"race": race, "surveillance": lvl, **e.__dict__, "threshold": cut})
    return pd.DataFrame(rows)


def black_share_by_surveillance(
    records: pd.DataFrame, tracts: pd.DataFrame, *, threshold: float | None = None
) -> pd.DataFrame:
    """Share of stopped people who are Black vs share of residents who are Black, in tracts of
    high and low surveillance (``surv`` above / at or below ``threshold``, default median)."""
    t = tracts.set_index("GEOID")
    cut = float(t["surv"].median()) if threshold is None else threshold
    level = pd.Series(np.where(t["surv"] > cut, "high", "low"), index=t.index)
    r = records.loc[records["GEOID"].isin(t.index)].copy()
    r["surveillance"] = r["GEOID"].map(level)
    r["black"] = _race_group(r["suspect_race_description"]).eq("Black")
    rows = []
    for lvl in ("high", "low"):
        g = r.loc[r["surveillance"] == lvl]
        stopped = _prop(float(g["black"].sum()), float(len(g)), f"stopped|{lvl}")
        res = t.loc[level == lvl]
        residents = float(res["popn_black"].sum()) / float(res["popn"].sum())
        rows.append(
            {
                "surveillance": lvl,
                "stopped_black_share": stopped.estimate,
                "ci_low": stopped.ci_low,
                "ci_high": stopped.ci_high,
                "stops": stopped.n,
                "resident_black_share": residents,
                "ratio": stopped.estimate / residents,
                "threshold": cut,
            }
        )
    return pd.DataFrame(rows)


def crime_correlations(
    records: pd.DataFrame, tracts: pd.DataFrame, *, min_stops: int = 100
) -> pd.DataFrame:
    """Spearman correlation, across tracts, of each suspected crime's stops per 1,000 residents
    with the surveillance level (crimes with at least ``min_stops`` stops)."""
    t = tracts.set_index("GEOID")
    rows = []
    crimes = records["suspected_crime_description"].value_counts()
    for crime, total in crimes.items():
        if total < min_stops:
            continue
        per = records.loc[records["suspected_crime_description"] == crime].groupby("GEOID").size()
        rate = per.reindex(t.index).fillna(0) / t["popn"] * 1000
        rho, p = sps.spearmanr(rate, t["surv"])
        n = len(t)
        # Fisher-z interval for Spearman's rho (Bonett & Wright 2000 variance).
        se = np.sqrt((1 + rho**2 / 2) / (n - 3))
        zr = np.arctanh(rho)
        rows.append(
            {
                "crime": str(crime),
                "stops": int(total),
                "term": "spearman_rho",
                "estimate": float(rho),
                "std_error": float(se),
                "ci_low": float(np.tanh(zr - _Z * se)),
                "ci_high": float(np.tanh(zr + _Z * se)),
                "p_value": float(p),
                "n": n,
                "method": "spearman",
            }
        )
    columns = ["year", "definition", "crime", "stops", "term", "estimate", "std_error"]
    columns += ["ci_low", "ci_high", "p_value", "n", "method", "std_error_unpooled"]
    columns += ["five_crimes"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("estimate", ascending=False).reset_index(drop=True)


# --- The record-level analyses as Amnesty's methodology note defines them (pages 44-49) ---

#: The suspected crimes whose stop rate rises with surveillance (methodology note p.46).
AMNESTY_FIVE_CRIMES = ("CPW", "ASSAULT", "ROBBERY", "PETIT LARCENY", "GRAND LARCENY")
#: Label of the analyses that follow Amnesty's definitions, and of ours.
AMNESTY = "Amnesty methodology p.{page}"
EXTRA = "camcensus extra"


def _bwh(race: pd.Series) -> pd.Series:
    """Amnesty's ``bwh``: BLACK, WHITE, and BLACK/WHITE HISPANIC as HISPANIC; others missing."""
    r = race.fillna("").astype(str).str.upper()
    hispanic = r.isin(["BLACK HISPANIC", "WHITE HISPANIC"])
    labels = np.select([r.eq("BLACK"), r.eq("WHITE"), hispanic], ["BLACK", "WHITE", "HISPANIC"], "")
    return pd.Series(labels, index=race.index).replace("", np.nan)


def _with_tract(
    records: pd.DataFrame, tracts: pd.DataFrame, year: int, cap: float | None
) -> pd.DataFrame:
    t = tracts.set_index("GEOID")
    r = records.loc[records["year"] == year].copy()
    r["popn"] = r["GEOID"].map(t["popn"])
    surv = r["GEOID"].map(t["eff_cameras"]) / r["popn"] * 1000
    r["surv"] = np.minimum(surv, cap) if cap is not None else surv
    return r


def innocence_lpm(
    records: pd.DataFrame,
    tracts: pd.DataFrame,
    *,
    year: int,
    crimes: tuple[str, ...] | None = None,
    min_population: int = 250,
) -> ModelResult:
    """The linear probability model of being found innocent (methodology note p.47-48).

    ``glm(innocent ~ 0 + bwh + bwh:surv)`` (gaussian): innocent = not arrested, no summons, no
    weapon found; ``bwh`` from the suspect's race (Black, White, Black or White Hispanic as
    Hispanic; other races left out); ``surv = min(eff_cameras / popn * 1000, 3)`` of the stop's
    tract; stops in tracts of more than ``min_population`` residents; with ``crimes`` only
    those suspected crimes (p.48: ``("ASSAULT", "ROBBERY")``). ``tracts`` needs ``GEOID``,
    ``popn``, ``eff_cameras``.
    """
    r = _with_tract(records, tracts, year, cap=3.0)
    r["bwh"] = _bwh(r["suspect_race_description"])
    keep = (r["popn"] > min_population) & r["bwh"].notna()
    if crimes is not None:
        keep &= r["suspected_crime_description"].isin(crimes)
    d = r.loc[keep].copy()
    d["innocent"] = (
        ~(d["suspect_arrested_flag"] | d["summons_issued_flag"] | d["weapon_found_flag"])
    ).astype(float)
    d["bwh"] = pd.Categorical(d["bwh"], categories=["BLACK", "HISPANIC", "WHITE"])
    fit = glm_from_formula("innocent ~ 0 + bwh + bwh:surv", d, family="gaussian")
    suffix = "" if crimes is None else "_" + "_".join(c.lower() for c in crimes)
    page = 47 if crimes is None else 48
    r_subset = "popn > 250 & !is.na(bwh) & YEAR2 == " + str(year)
    if crimes is not None:
        r_subset += (
            " & SUSPECTED_CRIME_DESCRIPTION %in% c(" + ", ".join(f'"{c}"' for c in crimes) + ")"
        )
    return fit.to_result(
        name="innocence_lpm" + suffix,
        formula=f"glm(innocent ~ 0 + bwh + bwh:surv, subset = {r_subset})",
        group={"year": year, "definition": AMNESTY.format(page=page)},
    )


def stopped_while_black(
    records: pd.DataFrame,
    tracts: pd.DataFrame,
    *,
    year: int,
    threshold: float = 0.2,
    exclude: tuple[str, ...] = (),
    min_population: int = 250,
) -> ModelResult:
    """ "Stopped while Black" (methodology note p.48-49; Amnesty excluded Manhattan).

    ``lm(numstops.black/numstops ~ 1 + I(popn.black/popn) * I(surv > threshold))`` per tract,
    ``surv = eff_cameras / popn * 1000`` (not truncated), tracts of more than
    ``min_population`` residents outside ``exclude``; tracts without stops have no share and
    are left out (R's "observations deleted due to missingness", in ``extras["n_deleted"]``).
    ``tracts`` needs ``GEOID``, ``borough``, ``popn``, ``popn_black``, ``eff_cameras``.
    """
    r = records.loc[records["year"] == year]
    per = r.groupby("GEOID").agg(
        numstops=("GEOID", "size"),
        numstops_black=("suspect_race_description", lambda s: int((s == "BLACK").sum())),
    )
    t = tracts.loc[
        (tracts["popn"] > min_population) & ~tracts["borough"].isin(exclude)
    ].reset_index(drop=True)
    d = pd.DataFrame(
        {
            "stopped_black_share": t["GEOID"].map(per["numstops_black"])
            / t["GEOID"].map(per["numstops"]),
            "resident_black_share": t["popn_black"] / t["popn"],
            "high": pd.Categorical(
                np.where(t["eff_cameras"] / t["popn"] * 1000 > threshold, "TRUE", "FALSE"),
                categories=["FALSE", "TRUE"],
            ),
        }
    )
    fit = lm_from_formula("stopped_black_share ~ 1 + resident_black_share * high", d)
    return fit.to_result(
        name="stopped_while_black_lm",
        formula=f"lm(numstops.black/numstops ~ 1 + I(popn.black/popn) * I(surv > {threshold:g}),"
        f" subset = popn > {min_population}"
        + "".join(f" & borough != '{b}'" for b in exclude)
        + ")",
        group={
            "year": year,
            "definition": AMNESTY.format(page=48),
            "threshold": threshold,
            "excluded": list(exclude),
        },
    )


def crime_slopes(
    records: pd.DataFrame, tracts: pd.DataFrame, *, year: int, min_population: int = 250
) -> pd.DataFrame:
    """Slope of stops per 1,000 residents on surveillance, per suspected crime (p.45).

    As ``lmList(numstops/popn*1000 ~ 1 + surv | SUSPECTED_CRIME_DESCRIPTION, subset =
    popn > 250)``: every tract of more than ``min_population`` residents for every crime (0
    stops where none), ``surv = min(eff_cameras / popn * 1000, 3)``; standard errors from the
    residual standard deviation pooled over the crimes (``lmList``'s default), t intervals.
    """
    t = tracts.loc[tracts["popn"] > min_population].reset_index(drop=True)
    surv = np.minimum(t["eff_cameras"].to_numpy() / t["popn"].to_numpy() * 1000, 3.0)
    X = np.column_stack([np.ones(len(t)), surv])
    r = records.loc[records["year"] == year]
    crimes = sorted(records["suspected_crime_description"].dropna().unique())
    xtx_inv = np.linalg.inv(X.T @ X)
    fits = []
    for crime in crimes:
        per = r.loc[r["suspected_crime_description"] == crime].groupby("GEOID").size()
        y = t["GEOID"].map(per).fillna(0).to_numpy() / t["popn"].to_numpy() * 1000
        beta = xtx_inv @ X.T @ y
        rss = float(np.sum((y - X @ beta) ** 2))
        fits.append((crime, int(per.sum()), beta, rss))
    df_pool = (len(t) - 2) * len(fits)
    sigma = np.sqrt(sum(f[3] for f in fits) / df_pool) if df_pool > 0 else np.nan
    se = float(np.sqrt(xtx_inv[1, 1]) * sigma)
    q = float(sps.t.ppf(0.975, df_pool))
    rows = []
    for crime, stops, beta, rss in fits:
        b = float(beta[1])
        tval = b / se if se > 0 else np.nan
        rows.append(
            {
                "year": year,
                "crime": str(crime),
                "stops": stops,
                "term": "surv",
                "estimate": b,
                "std_error": se,
                "ci_low": b - q * se,
                "ci_high": b + q * se,
                "p_value": float(2 * sps.t.sf(abs(tval), df_pool)),
                "n": len(t),
                "method": "t (lmList, pooled residual SD)",
                "std_error_unpooled": float(
                    np.sqrt(xtx_inv[1, 1] * rss / (len(t) - 2)) if len(t) > 2 else np.nan
                ),
                "five_crimes": str(crime) in AMNESTY_FIVE_CRIMES,
                "definition": AMNESTY.format(page=45),
            }
        )
    columns = ["year", "definition", "crime", "stops", "term", "estimate", "std_error"]
    columns += ["ci_low", "ci_high", "p_value", "n", "method", "std_error_unpooled"]
    columns += ["five_crimes"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("estimate", ascending=False).reset_index(drop=True)


def five_crime_share(records: pd.DataFrame, *, year: int) -> dict[str, object]:
    """Share of the year's stops whose suspected crime is one of :data:`AMNESTY_FIVE_CRIMES`
    (methodology note p.46: 0.7082993 in 2019)."""
    r = records.loc[records["year"] == year, "suspected_crime_description"]
    k = int(r.isin(AMNESTY_FIVE_CRIMES).sum())
    return {
        "year": year,
        "quantity": "share of stops for CPW, ASSAULT, ROBBERY, PETIT LARCENY, GRAND LARCENY",
        "stops": len(r),
        "five_crime_stops": k,
        "share": k / len(r) if len(r) else float("nan"),
        "definition": AMNESTY.format(page=46),
    }


def innocence_by_race(records: pd.DataFrame, *, year: int) -> pd.DataFrame:
    """Stops, innocent stops and percent innocent per suspect race (p.46-47 tabulation)."""
    r = records.loc[records["year"] == year].copy()
    r["innocent"] = ~(
        r["suspect_arrested_flag"] | r["summons_issued_flag"] | r["weapon_found_flag"]
    )
    g = r.groupby("suspect_race_description")["innocent"].agg(["size", "sum"])
    out = pd.DataFrame(
        {
            "year": year,
            "suspect_race_description": g.index.astype(str),
            "n": g["size"].astype(int).to_numpy(),
            "n_innocent": g["sum"].astype(int).to_numpy(),
        }
    )
    out["percent_innocent"] = out["n_innocent"] / out["n"] * 100
    out["definition"] = AMNESTY.format(page=47)
    return out.sort_values("n", ascending=False).reset_index(drop=True)
