# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit install bench clean asyncapi

run: $(STAMP)  ## migrate, declare topology, start all four services + mail sink, seed demo data
	$(BIN)/hrcase run

test: $(STAMP) lint typecheck unit  ## the whole suite against the real RabbitMQ and Postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared services hrcase

unit: $(STAMP)
	$(BIN)/pytest

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

asyncapi: $(STAMP)  ## regenerate docs/asyncapi.yaml from the declared subscribers and publishers
	$(BIN)/hrcase asyncapi --write docs/asyncapi.yaml

bench: $(STAMP)  ## end-to-end throughput and latency against a raw aio-pika baseline
	$(BIN)/python -m bench.e2e

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
