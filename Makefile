# pe_bench: every target creates the virtualenv from pyproject.toml when it is missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed
# The full suite's results (committed: the public scoreboard) and the CI check's (scratch).
BENCH_OUT   ?= results/bench/full
BENCH_FLAGS ?= --workers 2
CI_OUT      ?= results/bench/ci
# The time-to-optimum comparison with the field's benchmark (committed: docs/field.md).
FIELD_OUT      ?= results/bench/field
FIELD_LONG_OUT ?= results/bench/field-long
# The SBML Test Suite's semantic cases (read from ../shared, never copied).
SBML_SUITE  ?= ../shared/sbml-test-suite/semantic
SUITE_FLAGS ?= --workers 2

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint format gradient-check bench-objective reference-llh \
        docs docs-serve bench bench-ci baseline plots scoreboard peers field field-plots field-long-suite field-long field-compare \
        sbml-suite bench-large bench-linsolve bench-batch coverage hierarchical

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev,docs]'
	touch $(DOCS_STAMP)

install: $(STAMP) ## create .venv and install pe_bench with its pinned dependencies

run: $(STAMP) ## main job: the cVAE recommender on cortisol, then its table and plot
	$(BIN)/pebench run cortisol --method cvae --out results/runs --resume
	$(BIN)/pebench table results/runs --problem cortisol
	$(BIN)/pebench plot results/runs --problem cortisol --out results/runs/cortisol.png

test: $(STAMP) ## the whole test suite (slow real-problem tests included), on both cores
	$(BIN)/pytest -n 2 --dist loadscope

test-fast: $(STAMP) ## tests without the slow real-problem ones
	$(BIN)/pytest -m "not slow" -n 2 --dist loadscope

docs: $(DOCS_STAMP) ## the documentation site: generated blocks current (tools/gen_docs.py --check), mkdocs build --strict into site/
	$(BIN)/python tools/gen_docs.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(DOCS_STAMP) ## serve the documentation site on 127.0.0.1:8000 (rebuilds on change)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check pe_bench tests benchmarks tools
	$(BIN)/ruff format --check pe_bench tests benchmarks tools

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix pe_bench tests benchmarks tools
	$(BIN)/ruff format pe_bench tests benchmarks tools

gradient-check: $(STAMP) ## every shared problem's gradient, component-wise against central differences at nominal, best found and random points (results/gradient_check.tsv; resumes)
	$(BIN)/python benchmarks/gradient_check.py

bench-objective: $(STAMP) ## objective timings on every shared problem (prints a table)
	$(BIN)/python benchmarks/bench_objective.py

reference-llh: $(STAMP) ## nominal llh of every shared problem against REFERENCE.tsv (prints a table)
	$(BIN)/python benchmarks/reference_llh.py

bench: $(STAMP) ## full suite benchmarks/full.toml (every supported shared problem x all methods) into $(BENCH_OUT); resumes, delete the folder to start over
	$(BIN)/pebench bench benchmarks/full.toml --out $(BENCH_OUT) --resume $(BENCH_FLAGS)

bench-ci: $(STAMP) ## CI regression check: benchmarks/ci.toml against benchmarks/baseline.json (exit 1 on regression)
	rm -rf $(CI_OUT)
	$(BIN)/pebench bench benchmarks/ci.toml --out $(CI_OUT) --check benchmarks/baseline.json

baseline: $(STAMP) ## re-run benchmarks/ci.toml and rewrite benchmarks/baseline.json from it
	rm -rf $(CI_OUT)
	$(BIN)/pebench bench benchmarks/ci.toml --out $(CI_OUT) --check benchmarks/baseline.json --update-baseline

plots: $(STAMP) ## waterfall + convergence plots of the last `make bench` (one PNG per problem, overview.png) into docs/img/scoreboard
	$(BIN)/pebench plot $(BENCH_OUT) --suite benchmarks/full.toml --out docs/img/scoreboard

scoreboard: $(STAMP) ## regenerate docs/scoreboard.md from $(BENCH_OUT)
	$(BIN)/python benchmarks/scoreboard.py --results $(BENCH_OUT) --suite benchmarks/full.toml \
		--plots docs/img/scoreboard --readme docs/scoreboard.md

field: $(STAMP) ## every method x 13 field problems x 3 seeds, 130 CPU-s per run (benchmarks/field.toml) into $(FIELD_OUT); resumes
	$(BIN)/pebench bench benchmarks/field.toml --out $(FIELD_OUT) --resume $(BENCH_FLAGS)

field-long-suite: $(STAMP) ## write benchmarks/field_long.toml from the finished 130-s run: the best two methods per unsolved problem
	$(BIN)/python benchmarks/field_compare.py --results $(FIELD_OUT) --suite benchmarks/field.toml \
		--write-long benchmarks/field_long.toml

field-long: $(STAMP) ## the best two methods per unsolved problem again with 1296 CPU-s (benchmarks/field_long.toml, see field-long-suite) into $(FIELD_LONG_OUT)
	$(BIN)/pebench bench benchmarks/field_long.toml --out $(FIELD_LONG_OUT) --resume $(BENCH_FLAGS)

field-compare: $(STAMP) ## pe_bench beside the field (benchmarks/field_compare.py): the tables of docs/field.md
	$(BIN)/python benchmarks/field_compare.py --results $(FIELD_OUT) --suite benchmarks/field.toml \
		--long-results $(FIELD_LONG_OUT) --long-suite benchmarks/field_long.toml --readme docs/field.md

field-plots: $(STAMP) ## plots of the runs beside the field (one PNG per problem, overview.png) into docs/img/field
	$(BIN)/pebench plot $(FIELD_OUT) --suite benchmarks/field.toml --out docs/img/field

hierarchical: $(STAMP) ## multistart and cVAE with --hierarchical under field.toml's budget and bars (benchmarks/hierarchical.toml) into results/bench/hierarchical, then the comparison with the plain runs of results/bench/field
	$(BIN)/pebench bench benchmarks/hierarchical.toml --out results/bench/hierarchical --resume $(BENCH_FLAGS)
	$(BIN)/python benchmarks/hierarchical_compare.py

coverage: $(STAMP) ## load every problem (shared, built-in, BioPreDyn), nominal llh vs references: the coverage table of docs/figures.md
	$(BIN)/python benchmarks/coverage.py --readme docs/figures.md

sbml-suite: $(STAMP) ## all 1821 SBML Test Suite semantic cases into results/sbml-suite.csv (summary by status and tag; ~40 min on 2 cores)
	$(BIN)/pebench sbml-suite $(SBML_SUITE) --out results/sbml-suite.csv $(SUITE_FLAGS)

bench-large: $(STAMP) ## synthetic 100-500-species networks: load / codegen / compile / per-call seconds and llh vs the exact one
	$(BIN)/python benchmarks/bench_large.py

bench-linsolve: $(STAMP) ## Rodas5's linear algebra by size (unrolled inverse, LU, banded LU): the crossover table
	$(BIN)/python benchmarks/bench_linsolve.py

bench-batch: $(STAMP) ## batched evaluation on the device JAX finds: evals/s by batch size, lanes grouped by cost, lockstep, Adam vs bare step (prints a table)
	$(BIN)/python benchmarks/bench_batch.py $(BATCH_FLAGS)

PEERS_STAMP := $(VENV)/.peers-installed
$(PEERS_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,peers]'
	touch $(PEERS_STAMP)

peers: $(PEERS_STAMP) ## pe_bench vs pyPESTO + AMICI + fides side by side (installs the [peers] extra; table + results/peers.parquet)
	$(BIN)/python benchmarks/peers/compare.py
