"""Parity with R itself: the same tables through R's glm / lm / confint (MASS) / summary.

R is part of the test setup (``make test`` installs r-base-core and r-cran-mass); without it
these tests fail, they never skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from camcensus.io import census as io_census
from camcensus.io.stops import stop_records_from_file
from camcensus.stats import models
from camcensus.stats import stops as st
from camcensus.stats._result import ModelResult
from camcensus.stats.published_models import r_term

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

R_SCRIPT = r"""
suppressMessages(library(MASS))
dir <- commandArgs(TRUE)[1]
t <- read.csv(file.path(dir, "tracts.csv"), colClasses = c(GEOID = "character"))
rec <- read.csv(file.path(dir, "records.csv"), colClasses = c(GEOID = "character"))
coefs <- list(); fits <- list()
grab <- function(name, fit) {
  s <- summary(fit); cf <- coef(s)
  ci <- if (inherits(fit, "glm")) suppressMessages(confint(fit)) else confint(fit)
  ci <- matrix(ci, ncol = 2)
  coefs[[name]] <<- data.frame(model = name, term = rownames(cf), estimate = cf[, 1],
                               se = cf[, 2], stat = cf[, 3], p = cf[, 4],
                               lo = ci[, 1], hi = ci[, 2])
  isglm <- inherits(fit, "glm")
  fits[[name]] <<- data.frame(
    model = name, deviance = deviance(fit),
    null_deviance = if (isglm) fit$null.deviance else NA,
    df_resid = df.residual(fit),
    aic = if (isglm) fit$aic else AIC(fit),
    dispersion = if (isglm) s$dispersion else s$sigma^2,
    r_squared = if (isglm) NA else s$r.squared)
}
t$surv <- t$eff_cameras_within_200m / t$popn * 1000
t$surv_place <- t$eff_cameras / t$popn * 1000
# Placement (p.39): binomial.
grab("placement", glm(surv_place > 0.2 ~ 0 + borough + borough:nonwhite_fraction,
                      data = t, subset = popn > 250, family = "binomial"))
# Baseline stops, Queens 2019 (p.36): Poisson with offset, and quasi-Poisson.
q <- t[t$borough == "Queens" & t$popn > 250, ]
grab("baseline", glm(stops_2019 ~ surv + nonwhite_fraction, offset = log(popn),
                     data = q, family = "poisson"))
grab("quasi", glm(stops_2019 ~ surv + nonwhite_fraction, offset = log(popn),
                  data = q, family = "quasipoisson"))
# Bins (p.33): Poisson without intercept, offset log(popn/1000).
t$survF <- cut(t$surv, c(0, .25, .5, .75, 1, 1.25, 1.5, 2, 3, Inf), include.lowest = TRUE)
grab("bins", glm(stops_2019 ~ 0 + survF, offset = log(popn / 1000),
                 data = t[t$popn > 250, ], family = "poisson"))
# Interaction lm (p.37): nwfC cut over the whole table, then the subset.
t$nwfC <- cut(t$nonwhite_fraction, breaks = 2)
t$stoprate <- t$stops_2019 / t$popn * 1000
grab("lm", lm(stoprate ~ nwfC * surv, weights = popn, data = t,
              subset = popn > 250 & borough != "Manhattan"))
# Record level (p.47-49), Amnesty's definitions from the raw records.
df <- merge(rec, t[, c("GEOID", "popn", "popn_black", "eff_cameras", "borough")],
            by = "GEOID", all.x = TRUE)
df$innocent <- df$SUSPECT_ARRESTED_FLAG == "N" & df$SUMMONS_ISSUED_FLAG == "N" &
  df$WEAPON_FOUND_FLAG == "N"
df$surv <- pmin(df$eff_cameras / df$popn * 1000, 3)
df$bwh <- NA_character_
df$bwh[df$SUSPECT_RACE_DESCRIPTION == "BLACK"] <- "BLACK"
df$bwh[df$SUSPECT_RACE_DESCRIPTION == "WHITE"] <- "WHITE"
df$bwh[df$SUSPECT_RACE_DESCRIPTION %in% c("BLACK HISPANIC", "WHITE HISPANIC")] <- "HISPANIC"
lpm <- glm(innocent ~ 0 + bwh + bwh:surv, data = df, subset = popn > 250 & !is.na(bwh))
grab("lpm", lpm)
grab("lpm_ar", update(lpm, subset = popn > 250 & !is.na(bwh) &
                        SUSPECTED_CRIME_DESCRIPTION %in% c("ASSAULT", "ROBBERY")))
per <- aggregate(cbind(numstops = 1, numstops.black = rec$SUSPECT_RACE_DESCRIPTION == "BLACK")
                 ~ GEOID, data = rec, FUN = sum)
b <- merge(per, t, by = "GEOID", all = TRUE)
b$surv <- b$eff_cameras / b$popn * 1000
grab("black", lm(numstops.black / numstops ~ 1 + I(popn_black / popn) * I(surv > 0.2),
                 data = b, subset = popn > 250 & borough != "Manhattan"))
write.csv(do.call(rbind, coefs), file.path(dir, "coefs.csv"), row.names = FALSE)
write.csv(do.call(rbind, fits), file.path(dir, "fits.csv"), row.names = FALSE)
"""

#: R's names of our terms where our model's R formula is written differently.
_R_NAMES = {
    "black": {
        "I(popn.black/popn)": "I(popn_black/popn)",
        "I(surv > SURV_THRESHOLD)TRUE": "I(surv > 0.2)TRUE",
        "I(popn.black/popn):I(surv > SURV_THRESHOLD)TRUE": "I(popn_black/popn):I(surv > 0.2)TRUE",
    },
    "placement": {},
}


def _rscript() -> str:
    path = shutil.which("Rscript")
    if path is None:
        pytest.fail(
            "Rscript is missing: these tests compare the models with R itself. `make test` "
            "installs R with MASS (apt-get install r-base-core r-cran-mass)."
        )
    return path


@pytest.fixture(scope="module")
def tables(nyc_paths: dict[str, Path], shared: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    cov = pd.read_csv(nyc_paths["camera_count"], dtype={"GEOID": str})
    acs = io_census.census_from_csv(nyc_paths["census"])
    full = pd.read_csv(
        shared / "census/acs2019_tract/full_df.csv",
        dtype={"GEOID": str},
        usecols=["GEOID", "borough", "n_2019"],
    )
    t = cov.merge(acs, left_on="GEOID", right_index=True).merge(full, on="GEOID")
    denom = t["popn_black"] + t["popn_hispanic"] + t["popn_white"]
    t["nonwhite_fraction"] = (t["popn_black"] + t["popn_hispanic"]) / denom.where(denom > 0)
    t["stops_2019"] = t["n_2019"].fillna(0.0)
    tracts = io_census.tracts_from_file(nyc_paths["tracts"])
    rec = st.stops_to_tracts(stop_records_from_file(shared / "sqf/sqf-2020.xlsx"), tracts)
    return t, rec


@pytest.fixture(scope="module")
def r_out(
    tables: tuple[pd.DataFrame, pd.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[pd.DataFrame, pd.DataFrame]:
    rscript = _rscript()
    t, rec = tables
    d = tmp_path_factory.mktemp("r")
    t.drop(columns=["n_2019"]).to_csv(d / "tracts.csv", index=False)
    flags = {
        "suspect_arrested_flag": "SUSPECT_ARRESTED_FLAG",
        "summons_issued_flag": "SUMMONS_ISSUED_FLAG",
        "weapon_found_flag": "WEAPON_FOUND_FLAG",
    }
    out = rec[["GEOID", "suspect_race_description", "suspected_crime_description"]].rename(
        columns=str.upper
    )
    for ours, theirs in flags.items():
        out[theirs] = np.where(rec[ours], "Y", "N")
    out.to_csv(d / "records.csv", index=False)
    (d / "script.R").write_text(R_SCRIPT)
    done = subprocess.run(
        [rscript, str(d / "script.R"), str(d)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return pd.read_csv(d / "coefs.csv"), pd.read_csv(d / "fits.csv").set_index("model")


@pytest.fixture(scope="module")
def ours(tables: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, ModelResult]:
    t, rec = tables
    counts = t[["GEOID", "stops_2019"]].rename(columns={"stops_2019": "count"}).assign(year=2019)
    table = models.model_table(t.drop(columns=["stops_2019"]), counts)
    quasi = models.stops_overdispersion_variants(table, years=[2019])
    tr = t.drop(columns=["stops_2019"])
    return {
        "placement": models.placement_logit(table),
        "baseline": models.stops_baseline(table, years=[2019], boroughs=["Queens"])[0],
        "quasi": next(
            m
            for m in quasi
            if m.name == "stops_baseline_quasipoisson" and m.group["borough"] == "Queens"
        ),
        "bins": models.stops_by_surveillance_bins(table),
        "lm": models.stops_interaction_lm(
            table, exclude=("Manhattan",), nonwhite_all=t["nonwhite_fraction"]
        ),
        "lpm": st.innocence_lpm(rec, tr, year=2020),
        "lpm_ar": st.innocence_lpm(rec, tr, year=2020, crimes=("ASSAULT", "ROBBERY")),
        "black": st.stopped_while_black(rec, tr, year=2020, exclude=("Manhattan",)),
    }


def _paired(name: str, m: ModelResult, coefs: pd.DataFrame) -> pd.DataFrame:
    r = coefs.loc[coefs["model"] == name].set_index("term")
    rename = _R_NAMES.get(name, {})
    rows = []
    for c in m.coefficients:
        term = r_term(c.term)
        term = rename.get(term, term).replace("bin[", "survF[")
        term = term.replace("survF[", "survF") if term not in r.index else term
        assert term in r.index, f"{name}: our {c.term!r} ({term!r}) not in R's {list(r.index)}"
        rows.append({"term": term, **c.__dict__, **r.loc[term].add_prefix("r_").to_dict()})
    assert len(rows) == len(r), f"{name}: {len(rows)} terms here, {len(r)} in R"
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "name", ["placement", "baseline", "quasi", "bins", "lm", "lpm", "lpm_ar", "black"]
)
def test_matches_r(name: str, ours: dict[str, ModelResult], r_out) -> None:  # type: ignore[no-untyped-def]
    coefs, fits = r_out
    m = ours[name]
    p = _paired(name, m, coefs)
    np.testing.assert_allclose(p["estimate"], p["r_estimate"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(p["std_error"], p["r_se"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(p["p_value"], p["r_p"], rtol=1e-5, atol=1e-12)
    # Profile-likelihood intervals (glm: MASS's confint) or t intervals (lm). MASS
    # interpolates a spline; ours is the exact root: they agree to 1e-4.
    np.testing.assert_allclose(p["ci_low"], p["r_lo"], atol=1e-4)
    np.testing.assert_allclose(p["ci_high"], p["r_hi"], atol=1e-4)
    expected_method = "t" if m.family == "lm" else "profile"
    assert set(p["method"]) == {expected_method}
    f = fits.loc[name]
    assert m.deviance == pytest.approx(f["deviance"], rel=1e-8)
    assert m.extras["df_resid"] == f["df_resid"]
    assert m.extras["dispersion"] == pytest.approx(f["dispersion"], rel=1e-7)
    if np.isfinite(f["null_deviance"]):
        assert m.extras["null_deviance"] == pytest.approx(f["null_deviance"], rel=1e-8)
    if np.isfinite(f["aic"]):
        assert m.aic == pytest.approx(f["aic"], rel=1e-8)
    else:
        assert m.aic is None  # quasi-Poisson: R has no AIC
    if np.isfinite(f["r_squared"]):
        assert m.extras["lm"]["r_squared"] == pytest.approx(f["r_squared"], rel=1e-8)
