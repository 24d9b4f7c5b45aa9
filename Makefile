# The two set-up commands of the README are `make quickstart` and `make test`.
# Both create .venv when missing. torch is installed first, pinned to the CPU wheel this
# machine carries, so that the project's torch range is already satisfied and pip never
# pulls CUDA packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install quickstart test test-fast examples lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

quickstart: install
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/quickstart.sh

test: install
	$(BIN)/python -m pytest -n 2 --dist worksteal -q

# Every test that trains nothing: what to run after each change (under a minute).
test-fast: install
	$(BIN)/python -m pytest -n 2 --dist worksteal -q -m "not slow"

# The example plugin packages built, installed into a fresh environment beside ftreg's, tested, used.
examples: install
	PYTHON=$(BIN)/python bash scripts/check_examples.sh

lint: install
	$(BIN)/ruff check ftreg bench scripts examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/strategy_memory.py
	$(BIN)/python bench/generate_latency.py

clean:
	rm -rf $(VENV) build *.egg-info
