# Two commands do everything: `make run` and `make test`. Each sets itself up first:
# a virtual environment in .venv, the dependencies, and the built-in offline models.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint setup bench package package-test clean

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
	$(BIN)/ruff check app specialists tests bench packaging
	$(BIN)/ruff format --check app specialists tests bench packaging
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
	$(BIN)/python bench/peak_memory.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/gui.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/transcript.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python bench/source_viewer.py

# The installable app for this OS in dist/Cadre (PyInstaller onedir; see packaging/README.md),
# checked by the frozen app's own --self-test. Slow (minutes): not part of `make test`.
package: $(STAMP)
	nice -n 10 $(BIN)/python packaging/build.py

# Build, then smoke-test the frozen app (CLI, routing, starter answer, local API) and print its
# size by component and its start-up time.
package-test: package
	$(BIN)/python packaging/smoke.py
	$(BIN)/python bench/package.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
