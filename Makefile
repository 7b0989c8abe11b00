# Two commands take a fresh machine (Python 3.11, Node 20) to a running platform or a
# passing test suite. Both create or reuse .venv and install only what changed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 7071

.PHONY: run test test-fast lint typecheck format venv node clean bench

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

venv: $(VENV)/.installed
node: node_modules/.installed

## Start the platform on the embedded backend: http://localhost:$(PORT)/api/v1
run: venv
	PORT=$(PORT) $(PY) -m local

## Lint, type-check and run every test, as CI does (starts Azurite itself; needs
## PostgreSQL on :5432)
test: venv node
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n 2 --dist loadgroup -q

## The loop to run every few minutes: no lint or type check, and only the tests not
## marked `slow` (over about 5 s; every module keeps its quick ones). `make test` still
## runs everything before a push.
test-fast: venv node
	$(PY) -m pytest -n 2 --dist loadgroup -q -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules .data .pytest_cache .mypy_cache .ruff_cache
