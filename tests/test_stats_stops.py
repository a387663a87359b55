"""Stop records and counts: readers, the tract join, the record-level analyses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
