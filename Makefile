# Jiandu: two commands on a fresh machine — `make run` and `make test`.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
DATA     ?= .data
REPLICAS ?= 1
DEMO     ?=
PYTEST   := $(BIN)/pytest -q -p no:cacheprovider

.PHONY: run test lint typecheck browser clean-data clean bench bench-full chaos fuzz asyncapi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: the whole platform on the embedded default (noida-db + SecantusDB); Ctrl-C stops it
## (DEMO=0: no demo feed)
run: $(STAMP)
	$(BIN)/jiandu run --data-dir $(DATA) --replicas $(REPLICAS) $(if $(filter 0 no false,$(DEMO)),--no-demo)

## test: lint, type-check and the whole suite against real embedded Kafka and MongoDB
test: $(STAMP) lint typecheck browser
	$(PYTEST)

lint: $(STAMP)
	$(BIN)/ruff check shared services devtools tests

typecheck: $(STAMP)
	$(BIN)/mypy shared services devtools

# Debian's chromium for the console browser test (never a downloaded browser).
browser:
	@(command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy) || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium fonts-wqy-zenhei >/dev/null 2>&1)) || \
	    echo "chromium could not be installed: the browser test will be skipped"; \
	  else echo "chromium missing and not root: the browser test will be skipped"; fi; }

## bench: end-to-end benchmark + raw baselines on the embedded servers (JSON + PNG in bench/)
bench: $(STAMP)
	$(BIN)/jiandu bench --out bench/report.json --replicas 1,2

## bench-full: the same with 100,000 documents in every collection first (about 30 minutes here)
bench-full: $(STAMP)
	$(BIN)/jiandu bench --out bench/report-full.json --replicas 1 --prefill 100000

## chaos: the long fault-injection run (CI runs the short form inside `make test`)
chaos: $(STAMP)
	JIANDU_CHAOS_EVENTS=5000 $(PYTEST) -m chaos tests/system

## fuzz: the long bad-input run (CI runs the short form inside `make test`)
fuzz: $(STAMP)
	JIANDU_FUZZ_EXAMPLES=2000 $(PYTEST) tests/fuzz

asyncapi: $(STAMP)
	$(BIN)/jiandu asyncapi --out docs/asyncapi

clean-data:
	rm -rf $(DATA)

clean: clean-data
	rm -rf $(VENV) *.egg-info
