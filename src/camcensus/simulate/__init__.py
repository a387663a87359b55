"""A seeded synthetic city with ground truth, for tests, the demo and benchmarks.

The city is a street grid; each street intersection is photographed once (some pairs share a
panorama, as in New York); tracts are blocks of the grid with populations by race and income;
public (pole) cameras are placed with a rate that rises with the tract's non-white fraction by a
known log-rate ``beta_nonwhite``; three (sometimes more, sometimes fewer) pseudonymous volunteers
count the cameras of each intersection with a miss / mislabel / false-positive error model
(a volunteer may be given two intersections that share a panorama, as happened in New York:
the aggregation keeps one look per volunteer and panorama);
stops are drawn per tract and year. Everything returned beside the observations is the truth
they were drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

__all__ = ["ErrorModel", "SyntheticCity", "simulate_city"]

_CRS = "EPSG:32618"  # UTM 18N, metres
_ORIGIN = (500_000.0, 4_400_000.0)


@dataclass(frozen=True)
class ErrorModel:
    """How volunteers err. Each volunteer's miss probability is drawn from Beta(a, b) with mean
    ``miss_mean``; a seen camera gets the right attachment with ``p_attach_correct`` and, on a
    pole, the right type with ``p_type_correct`` (else "unknown"); each volunteer adds
    Poisson(``false_positive_rate``) cameras that are not there."""

    miss_mean: float = 0.15
    miss_concentration: float = 12.0
    p_attach_correct: float = 0.92
    p_type_correct: float = 0.8
    false_positive_rate: float = 0.04


@dataclass
class SyntheticCity:
    """Observations in Amnesty's formats, with the truth beside them."""

    crs: str
    tracts: gpd.GeoDataFrame
    boroughs: gpd.GeoDataFrame
    census: pd.DataFrame
    intersections: pd.DataFrame
    panoramas: pd.DataFrame
    submissions: pd.DataFrame
    truth: gpd.GeoDataFrame
    stops: pd.DataFrame
    params: dict[str, float] = field(default_factory=dict)

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write the observations as files a user would have; return their paths by role."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "raw_counts": folder / "counts.csv",
            "raw_intersections": folder / "intersections.csv",
            "panoramas": folder / "panorama_url.csv",
            "tracts": folder / "tracts.gpkg",
            "boroughs": folder / "boroughs.gpkg",
            "census": folder / "census.csv",
            "stops": folder / "stops.csv",
        }
        self.submissions.to_csv(paths["raw_counts"], index=False)
        self.intersections.to_csv(paths["raw_intersections"], index=False)
        self.panoramas.to_csv(paths["panoramas"], index=False)
        self.tracts.to_file(paths["tracts"], driver="GPKG")
        self.boroughs.to_file(paths["boroughs"], driver="GPKG")
        self.census.to_csv(paths["census"], index=False)
        self.stops.to_csv(paths["stops"], index=False)
        return paths


def _ids(rng: np.random.Generator, n: int, prefix: str, length: int = 12) -> list[str]:
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"))
    out: set[str] = set()
    while len(out) < n:
        out.add(prefix + "".join(rng.choice(alphabet, length)))
    # Sort first: a set's order depends on the process's string hashing, not on the seed.
    ordered = sorted(out)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def simulate_city(
    seed: int = 0,
    *,
    nx: int = 40,
    ny: int = 40,
    block_m: float = 100.0,
    tract_blocks: int = 5,
    beta_nonwhite: float = 1.2,
    base_public_rate: float = 0.08,
    building_rate: float = 0.6,
    share_panorama: float = 0.02,
    errors: ErrorModel | None = None,
    n_volunteers: int = 80,
) -> SyntheticCity:
    """Simulate a city; the same ``seed`` gives the same city.

    Parameters
    ----------
    seed
        Seed of every random draw.
    nx, ny, block_m
        Grid of ``nx`` × ``ny`` street intersections ``block_m`` metres apart.
    tract_blocks
        Tracts are squares of this many blocks.
    beta_nonwhite
        True log-rate increase of public cameras per unit of tract non-white fraction.
    base_public_rate
        Public cameras per intersection where the non-white fraction is 0 (before the signal
        effect, ×2 at signalised intersections).
    building_rate
        Mean building cameras per intersection.
    share_panorama
        Fraction of intersections that share their panorama with a neighbour.
    errors
        Volunteer error model.
    n_volunteers
        Size of the pseudonymous volunteer pool.
    """
    rng = np.random.default_rng(seed)
    errors = errors or ErrorModel()
    x0, y0 = _ORIGIN

    # Tracts: squares of the grid; two boroughs split at mid-city.
    n_tx, n_ty = -(-nx // tract_blocks), -(-ny // tract_blocks)
    side = tract_blocks * block_m
    # Tracts reach half a block beyond the outer streets, so every intersection lies inside one.
    x0, y0 = x0 - block_m / 2, y0 - block_m / 2
    mx, my = np.meshgrid(np.arange(n_tx), np.arange(n_ty), indexing="ij")
    tx, ty = mx.ravel(), my.ravel()
    tract_geom = shapely.box(
        x0 + tx * side, y0 + ty * side, x0 + (tx + 1) * side, y0 + (ty + 1) * side
    )
    borough = np.where(tx < n_tx / 2, "Westside", "Eastside")
    county = np.where(borough == "Westside", "99001", "99003")
    geoid = [f"{c}{i + 1:06d}" for i, c in enumerate(county)]
    tracts = gpd.GeoDataFrame({"GEOID": geoid, "borough": borough}, geometry=tract_geom, crs=_CRS)
    boroughs = tracts.dissolve("borough", as_index=False).rename(columns={"borough": "BoroName"})
    boroughs = boroughs[["BoroName", "geometry"]]

    # Demographics: a smooth west-east / north-south gradient of the non-white share.
    u, v = (tx + 0.5) / n_tx, (ty + 0.5) / n_ty
    logit = -1.5 + 3.0 * u + 1.0 * v + rng.normal(0, 0.6, len(tx))
    nonwhite = 1 / (1 + np.exp(-logit))
    popn = rng.poisson(3500, len(tx)).astype(float)
    parks = rng.random(len(tx)) < 0.05
    popn[parks] = rng.integers(0, 200, parks.sum())
    black = np.round(popn * nonwhite * rng.uniform(0.4, 0.7, len(tx)))
    hispanic = np.round(popn * nonwhite) - black
    white = np.round(popn * (1 - nonwhite))
    income = np.round(np.exp(11.4 - 0.9 * nonwhite + rng.normal(0, 0.25, len(tx))), -2)
    income[rng.random(len(tx)) < 0.03] = np.nan
    census = pd.DataFrame(
        {
            "GEOID": geoid,
            "NAME": [f"Synthetic tract {g[-6:]}" for g in geoid],
            "med.income": income,
            "popn": popn,
            "popn.white": white,
            "popn.black": black,
            "popn.hispanic": hispanic,
        }
    )

    # Intersections and the truth at each.
    mgx, mgy = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    gx, gy = mgx.ravel(), mgy.ravel()
    px, py = x0 + (gx + 0.5) * block_m, y0 + (gy + 0.5) * block_m
    n = len(px)
    t_of = (gx // tract_blocks) * n_ty + gy // tract_blocks
    signal = rng.random(n) < 0.35
    lam_pub = base_public_rate * np.exp(beta_nonwhite * nonwhite[t_of]) * np.where(signal, 2, 1)
    street = rng.poisson(lam_pub)
    building = rng.poisson(building_rate * rng.gamma(2.0, 0.5, n))
    unknown = rng.poisson(0.01, n)
    ptype = rng.choice(3, size=street.sum(), p=[0.7, 0.15, 0.15])
    owner = np.repeat(np.arange(n), street)
    dome = np.bincount(owner[ptype == 0], minlength=n)
    bullet = np.bincount(owner[ptype == 1], minlength=n)
    tunknown = street - dome - bullet

    pano_ids = np.array(_ids(rng, n, "", 22))
    # Some intersections share their neighbour's panorama (merged by the aggregation).
    share = np.flatnonzero((rng.random(n) < share_panorama) & (gy > 0))
    pano_of = np.arange(n)
    pano_of[share] = share - 1
    inter_ids = np.array(_ids(rng, n, "AX", 18))
    to_ll = gpd.GeoSeries(gpd.points_from_xy(px, py), crs=_CRS).to_crs("EPSG:4326")
    jitter = rng.normal(0, 4.0, (n, 2))
    pano_pts = gpd.GeoSeries(
        gpd.points_from_xy(px + jitter[:, 0], py + jitter[:, 1]), crs=_CRS
    ).to_crs("EPSG:4326")
    months = rng.choice(pd.period_range("2016-01", "2020-12", freq="M").astype(str), n)
    intersections = pd.DataFrame(
        {
            "IntersectionId": inter_ids,
            "Url": np.arange(1, n + 1),
            "Borough": borough[t_of],
            "TrafficSignal": np.where(signal, "TrafficLight", ""),
            "Lat": to_ll.y.round(6),
            "Long": to_ll.x.round(6),
            "PanoramaId": pano_ids[pano_of],
            "ImageDate": months[pano_of],
        }
    )
    uniq = np.unique(pano_of)
    panoramas = pd.DataFrame(
        {
            "PanoramaId": pano_ids[uniq],
            "Lat": to_ll.y.to_numpy()[uniq].round(6),
            "Long": to_ll.x.to_numpy()[uniq].round(6),
            "GoogleLat": pano_pts.y.to_numpy()[uniq],
            "GoogleLong": pano_pts.x.to_numpy()[uniq],
        }
    )
    truth = gpd.GeoDataFrame(
        {
            "PanoramaId": pano_ids[uniq],
            "GEOID": np.array(geoid)[t_of[uniq]],
            "n_cameras": (street + building + unknown)[uniq],
            "attached_street": street[uniq],
            "attached_building": building[uniq],
            "attached_unknown": unknown[uniq],
            "type_dome": dome[uniq],
            "type_bullet": bullet[uniq],
            "type_unknown": tunknown[uniq],
            "traffic_signal": signal[uniq],
        },
        geometry=gpd.points_from_xy(px[uniq], py[uniq]),
        crs=_CRS,
    )

    # Volunteers: each intersection gets 3 (a few get 2, 4 or 5) distinct volunteers.
    vol_ids = np.array(_ids(rng, n_volunteers, "v-", 10))
    a = errors.miss_mean * errors.miss_concentration
    miss = rng.beta(a, errors.miss_concentration - a, n_volunteers)
    k_per = rng.choice([2, 3, 4, 5], size=n, p=[0.02, 0.9, 0.06, 0.02])
    rows = []
    sub_ids = iter(_ids(rng, int(k_per.sum()), "sub-", 16))
    for i in range(n):
        vols = rng.choice(n_volunteers, size=k_per[i], replace=False)
        true_pano = pano_of[i]
        for vol in vols:
            obs = _observe(
                rng,
                street[true_pano],
                building[true_pano],
                unknown[true_pano],
                ptype[owner == true_pano],
                miss[vol],
                errors,
            )
            rows.append((next(sub_ids), vol_ids[vol], inter_ids[i], *obs))
    cols = ["SubmissionId", "DecoderId", "IntersectionId", "attached_street"]
    cols += ["attached_building", "attached_unknown", "type_dome", "type_bullet", "type_unknown"]
    submissions = pd.DataFrame(rows, columns=cols)
    submissions.insert(
        3,
        "n_cameras",
        submissions[["attached_street", "attached_building", "attached_unknown"]].sum(axis=1),
    )
    submissions = submissions.sample(frac=1.0, random_state=seed).reset_index(drop=True)

    # Stops: per tract and year, rising with public cameras per resident and non-white share.
    cams_tract = np.bincount(t_of, weights=street, minlength=len(tx))
    # Parks and other near-empty tracts get no rate (as in the models: population > 250).
    surv = np.where(popn > 250, cams_tract / np.maximum(popn, 1) * 1000, 0.0)
    stops = []
    for year, base in ((2019, 6.0), (2020, 4.0)):
        mu = popn / 1000 * base * np.exp(0.15 * surv + 0.8 * nonwhite)
        k = rng.poisson(mu)
        t = np.repeat(np.arange(len(tx)), k)
        sx = x0 + (tx[t] + rng.random(len(t))) * side
        sy = y0 + (ty[t] + rng.random(len(t))) * side
        race = np.where(rng.random(len(t)) < nonwhite[t] * 1.1, "BLACK", "WHITE")
        found = rng.random((3, len(t))) < np.array([[0.25], [0.1], [0.08]])
        stops.append(
            pd.DataFrame(
                {
                    "YEAR2": year,
                    "STOP_LOCATION_X": sx,
                    "STOP_LOCATION_Y": sy,
                    "SUSPECT_RACE_DESCRIPTION": race,
                    "SUSPECTED_CRIME_DESCRIPTION": rng.choice(
                        ["ROBBERY", "CPW", "ASSAULT"], len(t)
                    ),
                    "SUSPECT_ARRESTED_FLAG": np.where(found[0], "Y", "N"),
                    "SUMMONS_ISSUED_FLAG": np.where(found[1], "Y", "N"),
                    "WEAPON_FOUND_FLAG": np.where(found[2], "Y", "N"),
                }
            )
        )
    stop_df = pd.concat(stops, ignore_index=True)
    stop_df.insert(0, "STOP_ID", np.arange(1, len(stop_df) + 1))

    params = {
        "seed": float(seed),
        "beta_nonwhite": beta_nonwhite,
        "base_public_rate": base_public_rate,
        "signal_rate_ratio": 2.0,
        "miss_mean": errors.miss_mean,
        "stops_beta_surv": 0.15,
        "stops_beta_nonwhite": 0.8,
    }
    return SyntheticCity(
        crs=_CRS,
        tracts=tracts,
        boroughs=boroughs,
        census=census,
        intersections=intersections,
        panoramas=panoramas,
        submissions=submissions,
        truth=truth,
        stops=stop_df,
        params=params,
    )


def _observe(
    rng: np.random.Generator,
    street: int,
    building: int,
    unknown: int,
    types: np.ndarray,
    miss: float,
    e: ErrorModel,
) -> tuple[int, int, int, int, int, int]:
    """One volunteer's counts: seen cameras, relabelled, plus false positives."""
    true_att = np.repeat([0, 1, 2], [street, building, unknown])
    true_type = np.full(len(true_att), -1)
    true_type[:street] = types[:street]
    seen = rng.random(len(true_att)) >= miss
    att, typ = true_att[seen], true_type[seen]
    wrong = rng.random(len(att)) >= e.p_attach_correct
    att = np.where(wrong, (att + rng.integers(1, 3, len(att))) % 3, att)
    typ = np.where(rng.random(len(typ)) >= e.p_type_correct, 2, typ)
    fp = rng.poisson(e.false_positive_rate)
    fp_att = rng.choice(3, size=fp, p=[0.2, 0.7, 0.1])
    att = np.concatenate([att, fp_att])
    typ = np.concatenate([typ, np.full(fp, 2)])
    # A camera labelled as on a pole always gets a type (unknown when it had none).
    typ = np.where((att == 0) & (typ < 0), 2, typ)
    on_pole = att == 0
    return (
        int(on_pole.sum()),
        int((att == 1).sum()),
        int((att == 2).sum()),
        int((on_pole & (typ == 0)).sum()),
        int((on_pole & (typ == 1)).sum()),
        int((on_pole & (typ == 2)).sum()),
    )
