# Two commands on a fresh machine: `make demo` (a small campaign on this machine, then its report) and
# `make test`. Both create the virtual environment .venv and install the suite into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test

$(BIN)/iris-bench: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/iris-bench
	$(BIN)/iris-bench run --games Catch --seeds 2 --preset catch --campaign demo --max-parallel 2 --wait
	$(BIN)/iris-bench status --campaign demo
	$(BIN)/iris-bench report --campaign demo --baselines none --out reports/demo

test: $(BIN)/iris-bench
	$(BIN)/pytest -q
