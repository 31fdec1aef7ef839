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

# The suite waits on timers far more than it computes: its independent tests run on this many
# pytest-xdist workers, each with its own database, Redis database and RabbitMQ vhost; the groups
# in tests/support/parallel.py each on one worker (README.md, Testing). PYTEST_ARGS comes last and
# wins: PYTEST_ARGS="tests/jobs -n0" runs serially.
TEST_WORKERS ?= 6
PYTEST_PARALLEL := -n $(TEST_WORKERS) --durations=20
# Branch coverage of the pytest processes (CI: COVERAGE=1, .ci/run); the run fails below the floor.
COVERAGE_FLOOR := 85
COVERAGE_ARGS := $(if $(COVERAGE),--cov --cov-branch --cov-report= --cov-fail-under=$(COVERAGE_FLOOR))

## The whole suite: real Redis broker, real workers, PostgreSQL whenever DATABASE_URL names one.
test: $(INSTALLED)
	$(BIN)/pytest $(PYTEST_PARALLEL) $(COVERAGE_ARGS) $(PYTEST_ARGS)

## The fault-injection suite on its own (also part of `make test`); prints its figures.
faults: $(INSTALLED)
	$(BIN)/pytest tests/faults $(PYTEST_PARALLEL) $(PYTEST_ARGS)

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
