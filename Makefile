# The platform's two set-up commands are `make run` and `make test` (README.md).
PYTHON ?= python3
# `make install VENV=/some/where` installs into another virtualenv (a fresh one to try the locks).
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test faults bench lint format install lock audit

# The locks (docs/security.md, Locked dependencies): requirements/*.in hold the top-level pins,
# edited by hand; `make lock` compiles them into *.txt with every dependency and each file's sha256.
# dev.txt is the whole development set (base.txt's pins included), installed hash-checked: pip
# refuses any file whose hash the lock does not list.
$(INSTALLED): requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

## Migrate, sync schedules, then web + worker + beat + flower in the foreground (Ctrl-C stops all).
run: $(INSTALLED)
	$(BIN)/python ops/run_local.py

# The suite waits on timers far more than it computes: its independent tests run on this many
# pytest-xdist workers, each with its own database, Redis database and RabbitMQ vhost; the groups
# in tests/support/parallel.py each on one worker (README.md, Testing). PYTEST_ARGS comes last and
# wins: PYTEST_ARGS="tests/jobs -n0" runs serially.
TEST_WORKERS ?= 10
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

# uv resolves against pip's own index (PIP_INDEX_URL or `pip config`, else PyPI) for this venv's
# Python, and keeps every locked version the .in files still allow: adding a package moves nothing
# else. LOCK_ARGS="--upgrade-package NAME" lets one locked package move, "--upgrade" all of them.
LOCK_INDEX_URL ?= $(or $(PIP_INDEX_URL),$(shell $(BIN)/pip config get global.index-url 2>/dev/null),https://pypi.org/simple)
LOCK = $(BIN)/uv pip compile --quiet --generate-hashes --python $(BIN)/python --index-url $(LOCK_INDEX_URL) \
	--no-strip-extras --custom-compile-command "make lock" $(LOCK_ARGS)

## Compile requirements/{base,prod,dev}.in into the hashed locks (base first: prod and dev follow its pins).
## Needs only uv in the venv, not an install of the locks it rewrites (docs/security.md: merging).
lock:
	test -x $(BIN)/uv || $(MAKE) install
	$(LOCK) requirements/base.in -o requirements/base.txt
	$(LOCK) requirements/prod.in -o requirements/prod.txt
	$(LOCK) requirements/dev.in -o requirements/dev.txt

# Advisories that do not apply here: requirements/audit-ignore, one a line, the ID then why.
AUDIT_IGNORE_FILE ?= requirements/audit-ignore
AUDIT_IGNORED = $(shell awk '$$1 ~ /^[A-Z]/ { print "--ignore-vuln", $$1 }' $(AUDIT_IGNORE_FILE))

## pip-audit on the locks against PyPI's advisories: a finding not in requirements/audit-ignore
## fails, and so does a package it could not look up (--strict). AUDIT_ARGS="-s osv" asks OSV instead.
audit: $(INSTALLED)
	$(BIN)/pip-audit --strict --progress-spinner off --disable-pip --require-hashes $(AUDIT_IGNORED) $(AUDIT_ARGS) \
		-r requirements/dev.txt -r requirements/prod.txt
