"""Stop records: to tracts, and the record-level analyses of the methodology note (§2)."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import stats as sps

from camcensus._errors import Ledger
from camcensus._geo import locate_points
from camcensus.stats._result import Estimate

__all__ = [
    "black_share_by_surveillance",
    "crime_correlations",
    "innocence_by_race_and_surveillance",
    "stop_counts",
    "stops_to_tracts",
]

_Z = float(sps.norm.ppf(0.975))


def stops_to_tracts(
    records: pd.DataFrame,
    gdf_tracts: gpd.GeoDataFrame,
    *,
    crs: str = "EPSG:2908",
    ledger: Ledger | None = None,
) -> pd.DataFrame:
    """Give each stop record its tract (spatial join in ``crs``, NYPD's state plane feet).

    A stop in no tract (on a pier, in the water) goes to the nearest tract, as prepdata.R did;
    those are counted in ``ledger``. Returns ``records`` with a ``GEOID`` column.
    """
    tracts = gdf_tracts.to_crs(crs)
    pts = shapely.points(records["x"].to_numpy(), records["y"].to_numpy())
    zones = np.asarray(tracts.geometry.values)
    located = locate_points(pts, zones, snap=math.inf)
    if ledger is not None and len(located.snapped):
        ledger.note(
            f"{len(located.snapped)} stop(s) lay outside every tract and were given to the "
            f"nearest tract (at most {located.snap_distance.max():,.1f} "
            f"{tracts.crs.axis_info[0].unit_name} away)"
        )
    out = records.copy()
    out["GEOID"] = tracts["GEOID"].to_numpy()[located.owner]
    return out


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
    return pd.DataFrame(rows).sort_values("estimate", ascending=False).reset_index(drop=True)
