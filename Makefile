# Two commands matter: `make run` (the service on its embedded default) and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The GraphQL IDE's browser files (React, GraphiQL), installed from the npm registry exactly
# as web/package-lock.json pins them; the app serves an allow-list of them at /assets/vendor/.
WEB_STAMP := web/node_modules/.installed

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(WEB_STAMP): web/package.json web/package-lock.json
	npm ci --prefix web --ignore-scripts --no-audit --no-fund
	touch $(WEB_STAMP)

.PHONY: setup run test lint
setup: $(STAMP) $(WEB_STAMP)

run: setup
	$(BIN)/signalsmith serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint $(WEB_STAMP)
	$(BIN)/pytest
