# PoisonLab: every target does its own set-up into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## demo: the flip attack on the default scenario, undefended vs defended, with a no-attack baseline
demo: $(STAMP)
	$(BIN)/poisonlab compare --defenses none,majority,reputation --db sqlite:///poisonlab.db \
		--json demo/results.json --chart demo/compare.png

## test: the whole suite (unit, kernels vs references, determinism, CLI, storage on SQLite and PostgreSQL)
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

## bench: performance harness (not part of the tests; crowd-kit and the tansu broker come with the test extra),
## each benchmark against its peer in the same run; writes benchmarks/results.json and prints one table
bench: $(TEST_STAMP)
	$(BIN)/python benchmarks/bench_startup.py
	$(BIN)/python benchmarks/bench_simulation.py
	$(BIN)/python benchmarks/bench_aggregation.py
	$(BIN)/python benchmarks/bench_chain.py
	$(BIN)/python benchmarks/bench_service.py
	$(BIN)/python benchmarks/summary.py

clean:
	rm -rf $(VENV) demo poisonlab.db *.egg-info
