# One entry point for people and CI. `make run` and `make test` are the README's two commands.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
LINE   ?= line-A02
ARGS   ?=

.PHONY: run test check lint bench clean

$(BIN)/twin: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	@touch $@

run: $(BIN)/twin  ## set up and run the main job: the line against the embedded MES, checked against lines/slo/default.yaml
	$(BIN)/twin run $(LINE) --slo default $(ARGS)

test: $(BIN)/twin  ## set up and run the whole gate: lint, then every test
	@# The page-render test of the reports needs Debian's chromium; installed where we may (root with apt),
	@# otherwise that one test says it is skipped.
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || \
	  (echo "installing Debian's chromium for the page-render test (apt-get update && apt-get install chromium)..." && \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium could not be installed: the page-render test will be skipped" >&2
	$(BIN)/ruff check twin tests benchmarks
	$(BIN)/python -m pytest

lint: $(BIN)/twin
	$(BIN)/ruff check twin tests benchmarks
	$(BIN)/ruff format --check twin tests benchmarks

bench: $(BIN)/twin  ## every benchmark, printing its figures (installs nginx, wrk and Locust if missing)
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && apt-get install -y -qq nginx-light)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python -m pip install --quiet -e '.[dev,ray,bench]'
	$(BIN)/python -m benchmarks $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
