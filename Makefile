# Every target bootstraps .venv on its own: a fresh clone needs nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test lint typecheck docs docs-check pytest fuzz mutants mutation demo clean check-model bench lock \
	build-SubmitFunction build-ReconcilerFunction build-ReconcilerWorkerFunction build-ConsumerFunction \
	build-DependenciesLayer

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

# The README's test command, and what CI runs.
test: lint typecheck docs-check pytest

lint: $(INSTALLED)
	$(BIN)/ruff check statemodel adapters tests bench examples
	$(BIN)/ruff format --check statemodel adapters tests bench examples

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict statemodel adapters bench examples

docs: $(INSTALLED)
	$(BIN)/python -m adapters.docgen

docs-check: $(INSTALLED)
	$(BIN)/python -m adapters.docgen --check

pytest: $(INSTALLED)
	$(BIN)/pytest

# The Hypothesis suites with the `long` profile (nightly): more and longer runs; a failure prints
# the seed and a @reproduce_failure blob, and .hypothesis/ replays it.
fuzz: $(INSTALLED)
	HYPOTHESIS_PROFILE=long $(BIN)/pytest tests/test_model_stateful.py tests/test_fault_injection.py

# The fault-injection suite against each deliberately broken adapter: one line each, caught (by the
# check the mutant names), MISSED or ELSEWHERE (failed for another reason: not counted); then the
# consumer suite against the reference consumers and each team-wiring mutant of the inbox.
mutants: $(INSTALLED)
	$(BIN)/python -m adapters.testing.mutants
	$(BIN)/python -m adapters.testing.inbox_mutants

# The exhaustive search of the pure model at the full bound, safety and liveness, for each
# max_attempts the explorer takes, then the inbox's in both modes for each max_receives (guarded A=3
# with two messages: three outgrow this machine's memory) (docs/verification.md); a small bound and
# the mutants run inside `make test` (tests/test_explore.py, tests/test_inbox_explore.py).
check-model: $(INSTALLED)
	$(BIN)/sendguard explore --workers 3 --records 3 --faults 3 --max-attempts 1
	$(BIN)/sendguard explore --workers 3 --records 3 --faults 3 --max-attempts 2
	$(BIN)/sendguard explore --workers 3 --records 3 --faults 3 --max-attempts 3
	$(BIN)/sendguard explore --inbox transactional --workers 3 --records 3 --faults 3 --max-attempts 1
	$(BIN)/sendguard explore --inbox transactional --workers 3 --records 3 --faults 3 --max-attempts 2
	$(BIN)/sendguard explore --inbox transactional --workers 3 --records 3 --faults 3 --max-attempts 3
	$(BIN)/sendguard explore --inbox guarded --workers 3 --records 3 --faults 3 --max-attempts 1
	$(BIN)/sendguard explore --inbox guarded --workers 3 --records 3 --faults 3 --max-attempts 2
	$(BIN)/sendguard explore --inbox guarded --workers 3 --records 2 --faults 3 --max-attempts 3

# mutmut over statemodel/ with the pure tests ([tool.mutmut] in pyproject.toml), outside `make test`,
# niced, two workers: 9 min 49 s from scratch on 2 shared cores at 0443a75, 1,535 of 1,535 mutants
# killed (docs/verification.md). A survivor costs its tests' whole time (the explorer's, ~100 s) where
# a killed mutant stops at its first failing test. Resumes where it stopped; `.venv/bin/mutmut
# results` lists the survivors. Prints the score at the end.
mutation: $(INSTALLED)
	nice -n 19 $(BIN)/mutmut run --max-children 2
	$(BIN)/mutmut export-cicd-stats
	$(BIN)/python tests/mutation_score.py

# The whole service on an embedded moto server, under real HTTP faults, and a verdict (exit 1 when a
# message is orphaned, lost or duplicated without a reason, or an accepted message's effect is missing
# or applied twice). CONSUMER: the ready consumer's mode, transactional (the default), guarded, or none
# (the producer alone): `make demo CONSUMER=guarded`. `sendguard demo --help` for its options.
CONSUMER ?= transactional

demo: $(INSTALLED)
	$(BIN)/sendguard demo --consumer $(CONSUMER)

# The benchmarks: what a message costs and how fast the checks run, measured side by side in one run
# (about five minutes); writes docs/benchmarks.md and docs/benchmarks.json. Progress on stderr.
bench: $(INSTALLED)
	$(BIN)/python -m bench

# `sam build` runs these for the two functions (their Metadata: BuildMethod makefile; CodeUri is
# this directory): the two packages, and their bytecode compiled ahead of time. Lambda's /var/task is
# read-only, so without it every cold start compiles every module of ours again (`make bench`
# measures the package built this way). Unchecked hashes: the zip that carries the files to Lambda
# does not keep their times exact. LAMBDA_PYTHON must be the functions' runtime (python3.14;
# `sam build --use-container` has it): other versions' bytecode is ignored.
LAMBDA_PYTHON ?= python3.14
LAMBDA_PACKAGES := statemodel adapters

build-SubmitFunction build-ReconcilerFunction build-ReconcilerWorkerFunction build-ConsumerFunction:
	cp -R $(LAMBDA_PACKAGES) "$(ARTIFACTS_DIR)/"
	find "$(ARTIFACTS_DIR)" -name __pycache__ -type d -prune -exec rm -rf {} +
	cd "$(ARTIFACTS_DIR)" && $(LAMBDA_PYTHON) -m compileall -q --invalidation-mode unchecked-hash $(LAMBDA_PACKAGES)

# The layer's dependencies, for the functions' runtime and architecture (python3.14, arm64): exactly
# the files deploy/layer/requirements.txt pins, each checked against its hashes (--require-hashes;
# --no-deps: the lock is the whole closure, resolved for that target by `make lock`), wheels only,
# for Lambda's platform whatever the build machine's. Their bytecode is compiled as the functions'.
LAYER_LOCK := deploy/layer/requirements.txt
LAYER_PYTHON_VERSION := 3.14
LAYER_PIP_PLATFORM := manylinux2014_aarch64
LAYER_UV_PLATFORM := aarch64-manylinux2014

build-DependenciesLayer:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		--only-binary=:all: --no-compile --implementation cp --python-version $(LAYER_PYTHON_VERSION) \
		--platform $(LAYER_PIP_PLATFORM) --target "$(ARTIFACTS_DIR)/python" -r $(LAYER_LOCK)
	$(LAMBDA_PYTHON) -m compileall -q --invalidation-mode unchecked-hash "$(ARTIFACTS_DIR)/python"

# Refreshes the layer's lock from pyproject.toml's ranges: the newest releases they admit, resolved
# for the layer's Python and platform (not this machine's), every file's hash. uv, pinned here, is
# the resolver that takes a target Python and platform; pip-compile resolves for its own interpreter.
UV_VERSION := 0.13.9

lock: $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'
	$(BIN)/uv pip compile pyproject.toml --quiet --upgrade --generate-hashes \
		--python-version $(LAYER_PYTHON_VERSION) --python-platform $(LAYER_UV_PLATFORM) \
		--custom-compile-command 'make lock (uv pip compile --python-version $(LAYER_PYTHON_VERSION) --python-platform $(LAYER_UV_PLATFORM))' \
		-o $(LAYER_LOCK)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info mutants
