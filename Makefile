# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit install bench clean asyncapi faults

run: $(STAMP)  ## migrate, declare topology, start all four services + mail sink, seed demo data
	$(BIN)/hrcase run

# The suite runs on PYTEST_WORKERS pytest-xdist workers, each a run of its own (database,
# vhost, broker users); a whole test file stays on one worker (its module's system starts
# once). Files go out in collection order (no reordering by size), so each worker runs a
# subsequence of the one-process order: a module never meets state in its worker's database
# that it would not meet in a one-process run. Two workers fit the connection budget (README
# "Connection budget"); fewer start when the free slots fit fewer; 0 = no workers.
PYTEST_WORKERS ?= 2

# The fault suite at scale (marker `faults`) runs after the parallel suite, alone on the
# machine: it times kills and restarts of its own broker node and Postgres cluster under a
# steady load, which two busy workers beside it would only blur (a few minutes).
test: $(STAMP) lint typecheck  ## the whole suite against the real RabbitMQ and Postgres
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not faults"
	$(BIN)/pytest -p no:xdist -m faults tests/fault/test_faults_at_scale.py

faults: $(STAMP)  ## only the fault suite at scale (kill -9, broker and Postgres restarts)
	$(BIN)/pytest -p no:xdist -m faults tests/fault/test_faults_at_scale.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared services hrcase

# Pure domain and application tests on fakes (the unit-of-work seam): seconds, and the
# unreachable URLs prove they need no database and no broker.
UNIT_TESTS := services/*/tests/unit tests/unit
unit: $(STAMP)
	DATABASE_URL=postgresql://nobody@127.0.0.1:9/none RABBITMQ_URL=amqp://nobody:x@127.0.0.1:9/ \
		$(BIN)/pytest -q $(UNIT_TESTS)

install: $(STAMP)

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

asyncapi: $(STAMP)  ## regenerate docs/asyncapi.yaml from the declared subscribers and publishers
	$(BIN)/hrcase asyncapi --write docs/asyncapi.yaml

# One report (README "Performance"): cases/s end to end, latency flat out and at half rate,
# CPU and syscalls per case per service, RSS, the raw aio-pika baseline and a 2-replica run.
# BENCH_ARGS=--quick for a shorter run; --help for the rest.
BENCH_ARGS ?=
bench: $(STAMP)  ## end-to-end throughput and latency against a raw aio-pika baseline
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

.PHONY: bench-analytics
bench-analytics: $(STAMP)  ## the HR dashboard's views over 1,000,000 cases (DuckDB vs plain Postgres)
	$(BIN)/python -m bench.analytics

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
