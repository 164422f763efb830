# Two commands: `make up` runs the service, `make test` runs every check. Both install first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# pytest-xdist workers, each with a database of its own (0: one process). Each test file runs
# whole on one worker (--dist loadfile): a module's app and database are made once, not once per
# worker, and an end-to-end file's `a2n` processes never overlap each other, which keeps the run
# within a stock PostgreSQL's 100 connections.
PYTEST_WORKERS ?= 3

.PHONY: up test install lint typecheck pytest services promtool wrk bench clean

up: $(STAMP) ## Install, migrate and run API + projectors on http://127.0.0.1:8000
	$(BIN)/a2n up

test: $(STAMP) services promtool lint typecheck pytest ## Install and run ruff, mypy and pytest

install: $(STAMP)

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	# --compile-bytecode: every process (a test worker, each `a2n` the end-to-end tests start)
	# would otherwise compile the dependencies again wherever PYTHONDONTWRITEBYTECODE is set.
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --compile-bytecode --extra dev --python $(BIN)/python
	@touch $@

services: ## Start the machine's PostgreSQL and Redis if they are installed but stopped
	@.ci/services

promtool: $(STAMP) ## promtool (from Debian's prometheus package) for the alert rule tests
	@.ci/promtool $(BIN)

wrk: $(STAMP) ## wrk (from Debian's wrk package) for the webhook benchmark's load
	@.ci/wrk $(BIN)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy benchmarks

# Bytecode of the sources is cached under $(VENV)/pycache, never beside them, and kept between
# runs even where PYTHONDONTWRITEBYTECODE is set: the end-to-end tests start a hundred Python
# processes, and each compiled every module again (a third of an `a2n up` start-up here).
pytest: $(STAMP)
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache \
		$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

bench: $(STAMP) wrk ## Print event store, save ceiling, projection, rebuild, live lag, cache, load generator, webhook, SQL-per-run, audit page and memory figures (see benchmarks/RESULTS.md)
	$(BIN)/python benchmarks/event_store.py
	$(BIN)/python benchmarks/save_ceiling.py
	$(BIN)/python benchmarks/definition_cache.py
	$(BIN)/python benchmarks/executions.py
	$(BIN)/python benchmarks/rebuild_speed.py
	$(BIN)/python benchmarks/live_lag.py
	$(BIN)/python benchmarks/code_sandbox.py
	$(BIN)/python benchmarks/event_chain.py
	$(BIN)/python benchmarks/load_check.py
	$(BIN)/python benchmarks/webhooks.py
	$(BIN)/python benchmarks/statements.py
	$(BIN)/python benchmarks/audit_pages.py
	$(BIN)/python benchmarks/memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
