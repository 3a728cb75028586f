# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/atpay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

# Set up, then run the main job on examples/ with the embedded default state.
demo: $(BIN)/atpay
	PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/run-examples.sh

# Lint, type-check and run the whole test suite.
test: $(BIN)/atpay
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

bench: $(BIN)/atpay
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/validate.py
	$(BIN)/python benchmarks/plan_apply.py
	$(BIN)/python benchmarks/secrets.py
	$(BIN)/python benchmarks/report.py

clean:
	rm -rf $(VENV) .atpay out test-artifacts
