# The platform's two set-up commands are `make run` and `make test` (README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test faults bench lint format install

$(INSTALLED): requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

## Migrate, sync schedules, then web + worker + beat + flower in the foreground (Ctrl-C stops all).
run: $(INSTALLED)
	$(BIN)/python ops/run_local.py

## The whole suite: real Redis broker, real workers, PostgreSQL whenever DATABASE_URL names one.
test: $(INSTALLED)
	$(BIN)/pytest $(PYTEST_ARGS)

## The fault-injection suite on its own (also part of `make test`); prints its figures.
faults: $(INSTALLED)
	$(BIN)/pytest tests/faults $(PYTEST_ARGS)

## Benchmarks side by side with their baselines; writes bench/results/latest.json.
bench: $(INSTALLED)
	$(BIN)/python -m bench

## ruff, and the import layers (pyproject.toml [tool.importlinter]; docs/architecture.md).
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	PYTHONPATH=.:platform $(BIN)/lint-imports

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
