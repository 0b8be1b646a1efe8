# canary — every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

.PHONY: venv
venv: $(STAMP) ## create or update the virtualenv in .venv

.PHONY: fmt
fmt: $(STAMP) ## format the code
	$(BIN)/ruff format canary tests bench
	$(BIN)/ruff check --fix canary tests bench

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, import contracts, CRDs in sync with the models
	$(BIN)/ruff format --check canary tests bench
	$(BIN)/ruff check canary tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: crds
crds: $(STAMP) ## regenerate crds/ from the models
	$(BIN)/python -m canary.model.crdgen --write crds

.PHONY: unit
unit: $(STAMP) ## fast tests of the pure core (no cluster)
	$(BIN)/pytest -q tests/unit

.PHONY: bench-gates
bench-gates: $(STAMP) ## gate-quality benchmark (BENCHMARK.md §1); writes docs/benchmarks.md
	$(BIN)/python -m bench.gates $(BENCH_ARGS)

.PHONY: test
test: lint ## install everything and run the whole suite with branch coverage
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report --include='canary/core/*,canary/model/*' --fail-under=100
	$(BIN)/coverage report --precision=1 | tail -n 1
