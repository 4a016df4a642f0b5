# Every target bootstraps .venv on its own: a fresh clone needs nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test lint typecheck docs docs-check pytest fuzz demo clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

# The README's test command, and what CI runs.
test: lint typecheck docs-check pytest

lint: $(INSTALLED)
	$(BIN)/ruff check statemodel adapters tests
	$(BIN)/ruff format --check statemodel adapters tests

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict statemodel adapters

docs: $(INSTALLED)
	$(BIN)/python -m adapters.docgen

docs-check: $(INSTALLED)
	$(BIN)/python -m adapters.docgen --check

pytest: $(INSTALLED)
	$(BIN)/pytest

# The Hypothesis suites with the `long` profile (nightly): more and longer runs; a failure prints
# the seed and a @reproduce_failure blob, and .hypothesis/ replays it.
fuzz: $(INSTALLED)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/test_model_stateful.py -p no:randomly

demo:
	@echo "make demo arrives with issue 7 (the local service on an embedded moto server)." >&2
	@exit 2

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
