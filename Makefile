# handoff — developer tasks.  `make help` lists them.
#
#   make run    start the demo server   (e.g. `make run HANDOFF_PORT=9000`)
#   make test   full test-suite: system packages, throw-away PostgreSQL, the pages' unit tests, pytest
#   make lint   ruff + mypy, ESLint on the pages' code
#   make messages    extract the visitors' texts and update the catalogues (then translate)
#   make catalogues  compile the catalogues (.po → .mo, committed)
#   make clean  remove the venv and caches, stop the test PostgreSQL

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON      ?= python3
VENV        := .venv
BIN         := $(VENV)/bin
PIP         := $(BIN)/pip
STAMP       := $(VENV)/.installed
# ESLint for the pages' code, at the versions package-lock.json pins (npm ci).
NODE_STAMP  := node_modules/.installed
# Extra arguments for pytest, e.g. `make test PYTEST_ARGS='-k escalation -x'`.
PYTEST_ARGS ?=

# HANDOFF_* variables given on the make command line (`make run HANDOFF_PORT=9000`)
# reach the commands as environment variables; ones already in the environment
# are inherited anyway.
export $(foreach v,$(filter HANDOFF_%,$(.VARIABLES)),$(if $(filter command line,$(origin $(v))),$(v)))

.PHONY: help venv run test js-test lint messages catalogues clean

help: ## Show this help
	@echo "Usage: make <target>"
	@echo
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables: PYTEST_ARGS='...' (make test), HANDOFF_*=... (passed to the app)"

venv: $(STAMP) ## Create/refresh the virtualenv in .venv (no-op if pyproject.toml is unchanged)

# torch goes first, pinned explicitly: any other resolution of it would pull the
# huge CUDA build instead of the CPU wheel.
$(STAMP): pyproject.toml
	@echo "Installing Python packages (first run takes a few minutes)…"
	@test -x $(BIN)/python || { echo "  creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "  upgrading pip"
	@$(PIP) install -q --upgrade pip
	@echo "  installing torch==2.13.0 (CPU)"
	@$(PIP) install -q torch==2.13.0
	@echo "  installing handoff with [dev] extras"
	@$(PIP) install -q -e '.[dev]'
	@touch $@
	@echo "Python environment ready."

run: $(STAMP) ## Run the demo server (HANDOFF_* variables are passed through)
	$(BIN)/handoff serve --demo

test: $(STAMP) ## Run the test-suite (installs system packages, starts a test PostgreSQL)
	@bash scripts/system-deps.sh
	@$(MAKE) --no-print-directory js-test
	@bash scripts/postgres.sh start >/dev/null
	HANDOFF_TEST_POSTGRES_URL="$$(bash scripts/postgres.sh url)" \
	  $(BIN)/python -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)

js-test: ## Unit tests of the pages' client logic (Node's built-in runner, no packages)
	node --test tests/js/*.test.js

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "make lint needs npm (apt-get install npm) for ESLint"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

lint: $(STAMP) $(NODE_STAMP) ## ruff check, ruff format --check, mypy, ESLint
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	node_modules/.bin/eslint

LOCALE := src/handoff/locale

messages: $(STAMP) ## Extract the texts said to visitors into the template and update each catalogue
	$(BIN)/pybabel extract -F babel.cfg -k N_ --no-default-keywords --no-location \
	  --sort-output --omit-header -o $(LOCALE)/handoff.pot src/handoff
	$(BIN)/pybabel update -D handoff -i $(LOCALE)/handoff.pot -d $(LOCALE) \
	  --width 100 --ignore-pot-creation-date

catalogues: $(STAMP) ## Compile the catalogues (.po) into what the service reads (.mo)
	$(BIN)/pybabel compile -D handoff -d $(LOCALE) --statistics

clean: ## Remove .venv and caches; stop and delete the test PostgreSQL
	-@bash scripts/postgres.sh stop
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache build test-results src/*.egg-info
	find src tests -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
