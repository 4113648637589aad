# The two commands of the README. Both create .venv when missing and install the project.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test test-fast bench bench-training gpu-check lint format clean browser slurm mutation replicate
.DEFAULT_GOAL := run

$(BIN)/snakemake: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/snakemake  ## set up, then build the whole zoo and its tables in results/ (all cores)
	$(BIN)/snakemake --cores $(CORES)

# The paper's study on MNIST, sized for one 2-core workstation (docs/replication.md), then its
# report and figures into docs/replication-mnist.md. MIRROR: a folder or URL holding the
# official files as <mirror>/mnist/... (empty: data/mnist/ or a download).
MIRROR ?=
replicate: $(BIN)/snakemake  ## the paper's study on MNIST (config/replicate.yaml), its report into docs/
	$(BIN)/snakemake --cores $(CORES) --configfile config/replicate.yaml \
	    $(if $(MIRROR),--config data='{mirror: $(MIRROR)}')
	$(BIN)/weightzoo report --to docs/replication-mnist.md

test: $(BIN)/snakemake browser slurm  ## set up, then run the test suite
	$(BIN)/python -m pytest

test-fast: $(BIN)/snakemake  ## the inner loop: every test but the end-to-end (e2e) runs
	$(BIN)/python -m pytest -m "not e2e"

# Mutation testing of the statistics modules (pyproject [tool.mutmut]); slow, not in CI.
# `mutmut results` lists the survivors, `mutmut show <name>` one of them.
mutation: $(BIN)/snakemake  ## mutate controls, resampling, inference and ladder; score their tests
	$(BIN)/mutmut run
	$(BIN)/mutmut results

# Headless Chromium for the dashboard test (Debian's package; needs root to install).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and apt-get needs root: the dashboard test will be skipped"; fi; }

# SLURM and munge for the single-node test cluster of tests/slurm (Debian's packages; the
# test starts and stops the daemons itself, as root).
slurm:
	@command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; \
	  else echo "slurm-wlm or munge is missing and apt-get needs root: the SLURM test will be skipped"; fi; }

# Benchmarks against reference baselines (docs/performance.md); writes benchmarks/results.md.
# The `bench` extra adds WeightWatcher, the reference of the statistics benchmark.
$(VENV)/.bench-installed: $(BIN)/snakemake pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed  ## measure everything (about 35 minutes on 2 cores, plus the imports section; writes benchmarks/results.md)
	$(BIN)/python benchmarks/run.py

bench-training: $(VENV)/.bench-installed  ## only the training sections (a GPU is used when present)
	$(BIN)/python benchmarks/run.py --training-only --output benchmarks/results-training.md

# The prepared GPU check (docs/performance.md): CUDA tests, throughput and a projection of the
# paper-scale zoo on one card into benchmarks/results-gpu.md; without a GPU, a small CPU
# version. Needs only torch, numpy, scipy, pyarrow, polars and pyyaml: no install, no network.
GPU_CHECK_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:  ## CUDA tests, throughput, projection on one GPU (a small CPU version without one)
	PYTHONPATH=src $(GPU_CHECK_PYTHON) benchmarks/gpu_check.py --output benchmarks/results-gpu.md

lint: $(BIN)/snakemake  ## what CI checks before the tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

format: $(BIN)/snakemake  ## format and fix what lint would flag (then review the diff)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt Snakefile rules/

clean:
	rm -rf results .snakemake

# The manual in docs/ as a site in site/ (mkdocs-material from the dev extra; offline, strict).
.PHONY: docs
docs: $(BIN)/snakemake  ## build docs/ into site/ (open site/index.html)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
