"""Stop records and counts: readers, the tract join, the record-level analyses."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from camcensus import InputError, Ledger
from camcensus.io import census
from camcensus.io.stops import stop_counts_from_csv, stop_records_from_file
from camcensus.stats import stops as st


@pytest.fixture(scope="module")
def records(shared: Path) -> pd.DataFrame:
    ledger = Ledger()
    rec = stop_records_from_file(shared / "sqf" / "sqf-2020.xlsx", ledger=ledger)
    assert len(rec) == 9_540
    assert ledger.records() == [
        {"stage": "stops", "reason": "known-bad 2020 geocoding (prepdata.R's list)", "count": 4}
    ]
    tracts = census.tracts_from_file(shared / "census" / "nyc_tracts_2019_shoreline" / "tracts.shp")
    return st.stops_to_tracts(rec, tracts)


def test_join_reproduces_amnesty_tract_counts(records: pd.DataFrame, shared: Path) -> None:
    ours = st.stop_counts(records)
    ref = stop_counts_from_csv(shared / "census" / "acs2019_tract" / "full_df.csv")
    ref = ref.loc[ref["year"] == 2020]
    m = ref.merge(ours, on=["GEOID", "year"], how="outer", suffixes=("_ref", "")).fillna(0)
    assert m["count"].sum() == m["count_ref"].sum() == 9_540
    # Two stops on the Brooklyn/Queens border fall in the other tract (R joined unclipped tracts).
    assert (m["count"] != m["count_ref"]).sum() <= 2
    assert (m["count"] - m["count_ref"]).abs().sum() <= 4


def test_record_analyses(records: pd.DataFrame, shared: Path) -> None:
    rng = np.random.default_rng(0)
    geoids = records["GEOID"].unique()
    tracts = pd.DataFrame(
        {
            "GEOID": geoids,
            "surv": rng.gamma(2, 0.4, len(geoids)),
            "popn": rng.integers(500, 5000, len(geoids)).astype(float),
            "popn_black": rng.integers(0, 500, len(geoids)).astype(float),
        }
    )
    inn = st.innocence_by_race_and_surveillance(records, tracts.set_index("GEOID")["surv"])
    assert inn["n"].sum() == len(records)
    assert ((inn["ci_low"] <= inn["estimate"]) & (inn["estimate"] <= inn["ci_high"])).all()
    black = records["suspect_race_description"].eq("BLACK")
    assert inn.loc[inn["race"] == "Black", "n"].sum() == int(black.sum())
    share = st.black_share_by_surveillance(records, tracts)
    assert share["stops"].sum() == len(records)
    cor = st.crime_correlations(records, tracts, min_stops=500)
    assert set(cor["crime"]) == set(
        records["suspected_crime_description"].value_counts().loc[lambda s: s >= 500].index
    )
    assert cor["estimate"].between(-1, 1).all()


def test_stop_counts_long_and_wide(tmp_path: Path) -> None:
    long = tmp_path / "long.csv"
    long.write_text("GEOID,year,count\n36047000100,2019,3\n36047000100,2020,1\n")
    got = stop_counts_from_csv(long)
    assert got["count"].tolist() == [3.0, 1.0]
    wide = tmp_path / "wide.csv"
    wide.write_text("GEOID,n_2019,n_2020\n36047000100,3,\n")
    got = stop_counts_from_csv(wide)
    assert got.set_index("year")["count"].to_dict() == {2019: 3.0, 2020: 0.0}
    bad = tmp_path / "bad.csv"
    bad.write_text("GEOID,stops\n36047000100,3\n")
    with pytest.raises(InputError, match="n_YYYY"):
        stop_counts_from_csv(bad)
    dup = tmp_path / "dup.csv"
    dup.write_text("GEOID,year,count\n1,2019,3\n1,2019,4\n")
    with pytest.raises(InputError, match="twice"):
        stop_counts_from_csv(dup)


def _two_tracts() -> gpd.GeoDataFrame:
    # Two 1,000 ft squares in NY Long Island state plane (US feet), next to each other.
    x0, y0 = 1_000_000.0, 200_000.0
    return gpd.GeoDataFrame(
        {"GEOID": ["A", "B"], "borough": ["X", "X"]},
        geometry=[
            shapely.box(x0, y0, x0 + 1000, y0 + 1000),
            shapely.box(x0 + 1000, y0, x0 + 2000, y0 + 1000),
        ],
        crs="EPSG:2908",
    )


def test_stops_snap_only_within_snap_m() -> None:
    ft = 0.3048006096  # metres per US survey foot
    x0, y0 = 1_000_000.0, 200_000.0
    recs = pd.DataFrame(
        {
            "x": [x0 + 500, x0 - 50 / ft, x0 - 500 / ft, x0 - 2000 / ft],
            "y": [y0 + 500] * 4,
            "year": 2020,
        }
    )
    ledger = Ledger()
    out = st.stops_to_tracts(recs, _two_tracts(), crs="EPSG:2908", snap_m=100, ledger=ledger)
    assert out["GEOID"].tolist() == ["A", "A"]
    excl = ledger.records()
    assert excl == [
        {
            "stage": "stops",
            "reason": "stop farther than 100 m from every tract (up to 2,000 m)",
            "count": 2,
        }
    ]
    assert any("nearest tract (at most 50.0 m away)" in n for n in ledger.notes)
    # The default comes from the snap_m setting.
    again = st.stops_to_tracts(recs, _two_tracts(), crs="EPSG:2908")
    assert len(again) == 2


def test_stops_in_degrees_declared_as_feet_are_refused() -> None:
    recs = pd.DataFrame({"x": [-73.95, -73.9], "y": [40.7, 40.8], "year": 2020})
    with pytest.raises(InputError, match="EPSG:2908"):
        st.stops_to_tracts(recs, _two_tracts(), crs="EPSG:2908", source="stops.csv")
    # Declared as degrees they are accepted (and measured in a metric CRS).
    got = st.stops_to_tracts(recs, _two_tracts(), crs="EPSG:4326", snap_m=1e9)
    assert len(got) == 2


def test_stop_year_must_be_whole_and_workbooks_whole(tmp_path: Path, shared: Path) -> None:
    csv = tmp_path / "stops.csv"
    csv.write_text(
        "STOP_ID,YEAR2,STOP_LOCATION_X,STOP_LOCATION_Y\n1,2019.5,1000000,200000\n"
        "2,2020,1000000,200000\n"
    )
    with pytest.raises(InputError, match=r"row 1, column 'YEAR2': found '2019.5'"):
        stop_records_from_file(csv)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("STOP_ID,YEAR2\n1,2020\n")
    with pytest.raises(InputError, match=r"fake.xlsx.*does not start like an Excel workbook"):
        stop_records_from_file(fake)
    data = (shared / "sqf" / "sqf-2020.xlsx").read_bytes()
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut.xlsx.*damaged workbook.*download the file again"):
        stop_records_from_file(cut)
    long = tmp_path / "long.csv"
    long.write_text("GEOID,year,count\n36047000100,2019.5,3\n")
    with pytest.raises(InputError, match="year"):
        stop_counts_from_csv(long)


def test_amnesty_record_definitions(records: pd.DataFrame, shared: Path) -> None:
    cov = pd.read_csv(shared / "amnesty_decode/camera_count.csv", dtype={"GEOID": str})
    acs = census.census_from_csv(shared / "census/acs2019_tract/census.csv")
    full = pd.read_csv(
        shared / "census/acs2019_tract/full_df.csv",
        dtype={"GEOID": str},
        usecols=["GEOID", "borough"],
    )
    tracts = cov.merge(acs, left_on="GEOID", right_index=True).merge(full, on="GEOID")
    share = st.five_crime_share(records, year=2020)
    crimes = records["suspected_crime_description"]
    assert share["share"] == pytest.approx(crimes.isin(st.AMNESTY_FIVE_CRIMES).mean())
    assert share["definition"] == "Amnesty methodology p.46"
    lpm = st.innocence_lpm(records, tracts, year=2020)
    assert [c.term for c in lpm.coefficients] == [
        "bwh[BLACK]",
        "bwh[HISPANIC]",
        "bwh[WHITE]",
        "bwh[BLACK]:surv",
        "bwh[HISPANIC]:surv",
        "bwh[WHITE]:surv",
    ]
    race = records["suspect_race_description"]
    bwh = race.isin(["BLACK", "WHITE", "BLACK HISPANIC", "WHITE HISPANIC"])
    popn = records["GEOID"].map(tracts.set_index("GEOID")["popn"])
    assert lpm.n == int((bwh & (popn > 250)).sum())
    assert lpm.family == "gaussian" and lpm.extras["statistic"] == "t"
    assert lpm.group == {"year": 2020, "definition": "Amnesty methodology p.47"}
    none = st.innocence_lpm(records.assign(year=2019), tracts, year=2019)
    assert none.n == lpm.n  # the year selects the records
    swb = st.stopped_while_black(records, tracts, year=2020, exclude=("Manhattan",))
    kept = tracts.loc[(tracts["popn"] > 250) & (tracts["borough"] != "Manhattan")]
    with_stops = kept["GEOID"].isin(records["GEOID"])
    assert swb.n == int(with_stops.sum())
    assert swb.extras["n_deleted"] == int((~with_stops).sum())
    slopes = st.crime_slopes(records, tracts, year=2020)
    assert set(slopes["crime"]) == set(crimes.unique())
    assert (slopes["n"] == int((tracts["popn"] > 250).sum())).all()
    # One pooled residual standard deviation: the same standard error for every crime.
    assert slopes["std_error"].nunique() == 1
    assert (slopes["year"] == 2020).all()
    assert slopes["definition"].eq("Amnesty methodology p.45").all()
    by_race = st.innocence_by_race(records, year=2020)
    assert by_race["n"].sum() == len(records)
    assert by_race["n"].is_monotonic_decreasing


def test_record_numbers_of_2019_are_not_compared_with_2020(records: pd.DataFrame) -> None:
    from camcensus.stats import published_models

    table = published_models.compare([], records=records)
    assert set(table["model"]) == {"five_crime_share", "innocence_by_race"}
    assert not table["comparable"].any() and not table["matches_printed_digits"].any()
    assert (table["year_ours"] == 2020).all() and (table["year_published"] == 2019).all()
    assert (
        table["cause"] == "not comparable: 2019 stop records unavailable, ours are 2020 records"
    ).all()
    share = table.set_index("model").loc["five_crime_share"]
    assert share["published"] == "0.7082993"
    black = table.loc[(table["term"] == "BLACK") & (table["quantity"] == "n"), "ours"]
    assert black.iloc[0] == float((records["suspect_race_description"] == "BLACK").sum())
