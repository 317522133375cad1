# Two commands do all set-up on a fresh clone: `make run` and `make test`; `make check` is
# the quick one, with no broker.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE ?= $(or $(FIML_CACHE_DIR),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/fiml),$(HOME)/.cache/fiml)
ASYNCAPI_SPECS := $(CACHE)/npm/node_modules/@asyncapi/specs/package.json
CHART_LIBRARY := $(CACHE)/dashboard/node_modules/lightweight-charts/package.json
CHROMIUM := /usr/bin/chromium

.PHONY: setup kafka-jars dashboard-assets browser deploy-tools test-tools run test check lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

kafka-jars: setup
	$(BIN)/fiml kafka fetch

# The local schema registry (Apicurio Registry, built once with Maven into the cache), so
# that no test times the build; the tests marked `registry` start it.
.PHONY: registry-runner
registry-runner: setup
	$(BIN)/fiml registry fetch

# The AsyncAPI JSON schemas the protocol tests validate /asyncapi.json against.
$(ASYNCAPI_SPECS):
	npm install --no-save --no-audit --no-fund --prefix $(CACHE)/npm @asyncapi/specs@6.11.1

# The dashboard's chart library, served by the gateway (FIML_DASHBOARD_CHART_LIBRARY); a
# prefix of its own, since `npm install --no-save` removes what else a prefix holds.
dashboard-assets: $(CHART_LIBRARY)

$(CHART_LIBRARY):
	npm install --no-save --no-audit --no-fund --prefix $(CACHE)/dashboard lightweight-charts@5.2.1

SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

# Debian's Chromium for the browser tests (Playwright drives it; no downloaded browser).
browser: $(CHROMIUM)

$(CHROMIUM):
	$(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium

# kustomize (Go module proxy) and Strimzi's CRDs (Maven Central) for the deployment tests,
# cached under $(CACHE)/tools; see tests/deploy_tools.py.
deploy-tools: setup
	$(BIN)/python -m tests.deploy_tools

test-tools: $(ASYNCAPI_SPECS) deploy-tools dashboard-assets browser

run: kafka-jars dashboard-assets
	$(BIN)/fiml up

# `make run` with the local schema registry (README.md, "Reading the topics").
.PHONY: run-registry
run-registry: kafka-jars registry-runner dashboard-assets
	$(BIN)/fiml up --registry

# Benchmarks (benchmarks/README.md), each on a broker of its own unless FIML_KAFKA_BOOTSTRAP
# is set. BENCH_ARGS= (empty) runs the full mode; the soak runs SOAK_MINUTES.
.PHONY: bench-arbitration bench-replay bench-latency bench-fanout soak bench-alerts
BENCH_ARGS ?= --quick
SOAK_MINUTES ?= 30

bench-arbitration: kafka-jars
	$(BIN)/python benchmarks/arbitration_throughput.py $(BENCH_ARGS) --out benchmarks/arbitration_throughput.json

.PHONY: bench-scaling
bench-scaling: kafka-jars
	$(BIN)/python benchmarks/arbitration_scaling.py $(BENCH_ARGS) --out benchmarks/arbitration_scaling.json

bench-replay: kafka-jars
	$(BIN)/python benchmarks/replay_throughput.py $(BENCH_ARGS) --out benchmarks/replay_throughput.json

bench-latency: kafka-jars
	$(BIN)/python benchmarks/latency.py $(BENCH_ARGS) --out benchmarks/latency.json

bench-fanout: kafka-jars
	$(BIN)/python benchmarks/fanout.py $(BENCH_ARGS) --out benchmarks/fanout.json

soak: kafka-jars
	$(BIN)/python benchmarks/soak.py --minutes $(SOAK_MINUTES) --out benchmarks/soak.json

bench-alerts: setup
	cd benchmarks && ../$(BIN)/python alerts_core.py $(BENCH_ARGS) --out alerts_core.json

.PHONY: bench-books
bench-books: kafka-jars
	$(BIN)/python benchmarks/books_throughput.py $(BENCH_ARGS) --out benchmarks/books_throughput.json

.PHONY: bench-history
bench-history: kafka-jars
	$(BIN)/python benchmarks/history_load.py $(BENCH_ARGS) --out benchmarks/history_load.json

# Style, formatting, types (mypy; strict on schemas, runtime and the arbitration engine)
# and the import contracts (import-linter; both configured in pyproject.toml).
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# lint, then every test that needs no broker, on two workers: under a minute.
check: lint deploy-tools
	$(BIN)/pytest -m "not kafka" -n 2

# every test, on two workers (a module stays on one; each worker starts its own broker),
# the slowest listed at the end
test: kafka-jars registry-runner test-tools lint
	$(BIN)/pytest -n 2 --dist loadfile --durations=15

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .hypothesis test-artifacts
