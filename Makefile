# densharp developer commands. `make demo` and `make test` each set up .venv from scratch when needed.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
DEMO := demo_out

.PHONY: setup demo test lint test-slow bench clean

setup: $(VENV)/.installed

# torch is pinned to the local CPU wheel: an open-ended torch requirement would pull a multi-GB CUDA build
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[ml,plot,dev]"
	touch $@

demo: setup
	bash scripts/demo.sh $(BIN) $(DEMO)

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

test: setup lint
	$(BIN)/densharp --help > /dev/null
	OMP_NUM_THREADS=2 $(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
