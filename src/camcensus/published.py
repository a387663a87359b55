"""Numbers Amnesty International published for Decode Surveillance NYC, to compare against.

Source: ``aggregate_counts_over_intersections.ipynb`` in amnesty-crisis-evidence-lab/
decode-surveillance-nyc (the "Finding summaries" of the methodology note), and the
``camera_count`` table of its ``analysis/prepdata.R``; the printed models of its methodology
note (AMR 51/5205/2022, section 2, pages 33-49), with page references.
"""

from __future__ import annotations

__all__ = [
    "AMNESTY_NYC",
    "CAMERA_COUNT_TABLE_SUMS",
    "FIVE_CRIME_SHARE_2019",
    "INNOCENCE_BY_RACE_2019",
    "PLACEMENT_TEXT_P_VALUES",
    "PLACEMENT_THRESHOLD_CODE",
    "PLACEMENT_THRESHOLD_TEXT",
    "PRINTED_MODELS",
]

BOROUGHS = ("Bronx", "Brooklyn", "Manhattan", "Queens", "Staten Island")

#: Per-borough figures of the published census (medians of 3 decoders per panorama).
AMNESTY_NYC: dict[str, dict[str, float]] = {
    "panoramas": {
        "Bronx": 6257,
        "Brooklyn": 10384,
        "Manhattan": 3934,
        "Queens": 16344,
        "Staten Island": 6474,
    },
    "attached_street": {
        "Bronx": 456,
        "Brooklyn": 871,
        "Manhattan": 724,
        "Queens": 1088,
        "Staten Island": 178,
    },
    "attached_building": {
        "Bronx": 3275,
        "Brooklyn": 8330,
        "Manhattan": 3213,
        "Queens": 6459,
        "Staten Island": 852,
    },
    "attached_unknown": {
        "Bronx": 6,
        "Brooklyn": 31,
        "Manhattan": 11,
        "Queens": 33,
        "Staten Island": 5,
    },
    "total": {
        "Bronx": 3737,
        "Brooklyn": 9232,
        "Manhattan": 3948,
        "Queens": 7580,
        "Staten Island": 1035,
    },
}

#: The published "Total" of cameras per intersection: the *sum* of the five boroughs' ratios.
PUBLISHED_TOTAL_CAMERAS_PER_INTERSECTION = 3.1135188970648806
#: The same for public cameras per intersection.
PUBLISHED_TOTAL_PUBLIC_PER_INTERSECTION = 0.43485739004243457

#: Sums of the ``cameras`` column of Amnesty's per-tract ``camera_count`` table (prepdata.R);
#: 180 more than the 3,317 public cameras, because panorama_url.csv, merged on PanoramaId,
#: lists some panoramas more than once.
CAMERA_COUNT_TABLE_SUMS: dict[str, float] = {
    "Bronx": 491,
    "Brooklyn": 892,
    "Manhattan": 756,
    "Queens": 1175,
    "Staten Island": 183,
    "Total": 3497,
}


# --- Every model Amnesty's methodology note printed (AMR 51/5205/2022, pages 36-49) ---
#
# Numbers are kept as the printed strings so "reproduced to every printed digit" can be checked
# (see camcensus.stats.published_models). Coefficients: R term -> (Estimate, Std. Error,
# z or t value, Pr(>|z|) or Pr(>|t|)). All models use 2019 data.

#: The threshold of the placement models: the note's text (p.39) says 0.18, its code 0.2.
PLACEMENT_THRESHOLD_TEXT = 0.18
PLACEMENT_THRESHOLD_CODE = 0.2

#: p-values the note's text gives for the placement model (p.38), by borough.
PLACEMENT_TEXT_P_VALUES: dict[str, str] = {
    "Bronx": "0.053",
    "Brooklyn": "0.027",
    "Queens": "0.015",
    "Staten Island": "0.082",
    "Manhattan": "<0.001",
}

#: Share of 2019 stops for CPW, ASSAULT, ROBBERY, PETIT LARCENY, GRAND LARCENY (p.46).
FIVE_CRIME_SHARE_2019 = "0.7082993"

#: 2019 stops, innocent stops and percent innocent per suspect race (p.47).
INNOCENCE_BY_RACE_2019: dict[str, tuple[str, str, str]] = {
    "BLACK": ("7981", "5131", "64.29019"),
    "WHITE HISPANIC": ("2742", "1728", "63.01969"),
    "WHITE": ("1215", "755", "62.13992"),
    "BLACK HISPANIC": ("1127", "693", "61.49068"),
    "ASIAN / PACIFIC ISLANDER": ("301", "214", "71.09635"),
    "(null)": ("85", "59", "69.41176"),
    "AMERICAN INDIAN/ALASKAN N": ("8", "5", "62.50000"),
}

_PLACEMENT_CALL = (
    "glm(surv > SURV_THRESHOLD ~ 0 + borough + borough:nonwhite_fraction, family = 'binomial', "
    "data = df, subset = popn > 250); surv = eff_cameras / popn * 1000; SURV_THRESHOLD = 0.2"
)

#: Every printed model: name -> page, R call, family, our model (name, group), coefficients
#: and what ``summary`` printed below them (as strings), the year of the data.
PRINTED_MODELS: dict[str, dict[str, object]] = {
    "fit1": {
        "page": "36-37",
        "call": "glm(numstops ~ surv + nonwhite_fraction + I(surv^2) + I(popn.black/popn), "
        "offset = log(popn), family = 'poisson', data = df[YEAR2 == 2019 & borough == 'Queens'], "
        "subset = popn > 250); surv = eff_cameras_within_200m / popn * 1000",
        "family": "poisson",
        "ours": "stops_sanity_queens_2019",
        "year": 2019,
        "coefficients": {
            "(Intercept)": ("-7.538773", "0.065070", "-115.856", "< 2e-16"),
            "surv": ("0.204248", "0.035519", "5.750", "8.90e-09"),
            "nonwhite_fraction": ("0.832449", "0.116499", "7.146", "8.96e-13"),
            "I(surv^2)": ("-0.004956", "0.003158", "-1.569", "0.117"),
            "I(popn.black/popn)": ("0.087239", "0.099152", "0.880", "0.379"),
        },
        "null_deviance": "2267.1",
        "df_null": "640",
        "deviance": "2037.0",
        "df_resid": "636",
        "aic": "3614.9",
    },
    "lm_nwfC_surv": {
        "page": "37",
        "call": "lm(stoprate ~ nwfC * surv, weights = popn, data = df, subset = popn > 250 & "
        "YEAR2 == 2019 & borough != 'Manhattan'); nwfC = cut(nonwhite_fraction, breaks = 2) on "
        "the whole table; stoprate = numstops / popn * 1000",
        "family": "lm",
        "ours": "stops_interaction_lm",
        "year": 2019,
        "coefficients": {
            "(Intercept)": ("0.52090", "0.07330", "7.106", "1.71e-12"),
            "nwfC(0.5,1]": ("0.83911", "0.09913", "8.465", "< 2e-16"),
            "surv": ("0.52639", "0.07327", "7.185", "9.78e-13"),
            "nwfC(0.5,1]:surv": ("0.04881", "0.09851", "0.495", "0.62"),
        },
        "sigma": "87.59",
        "df_resid": "1823",
        "r_squared": "0.1434",
        "adj_r_squared": "0.142",
        "f_statistic": "101.7",
    },
    "fit": {
        "page": "39",
        "call": _PLACEMENT_CALL,
        "family": "binomial",
        "ours": "placement_logit",
        "year": 2019,
        "coefficients": {
            "boroughBronx": ("-1.6062", "0.5452", "-2.946", "0.00321"),
            "boroughBrooklyn": ("-0.5881", "0.1384", "-4.249", "2.15e-05"),
            "boroughManhattan": ("0.3219", "0.2016", "1.597", "0.11025"),
            "boroughQueens": ("-0.1307", "0.1747", "-0.748", "0.45419"),
            "boroughStaten Island": ("-0.3403", "0.3307", "-1.029", "0.30348"),
            "boroughBronx:nonwhite_fraction": ("1.2966", "0.6702", "1.935", "0.05301"),
            "boroughBrooklyn:nonwhite_fraction": ("0.5029", "0.2268", "2.217", "0.02662"),
            "boroughManhattan:nonwhite_fraction": ("-1.7864", "0.4529", "-3.944", "8.00e-05"),
            "boroughQueens:nonwhite_fraction": ("0.6958", "0.2873", "2.422", "0.01545"),
            "boroughStaten Island:nonwhite_fraction": ("1.6749", "0.9642", "1.737", "0.08236"),
        },
        "null_deviance": "2914.0",
        "df_null": "2102",
        "deviance": "2814.2",
        "df_resid": "2092",
        "aic": "2834.2",
    },
    "fit2": {
        "page": "40",
        "call": "update(fit, . ~ . + med.income)",
        "family": "binomial",
        "ours": "placement_logit_income",
        "year": 2019,
        "coefficients": {
            "boroughBronx": ("-1.504e+00", "5.929e-01", "-2.537", "0.011177"),
            "boroughBrooklyn": ("-4.437e-01", "2.076e-01", "-2.137", "0.032564"),
            "boroughManhattan": ("5.941e-01", "3.496e-01", "1.699", "0.089305"),
            "boroughQueens": ("1.157e-02", "2.299e-01", "0.050", "0.959853"),
            "boroughStaten Island": ("-1.356e-01", "3.857e-01", "-0.352", "0.725108"),
            "med.income": ("-1.746e-06", "1.810e-06", "-0.965", "0.334749"),
            "boroughBronx:nonwhite_fraction": ("1.270e+00", "7.014e-01", "1.811", "0.070181"),
            "boroughBrooklyn:nonwhite_fraction": ("4.358e-01", "2.363e-01", "1.845", "0.065108"),
            "boroughManhattan:nonwhite_fraction": (
                "-2.038e+00",
                "5.357e-01",
                "-3.804",
                "0.000142",
            ),
            "boroughQueens:nonwhite_fraction": ("6.659e-01", "2.885e-01", "2.308", "0.020982"),
            "boroughStaten Island:nonwhite_fraction": (
                "1.412e+00",
                "9.828e-01",
                "1.437",
                "0.150747",
            ),
        },
        "null_deviance": "2898.7",
        "df_null": "2091",
        "deviance": "2799.2",
        "df_resid": "2080",
        "aic": "2821.2",
        "n_deleted": "11",
    },
    "fit3": {
        "page": "40-41",
        "call": "update(fit, . ~ . + I((popn.black - popn.hispanic)/popn))",
        "family": "binomial",
        "ours": "placement_logit_black_hispanic",
        "year": 2019,
        "coefficients": {
            "boroughBronx": ("-1.57222", "0.54729", "-2.873", "0.00407"),
            "boroughBrooklyn": ("-0.56567", "0.14415", "-3.924", "8.70e-05"),
            "boroughManhattan": ("0.32716", "0.20178", "1.621", "0.10493"),
            "boroughQueens": ("-0.09321", "0.18748", "-0.497", "0.61905"),
            "boroughStaten Island": ("-0.33022", "0.33120", "-0.997", "0.31874"),
            "I((popn.black - popn.hispanic)/popn)": ("0.08104", "0.14687", "0.552", "0.58110"),
            "boroughBronx:nonwhite_fraction": ("1.27483", "0.66973", "1.903", "0.05698"),
            "boroughBrooklyn:nonwhite_fraction": ("0.43643", "0.25669", "1.700", "0.08909"),
            "boroughManhattan:nonwhite_fraction": ("-1.78229", "0.45263", "-3.938", "8.23e-05"),
            "boroughQueens:nonwhite_fraction": ("0.63678", "0.30684", "2.075", "0.03796"),
            "boroughStaten Island:nonwhite_fraction": ("1.66227", "0.96501", "1.723", "0.08497"),
        },
        "null_deviance": "2914.0",
        "df_null": "2102",
        "deviance": "2813.9",
        "df_resid": "2091",
        "aic": "2835.9",
    },
    "innocence_lpm": {
        "page": "47",
        "call": "glm(innocent ~ 0 + bwh + bwh:surv, data = df, subset = popn > 250 & !is.na(bwh) "
        "& YEAR2 == 2019); surv = pmin(eff_cameras / popn * 1000, 3)",
        "family": "gaussian",
        "ours": "innocence_lpm",
        "year": 2019,
        "coefficients": {
            "bwhBLACK": ("0.646634", "0.006973", "92.736", "<2e-16"),
            "bwhHISPANIC": ("0.631055", "0.009780", "64.524", "<2e-16"),
            "bwhWHITE": ("0.609913", "0.017577", "34.700", "<2e-16"),
            "bwhBLACK:surv": ("-0.009917", "0.015486", "-0.640", "0.522"),
            "bwhHISPANIC:surv": ("-0.020469", "0.022521", "-0.909", "0.363"),
            "bwhWHITE:surv": ("0.022974", "0.034137", "0.673", "0.501"),
        },
        "dispersion": "0.2314808",
        "null_deviance": "8177.0",
        "df_null": "12857",
        "deviance": "2974.8",
        "df_resid": "12851",
        "aic": "17681",
    },
    "innocence_lpm_assault_robbery": {
        "page": "47-48",
        "call": "update(fit, subset = popn > 250 & !is.na(bwh) & YEAR2 == 2019 & "
        "SUSPECTED_CRIME_DESCRIPTION %in% c('ASSAULT', 'ROBBERY'))",
        "family": "gaussian",
        "ours": "innocence_lpm_assault_robbery",
        "year": 2019,
        "coefficients": {
            "bwhBLACK": ("0.64603", "0.01279", "50.499", "<2e-16"),
            "bwhHISPANIC": ("0.59724", "0.01856", "32.176", "<2e-16"),
            "bwhWHITE": ("0.51712", "0.04018", "12.870", "<2e-16"),
            "bwhBLACK:surv": ("-0.05235", "0.02681", "-1.952", "0.051"),
            "bwhHISPANIC:surv": ("-0.06248", "0.04191", "-1.491", "0.136"),
            "bwhWHITE:surv": ("0.11626", "0.07280", "1.597", "0.110"),
        },
        "dispersion": "0.2367801",
        "null_deviance": "2252.00",
        "df_null": "3685",
        "deviance": "871.11",
        "df_resid": "3679",
        "aic": "5156.9",
    },
    "stopped_while_black": {
        "page": "48-49",
        "call": "lm(numstops.black/numstops ~ 1 + I(popn.black/popn) * I(surv > SURV_THRESHOLD), "
        "data = df, subset = popn > 250 & borough != 'Manhattan'); surv = eff_cameras / popn * "
        "1000",
        "family": "lm",
        "ours": "stopped_while_black_lm",
        "year": 2019,
        "coefficients": {
            "(Intercept)": ("0.29518", "0.01482", "19.913", "<2e-16"),
            "I(popn.black/popn)": ("0.76378", "0.03564", "21.433", "<2e-16"),
            "I(surv > SURV_THRESHOLD)TRUE": ("0.01589", "0.02159", "0.736", "0.462"),
            "I(popn.black/popn):I(surv > SURV_THRESHOLD)TRUE": (
                "-0.01331",
                "0.05049",
                "-0.264",
                "0.792",
            ),
        },
        "sigma": "0.3027",
        "df_resid": "1512",
        "n_deleted": "311",
        "r_squared": "0.3739",
        "adj_r_squared": "0.3727",
        "f_statistic": "301",
    },
}
