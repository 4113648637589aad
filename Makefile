# The two commands of the README. Both create .venv when missing and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 8

.PHONY: run test lint clean
.DEFAULT_GOAL := run

$(BIN)/snakemake: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/snakemake  ## set up, then build the whole zoo and its tables in results/
	$(BIN)/snakemake --cores $(CORES)

test: $(BIN)/snakemake  ## set up, then run the test suite
	$(BIN)/python -m pytest

lint: $(BIN)/snakemake
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
