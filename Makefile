# Two commands do all set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CACHE ?= $(or $(FIML_CACHE_DIR),$(if $(XDG_CACHE_HOME),$(XDG_CACHE_HOME)/fiml),$(HOME)/.cache/fiml)
ASYNCAPI_SPECS := $(CACHE)/npm/node_modules/@asyncapi/specs/package.json

.PHONY: setup kafka-jars deploy-tools test-tools run test lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

kafka-jars: setup
	$(BIN)/fiml kafka fetch

# The AsyncAPI JSON schemas the protocol tests validate /asyncapi.json against.
$(ASYNCAPI_SPECS):
	npm install --no-save --no-audit --no-fund --prefix $(CACHE)/npm @asyncapi/specs@6.11.1

# kustomize (Go module proxy) and Strimzi's CRDs (Maven Central) for the deployment tests,
# cached under $(CACHE)/tools; see tests/deploy_tools.py.
deploy-tools: setup
	$(BIN)/python -m tests.deploy_tools

test-tools: $(ASYNCAPI_SPECS) deploy-tools

run: kafka-jars
	$(BIN)/fiml up

lint: setup
	$(BIN)/ruff check .

test: kafka-jars test-tools lint
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
