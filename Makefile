# The two set-up commands of the README are `make quickstart` and `make test`.
# Both create .venv when missing. torch is installed first, pinned to the CPU wheel this
# machine carries, so that the project's torch range is already satisfied and pip never
# pulls CUDA packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: install quickstart test test-fast examples lint bench bench-quick clean

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

# Every benchmark beside its baseline: bench/results/<machine>-<date>.json, bench/plots/ and BENCHMARKS.md.
bench: install
	$(BIN)/python -m bench

# The same suite at tiny sizes, one repetition, into a scratch folder: it checks the suite works, times nothing.
bench-quick: install
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) build *.egg-info
