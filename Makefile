# The two commands: `make demo` (index the sample corpus and search it) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test test-long reliability lint bench

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

# The whole default suite (what CI runs); long modes are marked `slow`.
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -m "not slow" -p no:cacheprovider

test-long: setup
	$(PY) -m pytest -q -p no:cacheprovider

# Crash (>= 100 kills), concurrency, fault and bad-input suites, long mode; figures to a file.
reliability: setup
	ANYFIND_RELIABILITY_REPORT=reliability-figures.jsonl $(PY) -m pytest tests/reliability -q -s \
		-p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check anyfind tests benchmarks

bench: setup
	$(PY) benchmarks/bench_core.py
