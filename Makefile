# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv when missing.
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# dg finds the project's environment through VIRTUAL_ENV
DG     := VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(BIN)):$$PATH $(BIN)/dg
# Debian's paths; the browser test uses exactly these
# how `make test` runs the suite; `make bench-suite` times exactly this
PYTEST_SUITE := -q -p no:cacheprovider -n 3 --dist loadgroup
# Python's bytecode cache kept for the suite even where the environment turns it off (container
# images often set PYTHONDONTWRITEBYTECODE): otherwise each of its processes (xdist's workers, the
# CLI, run workers, the webserver) compiles the package and rewrites the tests' asserts again,
# 7.0 -> 3.9 CPU-seconds for one collection alone
SUITE_ENV    := env -u PYTHONDONTWRITEBYTECODE
CHROMIUM     ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver

.PHONY: install browser-deps demo test test-readings lint validate ui bench-suite bench-overhead bench-defs bench-layouts bench-bookkeeping bench-extract bench-parallel bench-staging bench-load bench-fidelity bench-reconcile bench-sync bench-scale bench-live postgres-deps clean

# uv installs the same packages as pip in half the time (part of every clean-clone test run),
# compiling their bytecode as pip does: without it, the first processes of the suite compiled
# Dagster at once and a 30-second start timed out. uv does not read pip's configuration, so when
# it cannot install, pip does, as before.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --native-tls --compile-bytecode --python $(BIN)/python -e '.[dev,postgres]' \
	  || $(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	@touch $(STAMP)

install: $(STAMP)

## Sandbox Ploomes API + three synced windows + the Dagster UI on http://127.0.0.1:3000
demo: $(STAMP)
	$(BIN)/ploomes-cx demo

## Debian's chromium + chromedriver for the browser test, installed once when missing
browser-deps:
	@test -x $(CHROMIUM) -a -x $(CHROMEDRIVER) || { \
	  echo "installing Debian chromium and chromium-driver for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && command -v sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

## Debian's PostgreSQL server binaries for the PostgreSQL-instance test and bench-scale, installed once when missing
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  echo "installing Debian postgresql for the PostgreSQL-instance test"; \
	  SUDO=$$( [ "$$(id -u)" -ne 0 ] && command -v sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }

## Lint, check the code location loads, run the test suite (browser test included)
# the two `dg` checks load the code location each, side by side (one core each); either failing fails
test: $(STAMP) browser-deps postgres-deps
	$(BIN)/ruff check ploomes_cx ploomes_cx_tests benchmarks
	$(BIN)/ruff format --check ploomes_cx ploomes_cx_tests benchmarks
	DAGSTER_HOME= PLOOMES_CX_HOME=$$(mktemp -d) $(DG) check defs & check=$$!; \
	  DAGSTER_HOME= PLOOMES_CX_HOME=$$(mktemp -d) $(DG) list defs --json > /dev/null; listed=$$?; \
	  wait $$check && test $$listed -eq 0
	$(SUITE_ENV) $(BIN)/pytest $(PYTEST_SUITE)

## The readings matrix one switch at a time: the sync story under each alternative reading of the API specs, alone
test-readings: $(STAMP)
	PLOOMES_CX_READINGS_MATRIX=full $(BIN)/pytest -q -p no:cacheprovider -n 3 ploomes_cx_tests/test_readings_matrix.py

lint: $(STAMP)
	$(BIN)/ruff check ploomes_cx ploomes_cx_tests benchmarks

## The Dagster UI alone, on the same instance the CLI uses
ui: $(STAMP)
	$(BIN)/ploomes-cx ui

## Benchmark: building the code location with 1, 100 and 1,000 generated mappings (seconds, assets, peak RSS)
bench-defs: $(STAMP)
	$(BIN)/python -m benchmarks.defs

## Benchmark: three layouts of 100 and 1,000 mappings (one graph each, one shared graph, shards), Dagster's cost alone
bench-layouts: $(STAMP)
	$(BIN)/python -m benchmarks.layouts

## The test suite as `make test` runs it, timed per test and per worker: CPU, waiting, when each worker ended
bench-suite: $(STAMP)
	rm -rf .suite-time
	SUITE_TIME_DIR=.suite-time $(SUITE_ENV) $(BIN)/python -m pytest $(PYTEST_SUITE) -p benchmarks.suite_time
	$(BIN)/python -m benchmarks.suite_time .suite-time

## Benchmark: ms to store one Dagster event and to make one API client, Dagster's and httpx's way against ours
bench-bookkeeping: $(STAMP)
	$(BIN)/python -m benchmarks.bookkeeping

## Benchmark: CPU-seconds of one small first sync, the unit the suite's end-to-end tests are made of
bench-overhead: $(STAMP)
	$(BIN)/python -m benchmarks.overhead

## Benchmark: extract 100,000 contacts from the sandbox at the enforced rate limit
bench-extract: $(STAMP)
	$(BIN)/python -m benchmarks.extract

## Benchmark: two processes extracting on one Ploomes key at once share its rate limit
bench-parallel: $(STAMP)
	$(BIN)/python -m benchmarks.extract --processes 2 --persons 50000

## Benchmark: CustomerX writes per changed record and write rate against the rate limit
bench-load: $(STAMP)
	$(BIN)/python -m benchmarks.load

## Benchmark: a dirty account synced end to end: custom fields equal to Ploomes, no cross-document adoption, 422s per refused record
bench-fidelity: $(STAMP)
	$(BIN)/python -m benchmarks.fidelity

## Benchmark: clean and deduplicate 1,000,000 sandbox contacts (seconds, peak memory)
bench-staging: $(STAMP)
	$(BIN)/python -m benchmarks.staging

## Benchmark: what a reconcile's Id listing costs, against the Ploomes rate-limit ceiling
bench-reconcile: $(STAMP)
	$(BIN)/python -m benchmarks.reconcile

## A first sync of a 7-window dirty account at enforced limits: writes and requests per needed write, time / floor
bench-sync: $(STAMP)
	$(BIN)/python -m benchmarks.sync

## Seconds from a Ploomes change to its CustomerX write through webhooks and `listen`, CustomerX at 60/min
bench-live: $(STAMP)
	$(BIN)/python -m benchmarks.live

## 20 mappings synced at once through the run queue and the daemon on a PostgreSQL instance
bench-scale: $(STAMP) postgres-deps
	$(BIN)/python -m benchmarks.scale

clean:
	rm -rf .ploomes_cx
