# Jiandu: two commands on a fresh machine — `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DATA   ?= .data
REPLICAS ?= 1

.PHONY: run test lint typecheck clean-data clean bench chaos asyncapi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/jiandu run --data-dir $(DATA) --replicas $(REPLICAS)

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check shared services tests

typecheck: $(STAMP)
	$(BIN)/mypy shared services

asyncapi: $(STAMP)
	$(BIN)/jiandu asyncapi --out docs/asyncapi

clean-data:
	rm -rf $(DATA)

clean: clean-data
	rm -rf $(VENV) *.egg-info
