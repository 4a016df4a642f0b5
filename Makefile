# Every target bootstraps .venv on its own: a fresh clone needs nothing but Python >= 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install test lint typecheck docs docs-check pytest fuzz mutants mutation demo clean check-model bench lock \
	build-SubmitFunction build-ReconcilerFunction build-ReconcilerWorkerFunction build-ConsumerFunction \
	build-DependenciesLayer sam-cli sam-build

# pip's progress, one line per ten packages it collects (unbuffered, so it comes as it goes), then
# the count it installs; its warnings and errors (stderr) pass as they are, and its exit status is kept.
PIP_PROGRESS := awk '/^Collecting /{n++; p=$$2; sub(/[<>=!~;@[].*/, "", p); l=l " " p} \
	/^Collecting / && n % 10 == 0 {print "  " n ":" l; l=""; fflush()} \
	/^Installing collected/{if (l != "") print "  " n ":" l; print "  installing " n+0 " packages"; fflush()}'

$(INSTALLED): pyproject.toml
	@echo "creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "installing sendguard and its dev dependencies into $(VENV) (about a minute; once)"
	@rm -f $(VENV)/.pip-failed
	@{ PYTHONUNBUFFERED=1 $(BIN)/python -m pip install --disable-pip-version-check --progress-bar off \
		-e '.[dev]' || echo $$? > $(VENV)/.pip-failed; } | $(PIP_PROGRESS)
	@if [ -f $(VENV)/.pip-failed ]; then echo "pip failed: see its errors above" >&2; exit 1; fi
	@touch $(INSTALLED)
	@echo "installed: $(VENV)"

install: $(INSTALLED)

# The README's test command, and what CI runs.
test: lint typecheck docs-check pytest

lint: $(INSTALLED)
	$(BIN)/ruff check statemodel adapters tests bench examples deploy
	$(BIN)/ruff format --check statemodel adapters tests bench examples deploy

typecheck: $(INSTALLED)
	$(BIN)/mypy --strict statemodel adapters bench examples deploy

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

# `sam build` runs these (each resource's Metadata: BuildMethod makefile) with ARTIFACTS_DIR set, in a
# copy of the resource's CodeUri, the repository root (in it with `sam build --build-in-source`).
# A function's package is its handlers' import closure: the modules the template's Handler values
# can import, found by deploy/build.py from the code itself (not a list), so `adapters.testing`,
# `cli`, `local`, `ops` and `docgen` stay out; its bytecode is compiled by the functions' runtime,
# LAMBDA_PYTHON, where this machine has it (unchecked hashes: the zip that carries the files to
# Lambda does not keep their times exact; /var/task is read-only, so without bytecode each cold start
# compiles what it imports), and without it the build says so on stderr and goes on: the package is
# as valid (SAM shows a build's stdout, and its stderr only when it fails: hence 2>&1). `make bench`
# measures the package built this way. One rule for every function of the template: a new function
# only adds its name.
LAMBDA_PYTHON ?= python3.14
FUNCTIONS_TEMPLATE := deploy/template.yaml

build-SubmitFunction build-ReconcilerFunction build-ReconcilerWorkerFunction build-ConsumerFunction:
	$(PYTHON) deploy/build.py function --template $(FUNCTIONS_TEMPLATE) --python $(LAMBDA_PYTHON) \
		"$(ARTIFACTS_DIR)" 2>&1

# The layer's dependencies, for the functions' runtime and architecture (python3.14, arm64): exactly
# the files deploy/layer/requirements.txt pins, each checked against its hashes (--require-hashes;
# --no-deps: the lock is the whole closure, resolved for that target by `make lock`), wheels only,
# for Lambda's platform whatever the build machine's. `prune` keeps only the import path: pip also
# writes jmespath's script bin/jp.py, whose first line names this machine's interpreter, so the layer's
# bytes (and SAM's upload checksum) would differ with the machine. Their bytecode as the functions'.
LAYER_LOCK := deploy/layer/requirements.txt
LAYER_PYTHON_VERSION := 3.14
LAYER_PIP_PLATFORM := manylinux2014_aarch64
LAYER_UV_PLATFORM := aarch64-manylinux2014

build-DependenciesLayer:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		--only-binary=:all: --no-compile --implementation cp --python-version $(LAYER_PYTHON_VERSION) \
		--platform $(LAYER_PIP_PLATFORM) --target "$(ARTIFACTS_DIR)/python" -r $(LAYER_LOCK)
	$(PYTHON) deploy/build.py prune "$(ARTIFACTS_DIR)/python"
	$(PYTHON) deploy/build.py compile --python $(LAMBDA_PYTHON) "$(ARTIFACTS_DIR)/python" 2>&1

# The AWS SAM CLI, in a virtualenv of its own: it pins click and boto3 to exact releases (click==8.1.8,
# where mutmut needs >= 8.4.2), so it cannot share the dev extra's. tests/test_sam_build.py uses it
# (or a `sam` on PATH); `make sam-build` runs that test, which `make test` skips.
SAM_VENV := $(VENV)/sam-cli
SAM_CLI_VERSION := 1.170.0

sam-cli: $(SAM_VENV)/bin/sam

$(SAM_VENV)/bin/sam:
	@echo "installing the AWS SAM CLI $(SAM_CLI_VERSION) into $(SAM_VENV) (about a minute; once)"
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'aws-sam-cli==$(SAM_CLI_VERSION)'

sam-build: $(INSTALLED) $(SAM_VENV)/bin/sam
	$(BIN)/pytest -m sam tests/test_sam_build.py

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
