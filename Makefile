# Image compression pipeline: local-first development for an S3-triggered JPEG compressor on AWS.
# `make` (or `make help`) lists every target.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
# MiniStack (BACKEND=ministack) runs in a venv of its own on Python 3.13, the Lambda runtime's version.
MINISTACK_VENV := .venv-ministack
PYTHON313 ?= $(shell for p in python3.13 $(HOME)/.pyenv/versions/3.13*/bin/python3.13; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null && { echo $$p; break; }; done)
BACKEND ?= auto
# HOT_RELOAD=1: local-up runs the function live from lambda/ (a saved change takes effect at the next invocation).
HOT_RELOAD ?=
# PERSIST=1 (or LocalStack's name, PERSISTENCE=1): local-down keeps the data (objects, messages, logs) for the next
# local-up PERSIST=1; local-reset forgets it.
PERSISTENCE ?=
PERSIST ?= $(PERSISTENCE)
# DEBUG=1: local-up makes the function's worker wait for a debugger (debugpy) on 127.0.0.1:$(DEBUG_PORT) (embedded only).
DEBUG ?=
DEBUG_PORT ?= 5678
# ENFORCE_IAM=1 (default) / 0 and IAM_SOFT_MODE=1, LocalStack's names: local-up judges every call the function makes as
# AWS does / checks nothing / logs each denial and lets the call through. Passed to LocalStack too (its paid tiers).
ENFORCE_IAM ?=
IAM_SOFT_MODE ?=
PYTEST_ARGS ?=
# make test runs the suite on this many pytest-xdist workers (mostly waiting on stacks, so more than the cores);
# tests that share a stack or a module's fixture run on one worker (tests/conftest.py, xdist_group).
TEST_WORKERS ?= 4
# make check runs the unit tests (CPU-bound) on one worker per core.
CHECK_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
# Our own .tf files (tflocal's generated localstack_providers_override.tf and .terraform/ are not ours to format).
TF_FILES = $(shell find terraform -name '*.tf' ! -name 'localstack_providers_override.tf' ! -path '*/.terraform/*')

# Offline Terraform: a directory laid out as a filesystem mirror (registry.terraform.io/hashicorp/aws/...).
# Exported so every terraform/tflocal call below (and the tests) picks it up.
export TF_PROVIDER_MIRROR
# A TF_CLI_CONFIG_FILE that points at a missing file only makes every terraform command warn: drop it.
ifneq ($(TF_CLI_CONFIG_FILE),)
ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
endif
export DISABLE_DEPRECATION_NOTICE := 1

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target> [VAR=value]\n\nTargets:\n"} \
		/^[a-zA-Z0-9_.-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@printf "\nVariables: BACKEND=auto|embedded|ministack|localstack  HOT_RELOAD=1 (local-up)  TF_PROVIDER_MIRROR=<dir>\n           PERSIST=1 or PERSISTENCE=1, LocalStack's name (local-up: local-down keeps the data; local-reset forgets it)\n           DEBUG=1 DEBUG_PORT=<port> (local-up: the function waits for a debugger on 127.0.0.1:5678, embedded only)\n           ENFORCE_IAM=1|0 IAM_SOFT_MODE=1 (local-up: IAM enforced, the default | off | denials logged, calls let through)\n           LAMBDA_ARCH=x86_64|arm64  BACKEND_CONFIG=<file> (deploy-aws)  AUTO_APPROVE=1 (deploy-aws)\n           PREFIX=<p> TARGET=local|aws FORCE=1 DRY_RUN=1 (backfill)  TARGET=local|aws (redrive)  KEYS=<keys> (reprocess)\n           KEY=<key> EVENT=s3|batch TARGET=local|aws (invoke)  TARGET=local|aws (iam-report)\n           TEST_WORKERS=<n> (test)  PYTEST_ARGS=<args> (test, check)\n"

# The venv is a file target: rebuilt when the dependency list or the lock changes.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python >= 3.11 or run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: $(PYTHON) is older than 3.11; run make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=69" wheel
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e ".[dev]"
	@touch $@

$(CHECKOV_VENV)/.installed: requirements/checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements/checkov.lock
	@touch $@

# Python 3.13 from PATH or pyenv (a pyenv shim that points at another version does not count).
$(MINISTACK_VENV)/.installed: requirements/ministack.lock
	@[ -n "$(PYTHON313)" ] || { echo "error: MiniStack needs Python 3.13 (python3.13 on PATH or ~/.pyenv/versions/3.13*); install it (pyenv install 3.13, or apt-get install python3.13) or run make PYTHON313=/path/to/python3.13" >&2; exit 1; }
	rm -rf $(MINISTACK_VENV)
	$(PYTHON313) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --upgrade pip
	$(MINISTACK_VENV)/bin/pip install --quiet --no-deps -r requirements/ministack.lock
	$(MINISTACK_VENV)/bin/pip check
	@touch $@

.PHONY: install
install: $(VENV)/.installed $(CHECKOV_VENV)/.installed $(MINISTACK_VENV)/.installed ## Create .venv (project, tests, CLI), .venv-checkov and .venv-ministack

.PHONY: lint
lint: $(VENV)/.installed ## ruff check + format check, terraform fmt check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	terraform fmt -check $(TF_FILES)

.PHONY: fmt
fmt: $(VENV)/.installed ## Format Python (ruff) and Terraform (terraform fmt)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
	terraform fmt $(TF_FILES)

.PHONY: check
check: $(VENV)/.installed ## The fast lane before every commit (about a minute): lint, format check, unit tests, terraform validate
	$(MAKE) --no-print-directory lint
	$(PY) -m ops validate
	$(VENV)/bin/pytest tests/unit -q -n $(CHECK_WORKERS) $(PYTEST_ARGS)

.PHONY: test
test: install ## Run the whole suite: lint, unit, Terraform checks, integration, browser
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder $(PYTEST_ARGS)

.PHONY: test-unit
test-unit: $(VENV)/.installed ## Run the offline unit tests only
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

.PHONY: test-faults
test-faults: $(VENV)/.installed ## Run the fault-injection suite only; writes the reliability table to build/reliability.md
	$(VENV)/bin/pytest tests/faults $(PYTEST_ARGS)

.PHONY: build
build: $(VENV)/.installed ## Build build/lambda.zip and build/layer.zip (no Docker; reproducible)
	$(PY) -m tools.build

.PHONY: layer-docker
layer-docker: $(VENV)/.installed ## Build build/layer.zip the seed's way, in Docker (needs a Docker engine; LAMBDA_ARCH=x86_64|arm64)
	PY=$(PY) bash layer/build-docker.sh

.PHONY: local-up
local-up: build ## Start the local cloud (BACKEND=auto|embedded|ministack|localstack, HOT_RELOAD=1, PERSIST=1 or PERSISTENCE=1: keep data across local-down, DEBUG=1 DEBUG_PORT=5678, ENFORCE_IAM=0|1, IAM_SOFT_MODE=1), apply the stack, start the dashboard
	@if [ "$(BACKEND)" = ministack ]; then $(MAKE) --no-print-directory $(MINISTACK_VENV)/.installed; fi
	ENFORCE_IAM="$(ENFORCE_IAM)" IAM_SOFT_MODE="$(IAM_SOFT_MODE)" $(PY) -m ops up --backend $(BACKEND)$(if $(filter 1 yes true on,$(HOT_RELOAD)), --hot-reload)$(if $(filter 1 yes true on,$(PERSIST)), --persist, --no-persist)$(if $(filter 1 yes true on,$(DEBUG)), --debug --debug-port $(DEBUG_PORT))

.PHONY: local-down
local-down: $(VENV)/.installed ## Stop everything local-up started and forget the local state (keeps the snapshot; with PERSIST=1 on, saves the data first)
	$(PY) -m ops down

.PHONY: local-reset
local-reset: $(VENV)/.installed ## local-down without saving, and forget the snapshot and the data PERSIST=1 kept: the next local-up starts from scratch
	$(PY) -m ops reset

.PHONY: local-status
local-status: $(VENV)/.installed ## Show what the local cloud is running, the stack outputs, whether persistence is on and what it stores, the IAM mode and its denials
	$(PY) -m ops status

.PHONY: dashboard
dashboard: $(VENV)/.installed ## Run the Streamlit dashboard in the foreground on http://localhost:8501
	$(PY) -m ops dashboard

.PHONY: deploy-aws
deploy-aws: build ## Deploy to real AWS with plain terraform (needs AWS credentials and terraform/envs/aws/terraform.tfvars)
	$(PY) -m ops.deploy_aws deploy

.PHONY: destroy-aws
destroy-aws: $(VENV)/.installed ## Destroy the real AWS stack
	$(PY) -m ops.deploy_aws destroy

# backfill: PREFIX=<key prefix>, TARGET=local|aws, FORCE=1 (also objects with a current outcome), DRY_RUN=1 (count only).
TARGET ?= local
PREFIX ?=
FORCE ?=
DRY_RUN ?=

.PHONY: backfill
backfill: $(VENV)/.installed ## Process the JPEGs already in the source bucket (PREFIX=, TARGET=local|aws, FORCE=1, DRY_RUN=1)
	$(VENV)/bin/image-compressor backfill --target "$(TARGET)" --prefix "$(PREFIX)"$(if $(filter 1 yes true on,$(FORCE)), --force)$(if $(filter 1 yes true on,$(DRY_RUN)), --dry-run)

.PHONY: reprocess
reprocess: $(VENV)/.installed ## Run failed images through the function again and wait for their outcomes (KEYS="a.jpg b.jpg", TARGET=local|aws)
	@[ -n "$(KEYS)" ] || { echo 'error: name the failed images: make reprocess KEYS="photos/a.jpg photos/b.jpg" (keys as in the failed bucket; the dashboard'"'"'s Failed page lists them)' >&2; exit 2; }
	$(VENV)/bin/image-compressor reprocess --target "$(TARGET)" $(KEYS)

.PHONY: invoke
invoke: $(VENV)/.installed ## Run the function once on an object of the source bucket; show result, REPORT and log (KEY=<key>, EVENT=s3|batch, TARGET=local|aws)
	@[ -n "$(KEY)" ] || { echo 'error: name the object: make invoke KEY=photos/a.jpg [EVENT=s3|batch] (a key of the source bucket; the dashboard'"'"'s History page lists them)' >&2; exit 2; }
	$(VENV)/bin/image-compressor invoke --target "$(TARGET)" --event "$(or $(EVENT),s3)" "$(KEY)"

.PHONY: iam-report
iam-report: $(VENV)/.installed ## What the function's role grants against what it really used during this run on the embedded cloud; flags unused grants, lists denied calls (TARGET=local)
	$(VENV)/bin/image-compressor iam-report --target "$(TARGET)"

.PHONY: redrive
redrive: $(VENV)/.installed ## Replay every event in the dead-letter queue through the function (TARGET=local|aws, default local)
	$(VENV)/bin/image-compressor redrive --target "$(TARGET)"

.PHONY: bench-corpus
bench-corpus: $(VENV)/.installed ## Fetch the corpus packages once (pip download / apt-get download; nothing installed)
	$(PY) -m bench --fetch-corpus

.PHONY: bench
bench: bench-corpus ## Full benchmarks: writes bench/results/latest.json, report.md and plots
	$(PY) -m bench

.PHONY: bench-quick
bench-quick: bench-corpus ## Quick benchmarks (under 5 minutes), same outputs
	$(PY) -m bench --quick

.PHONY: clean
clean: ## Remove build artifacts and caches (keeps .venv)
	rm -rf build .pytest_cache .ruff_cache test-artifacts

.PHONY: distclean
distclean: clean ## Remove everything generated, venvs included
	rm -rf $(VENV) $(CHECKOV_VENV) $(MINISTACK_VENV) .local
