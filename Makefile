# pe_bench: every target creates the virtualenv from pyproject.toml when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format bench-objective reference-llh

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install pe_bench with its pinned dependencies

run: $(STAMP) ## main job: the cVAE recommender on cortisol, then its table and plot
	$(BIN)/pebench run cortisol --method cvae --out results/runs --resume
	$(BIN)/pebench table results/runs --problem cortisol
	$(BIN)/pebench plot results/runs --problem cortisol --out results/runs/cortisol.png

test: $(STAMP) ## the whole test suite (slow real-problem tests included)
	$(BIN)/pytest

test-fast: $(STAMP) ## tests without the slow real-problem ones
	$(BIN)/pytest -m "not slow"

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check pe_bench tests benchmarks
	$(BIN)/ruff format --check pe_bench tests benchmarks

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix pe_bench tests benchmarks
	$(BIN)/ruff format pe_bench tests benchmarks

bench-objective: $(STAMP) ## objective timings on every shared problem (prints a table)
	$(BIN)/python benchmarks/bench_objective.py

reference-llh: $(STAMP) ## nominal llh of every shared problem against REFERENCE.tsv (prints a table)
	$(BIN)/python benchmarks/reference_llh.py
