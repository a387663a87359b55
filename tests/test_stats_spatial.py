"""Spatial checks: Moran's I against esda, Conley against the sandwich it generalises."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import statsmodels.api as sm

from camcensus.stats import spatial


@pytest.fixture(scope="module")
def grid() -> gpd.GeoDataFrame:
    xs, ys = np.meshgrid(np.arange(15), np.arange(15))
    boxes = shapely.box(
        xs.ravel() * 100, ys.ravel() * 100, xs.ravel() * 100 + 100, ys.ravel() * 100 + 100
    )
    return gpd.GeoDataFrame(
        {"GEOID": [f"{i:04d}" for i in range(len(boxes))]}, geometry=boxes, crs=32618
    )


def test_moran_matches_esda_and_detects_clustering(grid: gpd.GeoDataFrame) -> None:
    import esda

    w, islands = spatial.queen_weights(grid)
    assert islands == 0
    c = grid.geometry.centroid
    smooth = np.sin(c.x / 400) + np.cos(c.y / 500)
    res = spatial.moran_permutation(smooth.to_numpy(), w, permutations=199, seed=1)
    assert res.estimate == pytest.approx(esda.Moran(smooth.to_numpy(), w, permutations=0).I)
    assert res.estimate > 0.5 and res.p_value == pytest.approx(1 / 200)
    again = spatial.moran_permutation(smooth.to_numpy(), w, permutations=199, seed=1)
    assert again == res  # seeded: identical
    rng = np.random.default_rng(0)
    pvals = [
        spatial.moran_permutation(rng.normal(size=len(grid)), w, permutations=99, seed=s).p_value
        for s in range(20)
    ]
    assert np.mean(np.array(pvals) < 0.05) <= 0.2


def test_conley_reduces_to_robust_sandwich_and_grows_with_dependence(
    grid: gpd.GeoDataFrame,
) -> None:
    rng = np.random.default_rng(2)
    n = len(grid)
    x = rng.normal(size=n)
    X = sm.add_constant(x)
    y = rng.poisson(np.exp(0.3 + 0.5 * x)).astype(float)
    fit = sm.GLM(y, X, family=sm.families.Poisson()).fit()
    mu = fit.fittedvalues
    c = grid.geometry.centroid
    xy = np.column_stack([c.x, c.y])
    # A cutoff shorter than any distance between tracts keeps only each tract with itself: HC0.
    tiny = spatial.conley_covariance(X, y - mu, mu, xy, cutoff=1.0)
    hc0 = sm.GLM(y, X, family=sm.families.Poisson()).fit(cov_type="HC0").cov_params()
    np.testing.assert_allclose(tiny, np.asarray(hc0), rtol=1e-6)
    # Spatially clustered residuals: wider errors once neighbours count.
    field = np.sin(c.x / 300).to_numpy()
    y2 = rng.poisson(np.exp(0.3 + 0.5 * x + field)).astype(float)
    fit2 = sm.GLM(y2, X, family=sm.families.Poisson()).fit()
    mu2 = fit2.fittedvalues
    se_iid = np.sqrt(np.diag(spatial.conley_covariance(X, y2 - mu2, mu2, xy, cutoff=1.0)))
    se_sp = np.sqrt(np.diag(spatial.conley_covariance(X, y2 - mu2, mu2, xy, cutoff=600.0)))
    assert se_sp[0] > 1.5 * se_iid[0]


def test_nta_of_tracts(grid: gpd.GeoDataFrame) -> None:
    ntas = gpd.GeoDataFrame(
        {"NTACode": ["W", "E"]},
        geometry=[shapely.box(0, 0, 750, 1500), shapely.box(750, 0, 1500, 1500)],
        crs=32618,
    )
    got = spatial.nta_of_tracts(grid, ntas, "NTACode")
    x = grid.geometry.representative_point().x
    assert (got[x < 750] == "W").all() and (got[x > 750] == "E").all()
