# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs in .venv.
# TORCH_SPEC pins the CPU wheel that lies on this machine's disk so installs stay fast; elsewhere
# override it (e.g. `make test TORCH_SPEC=torch`) to get the build that fits your hardware.
# graspologic is installed without its dependencies (it pins numpy<2): fusemed only reads the files of its
# `mice` dataset (fusemed.datasets), so the tests exercise that real dataset too.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.fusemed-installed

.PHONY: install test lint demo clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip show torch >/dev/null 2>&1 || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps graspologic==3.4.4
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/fusemed demo --out demo-output

clean:
	rm -rf $(VENV) demo-output .pytest_cache
