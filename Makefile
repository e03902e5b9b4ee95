# Two commands on a fresh machine: `make repro` (the pipeline) and `make test`.
VENV   ?= .venv
PYTHON ?= python3
# A CUDA build of torch that runs on CPU too; this machine's pip serves it from local disk.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed
PLUGINS := $(wildcard plugins/*/pyproject.toml)
# Every distribution's version, for Python 3.10+ on any platform (uv's universal resolution):
# a fresh machine gets the versions CI tested. `make lock` re-resolves it.
LOCK   := requirements.lock

.PHONY: install lock repro test lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(PLUGINS) $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(LOCK) --upgrade pip setuptools
	$(BIN)/python -m pip install -q -c $(LOCK) $(TORCH)
	$(BIN)/python -m pip install -q -c $(LOCK) -e ".[test,ray]" $(addprefix -e ,$(dir $(PLUGINS)))
	touch $@

lock:  ## re-resolve requirements.lock from pyproject.toml (torch kept at $(TORCH))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q uv
	printf '%s\n' $(TORCH) > $(VENV)/torch-pins.txt
	$(BIN)/uv pip compile pyproject.toml --extra test --extra ray --universal --python-version 3.10 \
		-c $(VENV)/torch-pins.txt -o $(LOCK) --quiet

repro: install  ## dvc repro on the built-in default (long-tailed MNIST digits)
	PATH="$(BIN):$$PATH" dvc repro

test: install  ## the test suite (unit, conformance, end to end)
	PATH="$(BIN):$$PATH" python -m pytest -q

lint: install
	$(BIN)/python -m ruff check augment plugins pipelines tests benchmarks

clean:
	rm -rf $(VENV) data models reports metrics plots .dvc/cache .dvc/tmp
