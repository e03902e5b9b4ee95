# Two commands on a fresh machine: `make repro` (the pipeline) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
# A CUDA build of torch that runs on CPU too; this machine's pip serves it from local disk.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)

.PHONY: install repro test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[test]" $(addprefix -e ,$(dir $(PLUGINS)))
	touch $@

repro: install  ## dvc repro on the built-in default (long-tailed MNIST digits)
	PATH="$(BIN):$$PATH" dvc repro

test: install  ## the test suite (unit, conformance, end to end)
	PATH="$(BIN):$$PATH" python -m pytest -q

lint: install
	$(BIN)/python -m ruff check augment plugins pipelines tests benchmarks

clean:
	rm -rf $(VENV) data models reports metrics plots .dvc/cache .dvc/tmp
