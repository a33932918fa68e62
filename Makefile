# spoolcron: every command a user or CI needs. Each target builds what it uses itself
# (virtualenvs under .venv/, uWSGI compiled by pip), so a fresh clone needs only Python and a C compiler.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV_DIR ?= .venv
# The test matrix. A row is a virtualenv: its interpreter version and its Django.
ROWS ?= py311-django52 py312-django61
PYVER_py311-django52 := 3.11
# Django 5.2 gets the django-tasks backport; 6.1 has django.tasks itself.
DJANGO_py311-django52 := Django>=5.2,<5.3 django-tasks>=0.12
PYVER_py312-django61 := 3.12
DJANGO_py312-django61 := Django>=6.1,<6.2
# The row used for the demo, lint, type checks and benchmarks.
DEV_ROW ?= py311-django52
DEV := $(VENV_DIR)/$(DEV_ROW)/bin
PYTEST_ARGS ?=

# An interpreter per version: found on PATH or in pyenv, or given as e.g. PYTHON_3_12=/usr/bin/python3.12.
python_for = $(or $(PYTHON_$(subst .,_,$(1))),$$(tools/pick-python $(1)))

.PHONY: help test lint typecheck pytest demo bench soak clean
help:
	@echo "make demo    run the example project"
	@echo "make test    lint, type-check and run the test suite on every matrix row ($(ROWS))"
	@echo "make bench   run the benchmarks against Celery beat, APScheduler and the bare spooler, write benchmarks/RESULTS.md"
	@echo "make soak    the 30-minute soak: two instances on PostgreSQL (SPOOLCRON_TEST_DATABASE_URL=postgresql://..., or CI=true), mixed entries and one-off jobs; SPOOLCRON_SOAK_MINUTES=N for a shorter run"
	@echo "make clean   remove the virtualenvs and caches"

$(VENV_DIR)/%/.installed: setup.cfg pyproject.toml
	rm -rf $(VENV_DIR)/$*
	@test -n "$(PYVER_$*)" || { echo "unknown matrix row '$*'; rows: py311-django52 py312-django61" >&2; exit 2; }
	py="$(call python_for,$(PYVER_$*))" && test -n "$$py" && "$$py" -m venv $(VENV_DIR)/$*
	$(VENV_DIR)/$*/bin/python -m pip install --quiet --upgrade pip
	$(VENV_DIR)/$*/bin/python -m pip install --quiet -e '.[test,uwsgi]' $(foreach req,$(DJANGO_$*),'$(req)')
	touch $@

lint: $(VENV_DIR)/$(DEV_ROW)/.installed
	$(DEV)/ruff check .
	$(DEV)/ruff format --check .
	$(DEV)/python -m docutils --halt=warning README.rst /dev/null
	$(DEV)/python -m docutils --halt=warning ARCHITECTURE.rst /dev/null
	$(DEV)/lint-imports

typecheck: $(VENV_DIR)/$(DEV_ROW)/.installed
	$(DEV)/mypy

pytest: $(foreach row,$(ROWS),$(VENV_DIR)/$(row)/.installed)
	@set -e; for row in $(ROWS); do \
	    echo "=== $$row: $$($(VENV_DIR)/$$row/bin/python -c 'import sys, django; print("Python", sys.version.split()[0], "Django", django.get_version())')"; \
	    $(VENV_DIR)/$$row/bin/python -m pytest $(PYTEST_ARGS); \
	done

test: lint typecheck pytest

demo: $(VENV_DIR)/$(DEV_ROW)/.installed
	$(DEV)/python example_project/run_demo.py --port $(or $(DEMO_PORT),8000)

# The peers the benchmarks compare with live only in the dev row's virtualenv.
$(VENV_DIR)/$(DEV_ROW)/.bench-installed: $(VENV_DIR)/$(DEV_ROW)/.installed
	$(DEV)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV_DIR)/$(DEV_ROW)/.bench-installed
	$(DEV)/python -m benchmarks $(BENCH_ARGS)

soak: $(VENV_DIR)/$(DEV_ROW)/.installed
	SPOOLCRON_SOAK=1 $(DEV)/python -m pytest tests/faults -m soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
