# canary — every developer and CI entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# The dev environment's orchestrator is standard-library Python: it needs no virtualenv.
DEVENV := $(PYTHON) -m devenv
# Debian packages the dev environment needs on PATH (etcd and Prometheus are unpacked into the
# cache by devenv itself, without installing them as services). The dashboard's browser test
# drives Debian's chromium with Playwright (the browser Playwright would download is never used).
# shellcheck checks hack/e2e-kind.sh (a test runs it).
DEV_APT_PACKAGES := openssl ca-certificates chromium fonts-dejavu-core shellcheck

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m canary.adapters.outbound.generate
	@touch $@

.PHONY: venv
venv: $(STAMP) ## create or update the virtualenv in .venv

.PHONY: fmt
fmt: $(STAMP) ## format the code
	$(BIN)/ruff format canary devenv tests bench
	$(BIN)/ruff check --fix canary devenv tests bench

.PHONY: lint
lint: $(STAMP) ## ruff, mypy --strict, import contracts, CRDs in sync with the models
	$(BIN)/ruff format --check canary devenv tests bench
	$(BIN)/ruff check canary devenv tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m canary.crdgen --check crds
	$(BIN)/python -m canary.crdgen --check charts/canary/crds
	$(BIN)/python -m canary.grafana --check charts/canary/dashboards

.PHONY: crds
crds: $(STAMP) ## regenerate crds/ (and the chart's copy) from the models
	$(BIN)/python -m canary.crdgen --write crds
	$(BIN)/python -m canary.crdgen --write charts/canary/crds

.PHONY: deploy
deploy: ## render charts/canary with its default values into deploy/ (builds helm once)
	$(DEVENV) deploy

.PHONY: grafana
grafana: $(STAMP) ## regenerate the Grafana dashboard (charts/canary/dashboards/canary.json)
	$(BIN)/python -m canary.grafana --write charts/canary/dashboards

.PHONY: unit
unit: $(STAMP) ## fast tests of the pure core (no cluster)
	$(BIN)/pytest -q tests/unit

FUZZ_EXAMPLES ?= 10000

.PHONY: fuzz
fuzz: $(STAMP) ## long fuzz run of lint, model→plan→machine, evidence, commands (FUZZ_EXAMPLES per target)
	@start=$$(date +%s); status=0; \
	CANARY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider tests/fuzz || status=$$?; \
	targets=$$(grep -c '^def test_' tests/fuzz/test_*.py | awk -F: '{n += $$2} END {print n}'); \
	if [ $$status = 0 ]; then crashes=0; else crashes="at least 1 (see above)"; fi; \
	echo "fuzz: $$targets targets x $(FUZZ_EXAMPLES) examples in $$(( $$(date +%s) - start ))s; crashes: $$crashes"; \
	exit $$status

CHAOS_KILLS ?= 100

.PHONY: chaos
chaos: $(STAMP) dev-tools ## chaos run on the local control plane: CHAOS_KILLS SIGKILLs, API server down 30s, Prometheus 60s
	CANARY_CHAOS_KILLS=$(CHAOS_KILLS) CANARY_CHAOS_APISERVER_DOWN=30 CANARY_CHAOS_PROMETHEUS_DOWN=60 \
	  $(BIN)/pytest -q -s -p no:cacheprovider tests/integration/e2e/test_controller_survives_chaos.py

.PHONY: dev-system
dev-system: ## install the Debian packages the dev environment needs (apt-get, once)
	@missing=""; for pkg in $(DEV_APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v go >/dev/null || { echo "Go is not on PATH: install Go >= 1.22 (https://go.dev/doc/install)" >&2; exit 1; }

.PHONY: dev-tools
dev-tools: dev-system ## build/fetch etcd, Kubernetes, kwok, Prometheus into ~/.cache/canary (fast when cached)
	$(DEVENV) tools

.PHONY: dev-up
dev-up: dev-tools ## start the local control plane and Prometheus; writes .dev/kubeconfig and .dev/env
	$(DEVENV) up

.PHONY: dev-down
dev-down: ## stop everything dev-up started
	$(DEVENV) down

.PHONY: demo
demo: $(STAMP) dev-up ## a healthy release promoted and a faulty one rolled back, live
	$(BIN)/python -m devenv.demo

.PHONY: e2e-kind
e2e-kind: $(STAMP) ## e2e tests on a kind cluster with all of real Linkerd (needs Docker, kind, helm)
	hack/e2e-kind.sh

.PHONY: dev-status
dev-status: ## show what the dev environment runs
	@$(DEVENV) status || true

.PHONY: bench-gates
bench-gates: $(STAMP) ## gate-quality benchmark (BENCHMARK.md §1); writes docs/benchmarks.md
	$(BIN)/python -m bench.gates $(BENCH_ARGS)

.PHONY: bench-twin-speed
bench-twin-speed: $(STAMP) ## CPU seconds per run of every bench-gates cell, and the full run's projected time
	$(BIN)/python -m bench.twin_speed $(BENCH_ARGS)

.PHONY: bench-emojivoto
bench-emojivoto: $(STAMP) ## how often emojivoto's faulty voting release would be promoted (the e2e test's false-failure rate), on the twin
	$(BIN)/python -m bench.emojivoto $(or $(BENCH_ARGS),--seeds 10000)

.PHONY: bench-reaction
bench-reaction: $(STAMP) dev-tools ## live reaction times of 100%- and 10%-error canaries vs the twin; writes docs/benchmarks.md
	$(BIN)/python -m bench.live_reaction $(or $(BENCH_ARGS),--runs 5)

.PHONY: record-replay
record-replay: $(STAMP) dev-tools ## re-record the live tapes the twin replays (tests/unit/replays) and check the replay
	CANARY_REPLAY_FIXTURES=$(CURDIR)/tests/unit/replays \
	  $(BIN)/pytest -q -p no:cacheprovider tests/integration/e2e/test_twin_replays_live_releases.py

.PHONY: screenshots
screenshots: $(STAMP) dev-tools ## retake docs/dashboard-*.png in a real browser during real releases (make test takes them into a temporary directory)
	CANARY_SCREENSHOTS=$(CURDIR)/docs \
	  $(BIN)/pytest -q -p no:cacheprovider tests/integration/e2e/test_dashboard_in_a_real_browser.py

.PHONY: bench-scale
bench-scale: $(STAMP) dev-up ## controller scale (BENCHMARK.md §2): N=10,100 Rollouts; writes docs/benchmarks.md
	$(BIN)/python -m bench.scale $(or $(BENCH_ARGS),--n 10 --n 100)

.PHONY: bench-list-memory
bench-list-memory: $(STAMP) dev-up ## the caches' memory when they first list 1000 apps: paged and trimmed against unpaged and whole
	$(BIN)/python -m bench.list_memory $(or $(BENCH_ARGS),--n 1000)

.PHONY: bench-parsed-memory
bench-parsed-memory: $(STAMP) ## the parsed Rollouts' memory, models' field-name sets own or shared (twin statuses)
	$(BIN)/python -m bench.parsed_memory $(or $(BENCH_ARGS),--n 1000)

.PHONY: bench-snapshot-memory
bench-snapshot-memory: $(STAMP) ## the tick's counters query at 1000 rollouts: its answer parsed whole against streamed
	$(BIN)/python -m bench.snapshot_memory $(or $(BENCH_ARGS),--n 1000)

.PHONY: bench-emulator-fleet
bench-emulator-fleet: $(STAMP) dev-up ## the mesh emulator's CPU over 1000 apps while routes change (BENCH_ARGS="--variant NAME=DIR ..." compares trees)
	$(BIN)/python -m bench.emulator_fleet_cpu $(or $(BENCH_ARGS),--apps 1000)

.PHONY: scale-check
scale-check: $(STAMP) dev-tools ## the reduced scale check alone (N=50; also part of make test): queries per tick, GETs per reconcile, no wrong decision
	$(BIN)/pytest -q -p no:cacheprovider -m scale tests/integration/test_scale_keeps_reads_cached_and_queries_batched.py

.PHONY: soak
soak: $(STAMP) dev-up ## 30 min (SOAK_MINUTES) of Rollouts released, finished, deleted (BENCH_ARGS, default --n 100; --warm SECONDS: an unmeasured first round); RSS slope and cache sizes into docs/benchmarks.md
	$(BIN)/python -m bench.scale --soak $(or $(SOAK_MINUTES),30) $(or $(BENCH_ARGS),--n 100)

.PHONY: test
test: lint dev-tools ## install everything and run the whole suite with branch coverage
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage report --include='canary/core/*,canary/model/*' --fail-under=100
	$(BIN)/coverage report --precision=1 | tail -n 1

# The image is built from sources by buildah (Debian package; no Docker engine), against a base
# bootstrapped from Debian packages; the archive can be loaded with `podman load`/`docker load`.
IMAGE_ARCHIVE := .dev/image/canary.oci.tar
IMAGE_SOURCES := Dockerfile .dockerignore pyproject.toml README.md $(shell find canary -name '*.py' -o -name py.typed)

.PHONY: image
image: $(IMAGE_ARCHIVE) ## build the controller image with buildah into .dev/image/canary.oci.tar

$(IMAGE_ARCHIVE): $(IMAGE_SOURCES) devenv/image.sh
	devenv/image.sh build $@

.PHONY: image-smoke
image-smoke: .dev/image/smoke.ok ## run the image's entrypoint: canary version, canary run --help (cached)

.dev/image/smoke.ok: $(IMAGE_ARCHIVE)
	devenv/image.sh smoke $<
	@touch $@
