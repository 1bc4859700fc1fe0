# Two commands do everything: `make run` and `make test`. Each sets itself up first:
# a virtual environment in .venv, the dependencies, and the built-in offline models.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/cadre setup

run: setup
	$(BIN)/cadre

lint: $(STAMP)
	$(BIN)/ruff check app specialists tests bench
	$(BIN)/ruff format --check app specialists tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: $(STAMP)
	$(MAKE) --no-print-directory lint
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/downloads.py
	$(BIN)/python bench/routing.py
	$(BIN)/python bench/retrieval.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
