"""US Census sources: tract polygons (cartographic boundary or TIGER/Line files) and ACS tables
(the Census Data API).

Tracts come as one zipped shapefile per state from ``www2.census.gov/geo/tiger``:
``GENZ{year}/shp/cb_{year}_{state}_tract_500k.zip`` (cartographic boundary, clipped to the
shoreline, generalised at 1:500,000) or ``TIGER{year}/TRACT/tl_{year}_{state}_tract.zip``
(TIGER/Line, full resolution). ACS tables come from
``api.census.gov/data/{year}/acs/acs5?get=NAME,...&for=tract:*&in=state:SS county:CCC``, a
JSON array of arrays (a header row, then one row of strings per tract), at most 50 variables a
request. Values the Bureau "jams" (−666666666 and the other annotation codes of
:data:`JAM_VALUES`) become missing and are counted per variable and code.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections import Counter
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from camcensus._errors import Ledger, OptionError
from camcensus.fetch._common import FetchResult, fetcher_for, finish, out_path
from camcensus.fetch._http import InvalidBodyError, base_url, problem
from camcensus.io.formats import write_atomic

if TYPE_CHECKING:
    from camcensus.fetch._http import Fetcher

__all__ = ["JAM_VALUES", "STATES", "fetch_acs", "fetch_tracts", "state_fips"]

#: The Census Bureau's annotation ("jam") values in the ACS API and what each means.
JAM_VALUES: dict[int, str] = {
    -111111111: "not applicable (geography not in this dataset)",
    -222222222: "margin of error could not be computed (too few sample observations)",
    -333333333: "median falls in the lowest or highest interval of an open-ended distribution",
    -444444444: "estimate not applicable or not available",
    -555555555: "estimate controlled: no sampling error, margin of error not applicable",
    -666666666: "estimate could not be computed (too few sample observations)",
    -888888888: "margin of error not applicable (estimate not computed)",
    -999999999: "too few sample observations to compute the estimate or its margin of error",
}

#: FIPS code of each state, DC and Puerto Rico, by USPS code.
STATES: dict[str, str] = {
    "AL": "01", "AK": "02", "AZ": "04", "AR": "05", "CA": "06", "CO": "08", "CT": "09",
    "DE": "10", "DC": "11", "FL": "12", "GA": "13", "HI": "15", "ID": "16", "IL": "17",
    "IN": "18", "IA": "19", "KS": "20", "KY": "21", "LA": "22", "ME": "23", "MD": "24",
    "MA": "25", "MI": "26", "MN": "27", "MS": "28", "MO": "29", "MT": "30", "NE": "31",
    "NV": "32", "NH": "33", "NJ": "34", "NM": "35", "NY": "36", "NC": "37", "ND": "38",
    "OH": "39", "OK": "40", "OR": "41", "PA": "42", "RI": "44", "SC": "45", "SD": "46",
    "TN": "47", "TX": "48", "UT": "49", "VT": "50", "VA": "51", "WA": "53", "WV": "54",
    "WI": "55", "WY": "56", "PR": "72",
}  # fmt: skip

_TERMS = (
    "US Census Bureau data: public domain (17 U.S.C. 105), no licence needed. The Census Data "
    "API asks for a key beyond 500 requests a day per IP and says: 'This product uses the "
    "Census Bureau Data API but is not endorsed or certified by the Census Bureau.'"
)
_MAX_VARIABLES = 49  # plus NAME: the API takes at most 50 a request
_VARIABLE = re.compile(r"^[A-Z]{1,2}\d{2,3}[A-Z0-9]*_\d{3}[A-Z]{0,2}$")
_GROUP = re.compile(r"^group\([A-Z]{1,2}\d{2,3}[A-Z0-9]*\)$")
_NUMERIC = re.compile(r"^[A-Z]{1,2}\d{2,3}[A-Z0-9]*_\d{3}(E|M|PE|PM)$")


def state_fips(state: str | int) -> str:
    """Return the two-digit FIPS code of ``state`` (``"24"``, ``24``, ``"MD"``)."""
    text = str(state).strip().upper()
    if text in STATES:
        return STATES[text]
    if text.isdigit() and text.zfill(2) in STATES.values():
        return text.zfill(2)
    raise OptionError(
        f"state={state!r} is not a state's FIPS code or USPS abbreviation; e.g. 24 or MD "
        "(Maryland), 22 or LA (Louisiana), 36 or NY"
    )


def _county_fips(county: str | int | None, state: str) -> str | None:
    if county is None:
        return None
    text = str(county).strip()
    if text.isdigit() and len(text) == 5 and text[:2] == state:
        text = text[2:]
    if not (text.isdigit() and 1 <= len(text) <= 3):
        raise OptionError(
            f"county={county!r} is not a county FIPS code; give its three digits (e.g. 510 for "
            "Baltimore city, 071 for Orleans Parish) or the five-digit state+county code"
        )
    return text.zfill(3)


def _check_year(year: int, low: int, option: str = "year") -> int:
    high = date.today().year
    if not (isinstance(year, int) and low <= year <= high):
        raise OptionError(f"{option}={year!r} must be a year in {low}..{high}")
    return year


# -- tracts ----------------------------------------------------------------------------------


def tracts_url(state: str, year: int, *, kind: str = "cb", tiger_url: str | None = None) -> str:
    """Return the URL of a state's tract file for ``year`` (``kind`` ``cb`` or ``tiger``)."""
    base = base_url("tiger", tiger_url)
    if kind == "cb":
        return f"{base}/GENZ{year}/shp/cb_{year}_{state}_tract_500k.zip"
    if year == 2010:
        return f"{base}/TIGER2010/TRACT/2010/tl_2010_{state}_tract10.zip"
    return f"{base}/TIGER{year}/TRACT/tl_{year}_{state}_tract.zip"


def _valid_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        head = path.read_bytes()[:200]
        if head.lstrip().startswith(b"<"):
            raise InvalidBodyError("an HTML page instead of a zip file")
        raise InvalidBodyError("a file that is not a complete zip archive (cut short?)", retry=True)
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InvalidBodyError(f"a damaged zip archive ({err})", retry=True) from None
    if bad is not None:
        raise InvalidBodyError(f"a zip archive whose member {bad!r} fails its CRC", retry=True)
    if not any(n.lower().endswith(".shp") for n in names):
        raise InvalidBodyError(f"a zip archive without a shapefile ({', '.join(names[:5])})")


def fetch_tracts(
    out: str | Path,
    *,
    state: str | int,
    county: str | int | None = None,
    year: int,
    kind: str = "cb",
    tiger_url: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """Download a state's census tracts and write those of ``county`` (WGS84).

    Parameters
    ----------
    out
        The file written: ``.geojson`` or ``.gpkg`` (layer ``tracts``).
    state
        FIPS code or USPS abbreviation (``24``, ``MD``).
    county
        Three-digit county FIPS code (``510``); all the state's tracts when ``None``.
    year
        The vintage: cartographic boundary files exist from 2014, TIGER/Line from 2010.
        Tract definitions change with each decennial census (2010-vintage polygons through
        2019, 2020-vintage from 2020): match the ACS year you join.
    kind
        ``cb`` (cartographic boundary, 1:500k, clipped to the shoreline) or ``tiger``.
    tiger_url
        Base URL instead of ``https://www2.census.gov/geo/tiger`` (or ``CAMCENSUS_TIGER_URL``).
    fetcher
        The :class:`~camcensus.fetch.Fetcher` (cache, retries, progress) to use.

    Returns
    -------
    FetchResult
        ``rows`` tracts written, with every column of the Census file (``GEOID``,
        ``STATEFP``, ``COUNTYFP``, ``TRACTCE``, ``ALAND``, ...; 2010 TIGER names end in ``10``).
    """
    import geopandas as gpd

    path = out_path(out, (".geojson", ".gpkg"))
    if kind not in ("cb", "tiger"):
        raise OptionError(f"kind={kind!r} must be 'cb' (cartographic boundary) or 'tiger'")
    fips = state_fips(state)
    ccc = _county_fips(county, fips)
    _check_year(year, 2014 if kind == "cb" else 2010)
    url = tracts_url(fips, year, kind=kind, tiger_url=tiger_url)
    ledger = Ledger()
    with fetcher_for(fetcher) as http:
        download = http.get(
            url,
            service="the Census Bureau's TIGER/cartographic boundary site",
            expected="a zipped shapefile of census tracts",
            fix="check --year (cartographic boundary files exist from 2014, TIGER/Line from "
            "2010; the latest may not be published yet) and --state; the file is "
            + url.rsplit("/", 1)[-1],
            validate=_valid_zip,
            label=f"tracts {fips} {year}",
            suffix=".zip",
        )
        try:
            gdf = gpd.read_file(download.path)
        except Exception as err:
            raise problem(
                download.url,
                f"a zip archive GDAL cannot read as a shapefile ({type(err).__name__}: {err})",
                "a zipped shapefile of census tracts",
                "run again with --refresh to download a fresh copy",
            ) from None
        county_col = next((c for c in ("COUNTYFP", "COUNTYFP20", "COUNTYFP10") if c in gdf), None)
        if county_col is None:
            raise problem(
                download.url,
                f"a shapefile without a COUNTYFP column ({', '.join(map(str, gdf.columns[:8]))})",
                "Census tract attributes (STATEFP, COUNTYFP, TRACTCE, GEOID)",
                "check --tiger-url: it must serve the Census Bureau's files",
            )
        in_state = len(gdf)
        if ccc is not None:
            counties = sorted(set(gdf[county_col].astype(str)))
            gdf = gdf[gdf[county_col].astype(str) == ccc]
            if gdf.empty:
                raise OptionError(
                    f"county={ccc!r} has no tracts in {url.rsplit('/', 1)[-1]}; the state's "
                    f"counties are {', '.join(counties[:12])}{' …' if len(counties) > 12 else ''}"
                )
        source_crs = gdf.crs.to_string() if gdf.crs is not None else "none"
        gdf = gdf.to_crs("EPSG:4326") if gdf.crs is not None else gdf.set_crs("EPSG:4326")
        gdf = gdf.reset_index(drop=True)
        if path.suffix.lower() == ".gpkg":
            write_atomic(path, lambda tmp: gdf.to_file(tmp, driver="GPKG", layer="tracts"))
        else:
            write_atomic(path, lambda tmp: gdf.to_file(tmp, driver="GeoJSON"))
        ledger.note(
            f"tracts reprojected from {source_crs} to EPSG:4326 (NAD83 and WGS84 differ by "
            "about a metre)"
        )
        return finish(
            "tracts",
            path,
            [download],
            http,
            ledger,
            rows=len(gdf),
            summary={
                "state": fips,
                "county": ccc,
                "year": year,
                "kind": kind,
                "tracts_in_state_file": in_state,
                "tracts_written": len(gdf),
                "source_crs": source_crs,
            },
            terms=_TERMS,
        )


# -- ACS -------------------------------------------------------------------------------------


def _variables(variables: list[str] | tuple[str, ...] | str) -> list[str]:
    items = variables.split(",") if isinstance(variables, str) else list(variables)
    out: list[str] = []
    for raw in items:
        text = str(raw).strip()
        if not text or text.upper() == "NAME":
            continue
        if _GROUP.match(text):
            out.append(text)
            continue
        text = text.upper()
        if re.match(r"^[A-Z]{1,2}\d{2,3}[A-Z0-9]*_\d{3}$", text):
            text += "E"  # a bare variable means its estimate
        if not _VARIABLE.match(text):
            raise OptionError(
                f"variables: {raw!r} is not an ACS variable; e.g. B19013_001E (estimate), "
                "B19013_001M (margin of error), B02001_002 (= its estimate) or group(B19001)"
            )
        if text not in out:
            out.append(text)
    if not out:
        raise OptionError("variables is empty; e.g. --variables B01003_001E,B19013_001E")
    return out


def _acs_validator(path: Path) -> None:
    data = path.read_bytes()
    head = data[:200].lstrip()
    if head.startswith(b"<"):
        text = data[:2000].decode("utf-8", "replace").lower()
        if "invalid key" in text or "invalid_key" in text:
            raise InvalidBodyError(
                "the Census API's 'Invalid Key' page: the API key is not valid (or not yet "
                "activated from the e-mail the Bureau sends)"
            )
        raise InvalidBodyError("an HTML page instead of JSON")
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InvalidBodyError(
            f"JSON cut short or damaged ({err.__class__.__name__})", retry=True
        ) from None
    if (
        not isinstance(doc, list)
        or not doc
        or not all(isinstance(r, list) for r in doc)
        or not all(isinstance(h, str) for h in doc[0])
    ):
        raise InvalidBodyError(f"JSON that is not an array of arrays ({str(doc)[:60]!r})")
    width = len(doc[0])
    bad = [i for i, r in enumerate(doc[1:], start=1) if len(r) != width]
    if bad:
        raise InvalidBodyError(f"rows {bad[:5]} without the header's {width} columns")


def _numeric(
    name: str, values: pd.Series, ledger: Ledger, jam_counts: dict[str, dict[str, int]]
) -> pd.Series:
    """Return ``values`` as floats; jam codes and nulls become NaN, counted."""
    nums = pd.to_numeric(values, errors="coerce")
    null = values.isna()
    unreadable = nums.isna() & ~null
    if unreadable.any():
        sample = ", ".join(repr(v) for v in values[unreadable].unique()[:3])
        ledger.flag("fetch acs", f"{name}: text that is not a number ({sample}) made missing",
                    int(unreadable.sum()), kept_as="tract kept, value missing")  # fmt: skip
        jam_counts.setdefault(name, {})["unreadable"] = int(unreadable.sum())
    if null.any():
        ledger.flag("fetch acs", f"{name}: null in the API's answer", int(null.sum()),
                    kept_as="tract kept, value missing")  # fmt: skip
        jam_counts.setdefault(name, {})["null"] = int(null.sum())
    jammed = nums.isin(list(JAM_VALUES))
    for code, count in sorted(Counter(nums[jammed].astype("int64")).items()):
        ledger.flag(
            "fetch acs",
            f"{name}: jam value {code} ({JAM_VALUES[int(code)]}) made missing",
            int(count),
            kept_as="tract kept, value missing",
        )
        jam_counts.setdefault(name, {})[str(code)] = int(count)
    # Other large negative codes the Bureau may add: missing, never a value.
    other = (nums <= -100_000_000) & ~jammed
    if other.any():
        ledger.flag("fetch acs", f"{name}: unknown negative code made missing",
                    int(other.sum()), kept_as="tract kept, value missing")  # fmt: skip
        jam_counts.setdefault(name, {})["other negative code"] = int(other.sum())
    return nums.mask(jammed | other).astype("float64")


def fetch_acs(
    out: str | Path,
    *,
    state: str | int,
    county: str | int | None = None,
    year: int,
    variables: list[str] | tuple[str, ...] | str,
    key: str | None = None,
    dataset: str = "acs/acs5",
    census_url: str | None = None,
    fetcher: Fetcher | None = None,
) -> FetchResult:
    """Download ACS tract estimates from the Census Data API and write them as CSV.

    Parameters
    ----------
    out
        The CSV written: ``GEOID`` (11 digits, text), ``NAME``, one column per variable
        (numbers; jam values and nulls empty), then ``state``, ``county``, ``tract``.
    state, county
        FIPS codes (or a USPS state code); every county of the state when ``county`` is None.
    year
        The ACS year (the 5-year survey ``2014–2018`` is ``2018``); tracts from 2009.
    variables
        ``B19013_001E`` (estimate), ``B19013_001M`` (margin of error), ``B02001_002`` (its
        estimate), or ``group(B19001)``; any number (split into requests of 49 plus NAME).
    key
        A Census API key (else ``$CENSUS_API_KEY``); never written to the cache, the manifest
        or a message. Without one the API allows 500 requests a day per IP.
    dataset
        ``acs/acs5`` (tracts exist only in 5-year estimates).
    census_url
        Base URL instead of ``https://api.census.gov/data`` (or ``CAMCENSUS_CENSUS_API_URL``).
    fetcher
        The :class:`~camcensus.fetch.Fetcher` to use.

    Returns
    -------
    FetchResult
        ``summary["jam_values"]`` counts, per variable, each jam code (and ``null``) made
        missing; the same counts are flagged in ``ledger`` (stage ``fetch acs``).
    """
    import os

    path = out_path(out, (".csv",))
    fips = state_fips(state)
    ccc = _county_fips(county, fips)
    _check_year(year, 2009)
    if not re.match(r"^acs/acs[135](/[a-z]+)?$", dataset):
        raise OptionError(f"dataset={dataset!r} must be like acs/acs5")
    names = _variables(variables)
    key = key or os.environ.get("CENSUS_API_KEY") or None
    base = base_url("census_api", census_url)
    url = f"{base}/{year}/{dataset}"
    chunks = [names[i : i + _MAX_VARIABLES] for i in range(0, len(names), _MAX_VARIABLES)]
    ledger = Ledger()
    downloads = []
    frames: list[pd.DataFrame] = []
    with fetcher_for(fetcher) as http:
        for i, chunk in enumerate(chunks):
            params = {"get": ",".join(["NAME", *chunk]), "for": "tract:*"}
            params["in"] = f"state:{fips}" + (f" county:{ccc}" if ccc else "")
            download = http.get(
                url,
                params=params,
                secret_params={"key": key} if key else None,
                service="the Census Data API",
                expected="a JSON array of arrays (header row, then one row per tract)",
                fix="check --year, --state/--county and the variable names (the API lists them "
                f"at {url}/variables.html); without --key the API allows 500 requests a day",
                validate=_acs_validator,
                label=f"ACS {year} {fips}{ccc or ''} ({i + 1}/{len(chunks)})",
                suffix=".json",
            )
            downloads.append(download)
            if download.size == 0:
                raise problem(
                    download.url,
                    "an empty answer (HTTP 204: no tracts match)",
                    "one row per tract",
                    "check --state and --county",
                )
            doc = json.loads(download.path.read_bytes())
            frame = pd.DataFrame(doc[1:], columns=doc[0], dtype=object)
            if frame.columns.duplicated().any():
                frame = frame.loc[:, ~frame.columns.duplicated()]
            frames.append(frame)
    geo = ["state", "county", "tract"]
    table = frames[0]
    for extra in frames[1:]:
        keep = [c for c in extra.columns if c not in table.columns or c in geo]
        table = table.merge(extra[keep], on=geo, how="outer", validate="one_to_one")
    missing_geo = [c for c in geo if c not in table.columns]
    if missing_geo:
        raise problem(
            downloads[0].url,
            f"an answer without the {missing_geo} columns",
            "state, county and tract columns (for=tract:*)",
            "check --census-url: it must be the Census Data API",
        )
    jam_counts: dict[str, dict[str, int]] = {}
    for col in table.columns:
        if _NUMERIC.match(str(col)):
            table[col] = _numeric(str(col), table[col], ledger, jam_counts)
    table.insert(0, "GEOID", table["state"] + table["county"] + table["tract"])
    front = ["GEOID", "NAME"] if "NAME" in table.columns else ["GEOID"]
    table = table[front + [c for c in table.columns if c not in (*front, *geo)] + geo]
    table = table.sort_values("GEOID", kind="stable").reset_index(drop=True)
    write_atomic(path, lambda tmp: table.to_csv(tmp, index=False, float_format="%.15g"))
    n_missing = sum(sum(v.values()) for v in jam_counts.values())
    return finish(
        "acs",
        path,
        downloads,
        http,
        ledger,
        rows=len(table),
        summary={
            "year": year,
            "dataset": dataset,
            "state": fips,
            "county": ccc,
            "variables": names,
            "requests": len(chunks),
            "tracts": len(table),
            "values_made_missing": n_missing,
            "jam_values": jam_counts,
            "key_used": key is not None,
        },
        terms=_TERMS,
    )
