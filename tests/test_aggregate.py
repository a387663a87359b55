"""Aggregation: medians of 3, agreement, totals, exclusions; invariants with hypothesis."""

from __future__ import annotations

import statistics
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from camcensus import Ledger
from camcensus.aggregate import (
    add_totals,
    aggregate_submissions,
    agreement_class,
    assign_boroughs,
    summary_tables,
)
from camcensus.io import decode

CATS = list(decode.CATEGORIES)


def _frames(counts: list[list[list[int]]]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build submissions / intersections / panoramas from counts[pano][submission][category]."""
    rows, inter, pans = [], [], []
    for p, subs in enumerate(counts):
        pid = f"P{p:03d}"
        pans.append({"PanoramaId": pid, "GoogleLat": 40.6 + p * 1e-3, "GoogleLong": -73.9})
        inter.append({"IntersectionId": f"I{p:03d}", "PanoramaId": pid, "ImageDate": "2020-01"})
        for s, vals in enumerate(subs):
            rows.append(
                {
                    "SubmissionId": f"S{p}-{s}",
                    "DecoderId": f"D{s}",
                    "IntersectionId": f"I{p:03d}",
                    **dict(zip(CATS, vals, strict=True)),
                }
            )
    sub = pd.DataFrame(rows, columns=["SubmissionId", "DecoderId", "IntersectionId", *CATS])
    return sub, pd.DataFrame(inter), pd.DataFrame(pans)


counts_strategy = st.lists(
    st.lists(st.lists(st.integers(0, 4), min_size=7, max_size=7), min_size=0, max_size=6),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(counts=counts_strategy, seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_random_pick_independent_of_row_order(counts, seed, perm_seed) -> None:  # type: ignore[no-untyped-def]
    sub, inter, pans = _frames(counts)
    a = aggregate_submissions(sub, inter, pans, seed=seed)
    shuffled = sub.sample(frac=1.0, random_state=perm_seed).reset_index(drop=True)
    b = aggregate_submissions(shuffled, inter.iloc[::-1], pans.iloc[::-1], seed=seed)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))


@settings(max_examples=60, deadline=None)
@given(counts=counts_strategy)
def test_first_pick_matches_notebook_reference(counts) -> None:  # type: ignore[no-untyped-def]
    sub, inter, pans = _frames(counts)
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, pick="first", ledger=ledger).set_index(
        "PanoramaId"
    )
    # Reference: Amnesty's notebook keeps the first 3 rows per panorama in file order.
    merged = sub.merge(inter, on="IntersectionId")
    kept_panos = 0
    for pid, g in merged.groupby("PanoramaId", sort=True):
        if len(g) < 3:
            assert pid not in got.index
            continue
        kept_panos += 1
        first3 = g.head(3)
        for c in CATS:
            vals = first3[c].tolist()
            assert got.loc[pid, f"{c}_median"] == statistics.median(vals)
            assert min(vals) <= got.loc[pid, f"{c}_median"] <= max(vals)
            expected = {1: "Unanimous", 2: "2 vs 1", 3: "All disagree"}[len(set(vals))]
            assert got.loc[pid, f"{c}_agreement"] == expected
    assert len(got) == kept_panos
    few = sum(1 for subs in counts if len(subs) < 3)
    assert sum(e.count for e in ledger if e.reason.startswith("panorama seen by fewer")) == few


@settings(max_examples=40, deadline=None)
@given(counts=counts_strategy, seed=st.integers(0, 100))
def test_totals_are_sums_of_category_medians(counts, seed) -> None:  # type: ignore[no-untyped-def]
    sub, inter, pans = _frames(counts)
    got = add_totals(aggregate_submissions(sub, inter, pans, seed=seed))
    expected = (
        got["attached_street_median"]
        + got["attached_building_median"]
        + got["attached_unknown_median"]
    )
    np.testing.assert_array_equal(got["total_cameras"], expected)


def test_sum_of_medians_differs_from_median_of_sums() -> None:
    # Decoder 1: 1 street 0 building; decoder 2: 0 / 1; decoder 3: 0 / 0 (a miss).
    sub, inter, pans = _frames(
        [[[1, 1, 0, 0, 0, 0, 1], [1, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]]
    )
    got = add_totals(aggregate_submissions(sub, inter, pans))
    assert got["n_cameras_median"].iloc[0] == 1  # median of the decoders' totals
    assert got["total_cameras"].iloc[0] == 0  # sum of per-category medians: conservative


def test_agreement_class() -> None:
    v = np.array([[1, 1, 1], [2, 1, 2], [0, 1, 2], [3, 3, 0]])
    assert list(agreement_class(v)) == ["Unanimous", "2 vs 1", "All disagree", "2 vs 1"]


def test_random_pick_is_uniform() -> None:
    # One panorama, four submissions: each must be left out with probability 1/4. The medians
    # of n_cameras (0,1,2,3) and type_dome (0,2,1,3) together tell which one was left out.
    rows = [[i, 0, 0, 0, d, 0, 0] for i, d in zip(range(4), (0, 2, 1, 3), strict=True)]
    sub, inter, pans = _frames([rows])
    which = {(2, 2): 0, (2, 1): 1, (1, 2): 2, (1, 1): 3}
    left_out = np.zeros(4)
    n_seeds = 400
    for seed in range(n_seeds):
        got = aggregate_submissions(sub, inter, pans, seed=seed)
        key = (int(got["n_cameras_median"].iloc[0]), int(got["type_dome_median"].iloc[0]))
        left_out[which[key]] += 1
    # Binomial(400, 1/4): sd ~ 8.7; allow 4 sd.
    assert np.all(np.abs(left_out - n_seeds / 4) < 35), left_out
    # "first" always keeps the first three rows in file order.
    got = aggregate_submissions(sub, inter, pans, pick="first")
    assert (got["n_cameras_median"].iloc[0], got["type_dome_median"].iloc[0]) == (1, 1)


def test_duplicated_submissions_counted_not_silently_dropped() -> None:
    sub, inter, pans = _frames([[[1] * 7, [1] * 7, [0] * 7]])
    dup = pd.concat([sub, sub.iloc[[0]]], ignore_index=True)  # same SubmissionId twice
    again = sub.iloc[[1]].assign(SubmissionId="S-new")  # same decoder, same intersection
    ledger = Ledger()
    got = aggregate_submissions(
        pd.concat([dup, again], ignore_index=True), inter, pans, ledger=ledger
    )
    reasons = {e.reason: e.count for e in ledger}
    assert reasons["duplicated SubmissionId (first row kept)"] == 1
    assert reasons["decoder submitted the same intersection twice (first kept)"] == 1
    assert got["n_cameras_median"].iloc[0] == 1


def test_intersections_sharing_a_panorama_are_merged() -> None:
    sub, inter, pans = _frames([[[2] * 7, [2] * 7], [[1] * 7, [3] * 7]])
    inter.loc[1, "PanoramaId"] = "P000"  # the second intersection shows the same panorama
    sub.loc[2:, "DecoderId"] = ["D2", "D3"]  # seen there by two other volunteers
    got = aggregate_submissions(sub, inter, pans, pick="first")
    assert list(got["PanoramaId"]) == ["P000"]
    assert got["n_submissions"].iloc[0] == 4
    assert got["n_cameras_median"].iloc[0] == 2


def test_unknown_intersection_and_missing_coordinates_counted() -> None:
    sub, inter, pans = _frames([[[1] * 7] * 3, [[0] * 7] * 3])
    sub.loc[0, "IntersectionId"] = "nowhere"
    pans = pans.iloc[[0]]  # P001 has no coordinates
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, ledger=ledger)
    reasons = {e.reason: e.count for e in ledger}
    assert reasons["IntersectionId not in intersections.csv"] == 1
    assert reasons["panorama seen by fewer than 3 decoders"] == 1
    assert reasons["panorama without coordinates in panorama_url.csv"] == 1
    assert len(got) == 0


def test_panorama_in_no_borough_is_counted() -> None:
    sub, inter, pans = _frames([[[1] * 7] * 3, [[0] * 7] * 3])
    pans.loc[1, ["GoogleLat", "GoogleLong"]] = [10.0, 10.0]  # far from every borough
    boroughs = gpd.GeoDataFrame(
        {"BoroName": ["Test"]}, geometry=[shapely.box(-74.0, 40.5, -73.8, 40.7)], crs=4326
    )
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, boroughs=boroughs, ledger=ledger)
    # Kept (Amnesty kept them in the citywide totals), with no borough, and counted.
    assert list(got["PanoramaId"]) == ["P000", "P001"]
    assert got["BoroName"].iloc[0] == "Test" and pd.isna(got["BoroName"].iloc[1])
    assert ledger.total() == 0
    assert {e.reason: e.count for e in ledger.flagged} == {"panorama(s) in no borough polygon": 1}
    assert any(
        "1 panorama(s) in no borough polygon" in n and "(no borough)" in n for n in ledger.notes
    )
    t = summary_tables(add_totals(got))["intersections"]
    assert t.loc["(no borough)", "panoramas"] == 1 and t.loc["Total", "panoramas"] == 2


def test_panorama_in_two_borough_polygons_is_counted_once() -> None:
    gdf = gpd.GeoDataFrame(
        {"attached_street_median": [1, 2]},
        geometry=gpd.points_from_xy([0.5, 1.5], [0.5, 0.5]),
        crs=32618,
    )
    # The polygons overlap on [1, 1.2]; the second point lies in both.
    boroughs = gpd.GeoDataFrame(
        {"BoroName": ["A", "B"]},
        geometry=[shapely.box(0, 0, 1.6, 1), shapely.box(1.0, 0, 3, 1)],
        crs=32618,
    )
    ledger = Ledger()
    got = assign_boroughs(gdf, boroughs, ledger=ledger, stage="assign borough")
    assert list(got["BoroName"]) == ["A", "A"]
    flagged = {e.reason: e.count for e in ledger.flagged}
    assert flagged == {"panorama(s) in two borough polygons (shared border or overlap)": 1}
    assert ledger.total() == 0


def test_one_decoder_counts_once_per_panorama() -> None:
    # Two intersections share panorama P000; volunteer D0 decoded both and saw 5 cameras each
    # time, D1 and D2 saw none. The median of 3 distinct volunteers is 0; counting D0 twice
    # would make it 5.
    sub, inter, pans = _frames([[[5] * 7, [0] * 7], [[5] * 7, [0] * 7]])
    inter.loc[1, "PanoramaId"] = "P000"
    sub["DecoderId"] = ["D0", "D1", "D0", "D2"]
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, pick="first", ledger=ledger)
    assert got["n_cameras_median"].tolist() == [0]
    assert got["n_submissions"].tolist() == [3]
    reasons = {e.reason: e.count for e in ledger}
    key = "decoder submitted the same panorama twice, via two intersections sharing it (first kept)"
    assert reasons[key] == 1
    # The first of the two looks is kept (file order), also with a random pick.
    sub.loc[0, ["SubmissionId"]] = "S-first"
    got = aggregate_submissions(sub, inter, pans, seed=3)
    assert got["n_cameras_median"].tolist() == [0]


def test_no_submissions_gives_no_panoramas() -> None:
    sub, inter, pans = _frames([[]])
    ledger = Ledger()
    got = aggregate_submissions(sub.iloc[:0], inter, pans, ledger=ledger)
    assert len(got) == 0
    assert {e.reason: e.count for e in ledger}["panorama seen by fewer than 3 decoders"] == 1


def test_summary_tables_keep_panoramas_without_borough() -> None:
    gdf = gpd.GeoDataFrame(
        {
            "BoroName": ["B", "A", None, "  "],
            "attached_street_median": [1, 0, 2, 1],
            "attached_building_median": [0, 1, 0, 3],
        },
        geometry=gpd.points_from_xy(np.zeros(4), np.zeros(4)),
        crs=4326,
    )
    ledger = Ledger()
    t = summary_tables(add_totals(gdf), ledger=ledger)
    att = t["cameras_by_attachment"]
    assert list(att.index) == ["A", "B", "(no borough)", "Total"]
    assert att.loc["(no borough)", "total"] == 6
    # The Total row equals the headline: every panorama, with or without a borough.
    assert att.loc["Total", "total"] == add_totals(gdf)["total_cameras"].sum() == 8
    assert t["intersections"].loc["Total", "panoramas"] == 4
    assert any("2 panorama(s) have no BoroName" in n for n in ledger.notes)
    # A file without any borough column: one row.
    t2 = summary_tables(add_totals(gdf.drop(columns="BoroName")))
    assert list(t2["intersections"].index) == ["(no borough)", "Total"]


@settings(max_examples=40, deadline=None)
@given(
    counts=st.lists(
        st.lists(st.lists(st.integers(0, 5), min_size=7, max_size=7), min_size=3, max_size=3),
        min_size=1,
        max_size=6,
    ),
    perm_seed=st.integers(0, 10_000),
    pick=st.sampled_from(["first", "random"]),
)
def test_medians_of_three_are_order_free(counts, perm_seed, pick) -> None:  # type: ignore[no-untyped-def]
    # With exactly 3 submissions per panorama every pick keeps all 3: shuffling the rows can
    # change nothing, and each median lies between the smallest and largest count.
    sub, inter, pans = _frames(counts)
    a = aggregate_submissions(sub, inter, pans, pick=pick)
    shuffled = sub.sample(frac=1.0, random_state=perm_seed).reset_index(drop=True)
    b = aggregate_submissions(shuffled, inter, pans, pick=pick)
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
    for p, subs in enumerate(counts):
        for j, c in enumerate(CATS):
            assert a.loc[p, f"{c}_median"] == sorted(s[j] for s in subs)[1]


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["A", "B", None]),
            st.integers(0, 9),
            st.integers(0, 9),
            st.integers(0, 3),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_summary_total_is_the_sum_of_all_panoramas(rows) -> None:  # type: ignore[no-untyped-def]
    boro, street, building, unknown = zip(*rows, strict=True)
    gdf = add_totals(
        gpd.GeoDataFrame(
            {
                "BoroName": list(boro),
                "attached_street_median": list(street),
                "attached_building_median": list(building),
                "attached_unknown_median": list(unknown),
            },
            geometry=gpd.points_from_xy(np.zeros(len(rows)), np.zeros(len(rows))),
            crs=4326,
        )
    )
    t = summary_tables(gdf)
    att = t["cameras_by_attachment"]
    assert att.loc["Total", "total"] == sum(street) + sum(building) + sum(unknown)
    assert att.drop(index="Total")["total"].sum() == att.loc["Total", "total"]
    assert t["intersections"].loc["Total", "panoramas"] == len(rows)


def test_summary_tables_brooklyn(nyc_paths: dict[str, Path]) -> None:
    gdf = add_totals(decode.intersections_from_csv(nyc_paths["brooklyn"]))
    t = summary_tables(gdf)
    att = t["cameras_by_attachment"]
    assert att.loc[
        "Brooklyn", ["attached_street", "attached_building", "attached_unknown"]
    ].tolist() == [
        869,
        8_316,
        31,
    ]
    assert att.loc["Total", "total"] == 9_216
    inter = t["intersections"]
    assert inter.loc["Brooklyn", "panoramas"] == 10_377
    assert inter.loc["Brooklyn", "with_camera"] == 4_662
    cpi = t["cameras_per_intersection"]
    assert cpi.loc["Brooklyn", "cameras_per_intersection"] == pytest.approx(9_216 / 10_377)
    assert cpi.loc["Brooklyn", "public_per_intersection"] == pytest.approx(869 / 10_377)
    types = t["pole_camera_types"]
    assert types.loc["Brooklyn", "type_dome"] == 595 and types.loc["Brooklyn", "type_bullet"] == 111


def test_pooled_total_is_not_the_sum_of_ratios() -> None:
    gdf = gpd.GeoDataFrame(
        {
            "BoroName": ["A", "A", "B", "B", "B", "B"],
            "attached_street_median": [2, 0, 1, 0, 0, 0],
            "attached_building_median": [0, 0, 0, 0, 0, 3],
        },
        geometry=gpd.points_from_xy(np.zeros(6), np.zeros(6)),
        crs=4326,
    )
    t = summary_tables(add_totals(gdf))["cameras_per_intersection"]
    assert t.loc["A", "cameras_per_intersection"] == pytest.approx(1.0)
    assert t.loc["B", "cameras_per_intersection"] == pytest.approx(1.0)
    assert t.loc["Total", "cameras_per_intersection"] == pytest.approx(6 / 6)
    assert t.loc["Total", "public_per_intersection"] == pytest.approx(3 / 6)


@pytest.mark.parametrize("column", ["DecoderId", "SubmissionId"])
def test_empty_ids_aggregate_and_are_not_one_decoder(column: str) -> None:
    # Empty ids (read as missing) are hashed for the random pick, and two submissions without
    # a DecoderId on one panorama are two looks, not one decoder's repeat.
    sub, inter, pans = _frames([[[1] * 7, [2] * 7, [3] * 7]])
    sub[column] = sub[column].astype(object)
    sub.loc[[0, 1], column] = np.nan
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, seed=1, ledger=ledger)
    assert got["n_cameras_median"].tolist() == [2]
    assert got["n_submissions"].tolist() == [3]
    assert ledger.total() == 0


def test_all_answers_mode_values() -> None:
    # P000: 2 answers (adaptive stop), P001: 3, P002: 4, P003: 5 (all disagree: extended),
    # P004: 1 answer, P005: none. Hand-computed medians and agreement classes.
    n = [[0, 0], [1, 1, 2], [1, 2, 2, 4], [0, 1, 2, 3, 4], [3], []]
    counts = [[[v] * 7 for v in subs] for subs in n]
    sub, inter, pans = _frames(counts)
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, decoders="all", ledger=ledger)
    assert got["PanoramaId"].tolist() == ["P000", "P001", "P002", "P003", "P004"]
    assert got["n_submissions"].tolist() == [2, 3, 4, 5, 1]
    assert got["n_cameras_median"].tolist() == [0.0, 1.0, 2.0, 2.0, 3.0]
    assert got["n_cameras_agreement"].tolist() == [
        "Unanimous",
        "2 vs 1",
        "2 vs 1",
        "All disagree",
        "Unanimous",
    ]
    assert {e.reason: e.count for e in ledger}["panorama with no decoded submission"] == 1
    # An even number of answers that split: the mean of the two middle values.
    got = aggregate_submissions(*_frames([[[1] * 7, [2] * 7]]), decoders="all")
    assert got["n_cameras_median"].tolist() == [1.5]
    assert got["n_cameras_agreement"].tolist() == ["All disagree"]


def test_all_answers_mode_counts_each_decoder_once_and_keeps_every_other() -> None:
    # P000 is shown by two intersections; D0 answers both (5 and 5), D1..D3 answer 0, 1, 1.
    sub, inter, pans = _frames([[[5] * 7, [0] * 7, [1] * 7], [[5] * 7, [1] * 7]])
    inter.loc[1, "PanoramaId"] = "P000"
    sub["DecoderId"] = ["D0", "D1", "D2", "D0", "D3"]
    ledger = Ledger()
    got = aggregate_submissions(sub, inter, pans, decoders="all", ledger=ledger)
    # Answers kept: 5 (D0 once), 0, 1, 1 -> median of 4 = (1 + 1) / 2.
    assert got["n_submissions"].tolist() == [4]
    assert got["n_cameras_median"].tolist() == [1]
    assert got["n_cameras_agreement"].tolist() == ["2 vs 1"]
    reasons = {e.reason: e.count for e in ledger}
    assert "submission beyond the 3 kept per panorama" not in reasons
    assert sum(c for r, c in reasons.items() if "twice" in r) == 1


@settings(max_examples=40, deadline=None)
@given(counts=counts_strategy, seed=st.integers(0, 50))
def test_all_answers_mode_equals_default_when_every_panorama_has_three(  # type: ignore[no-untyped-def]
    counts, seed
) -> None:
    threes = [subs for subs in counts if len(subs) == 3] or [[[0] * 7] * 3]
    sub, inter, pans = _frames(threes)
    fixed = aggregate_submissions(sub, inter, pans, seed=seed)
    every = aggregate_submissions(sub, inter, pans, decoders="all")
    pd.testing.assert_frame_equal(fixed, every)


def test_all_answers_mode_per_category_and_bad_value() -> None:
    sub, inter, pans = _frames([[[0, 1, 2, 0, 0, 0, 1], [1, 1, 0, 0, 0, 1, 1]]])
    got = aggregate_submissions(sub, inter, pans, decoders="all")
    assert [got[f"{c}_median"].iloc[0] for c in CATS] == [0.5, 1, 1, 0, 0, 0.5, 1]
    with pytest.raises(ValueError, match="'all'"):
        aggregate_submissions(sub, inter, pans, decoders="every")  # type: ignore[arg-type]
