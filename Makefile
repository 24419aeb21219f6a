# Forewarn: `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTANCE ?= instance

.PHONY: run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/forewarn --instance $(INSTANCE) init --demo
	@echo "  console:       http://127.0.0.1:8000/ (sign in as any demo person, one per role)"
	$(BIN)/forewarn --instance $(INSTANCE) serve --host 127.0.0.1 --port 8000

test: $(VENV)/.installed-test
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

# Benchmarks, by hand (needs wrk; DB=postgresql uses the database at BENCH_POSTGRES): see README.
DB ?= sqlite
SCALE ?= small
BENCH_POSTGRES ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench_{scale}
bench: $(VENV)/.installed
	$(BIN)/python -m bench.run --db $(DB) --scale $(SCALE) --postgres-url "$(BENCH_POSTGRES)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
