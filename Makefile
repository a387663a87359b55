# camcensus: two set-up commands on a fresh machine, `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
OUT ?= out/demo
SHARED_DATA ?= ../shared/data

.PHONY: demo test lint typecheck pytest system-deps bench bench-ground-truth bench-platform bench-locate bench-footprints bench-routes bench-scale bench-quality clean

$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.test: $(VENV)/.core
	$(PIP) install -q --disable-pip-version-check -e '.[test,dev,scale,cv,train]'
	touch $@

## demo: install, simulate a seeded synthetic city, store it in SQLite and write the report to $(OUT)
demo: $(VENV)/.core
	$(VENV)/bin/camcensus demo --out $(OUT) --force

## system-deps: as root, install Debian's Chromium, PostGIS and R (with MASS) when they are missing
system-deps:
	@if [ "$$(id -u)" = "0" ]; then \
	  missing=""; \
	  [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	  dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || missing="$$missing postgresql-15-postgis-3"; \
	  [ -x /usr/bin/Rscript ] || missing="$$missing r-base-core"; \
	  dpkg -s r-cran-mass >/dev/null 2>&1 || missing="$$missing r-cran-mass"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	  fi; \
	else echo "not root: skipping Debian packages (need chromium, postgresql-15-postgis-3, r-base-core, r-cran-mass)"; fi

lint: $(VENV)/.test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(VENV)/.test
	$(VENV)/bin/mypy

pytest: $(VENV)/.test system-deps
	CAMCENSUS_SHARED_DATA=$(SHARED_DATA) $(PY) -m pytest

## test: install what the tests need, lint, type-check and run the whole suite
test: lint typecheck pytest

## bench: coverage step against the straightforward geopandas approach (needs ../shared/data)
bench: $(VENV)/.test
	CAMCENSUS_SHARED_DATA=$(SHARED_DATA) $(PY) benchmarks/bench_coverage.py

## bench-ground-truth: coverage of 95% intervals over 200 seeded synthetic cities
bench-ground-truth: $(VENV)/.test
	$(PY) benchmarks/bench_ground_truth.py 200

## bench-platform: 200 concurrent simulated volunteers against the real server (SQLite, PostgreSQL)
bench-platform: $(VENV)/.test system-deps
	$(PY) benchmarks/bench_platform.py --json out/bench_platform.json

## bench-locate: cameras from tags on the shared-world street simulation (error by distance band)
bench-locate: $(VENV)/.test
	$(PY) benchmarks/bench_locate.py

## bench-footprints: occluded footprints against a per-camera loop (--full: 25,000 cameras, 100,000 buildings)
bench-footprints: $(VENV)/.test
	$(PY) benchmarks/bench_footprints.py --full

## bench-routes: route queries on a 152k-node walking graph against networkx and scipy
bench-routes: $(VENV)/.test
	$(PY) benchmarks/bench_routes.py --full

## bench-scale: coverage of 1M cameras x 85k tracts on dask against the single-process path
bench-scale: $(VENV)/.test
	$(PY) benchmarks/bench_scale.py --full

## bench-quality: review designs, interval coverage of corrected totals, adaptive redundancy (200 seeds)
bench-quality: $(VENV)/.test
	$(PY) benchmarks/bench_quality_ratio.py --full
	$(PY) benchmarks/bench_quality_intervals.py --full
	$(PY) benchmarks/bench_adaptive.py --full

clean:
	rm -rf $(VENV) out .pytest_cache .mypy_cache .ruff_cache
