# Herald: `make run` starts the whole bot, `make test` runs every test. Both set up what's missing.
SHELL := /bin/bash
APP := .venv/bin
RASA := .venv-rasa/bin

.PHONY: setup run run-scale test test-fast lint typecheck validate train bench clean

setup:
	@scripts/setup.sh

run: setup
	@$(APP)/herald migrate
	@$(APP)/herald demo-data --if-empty
	@$(APP)/herald up

# Scale-out on one machine: PostgreSQL (database created on first run) and Redis on
# localhost, Debian's nginx in front of two Rasa replicas and two action servers.
SCALE_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/herald_scale

run-scale: setup
	@deploy/install-nginx.sh
	@HERALD_DATABASE_URL=$(SCALE_DATABASE_URL) $(APP)/herald up --scale

test: setup
	@scripts/test.sh

# Unit and integration tests only: no trained model, no browser.
test-fast: setup
	@$(APP)/pytest -m "not e2e" -q

lint: setup
	@$(APP)/ruff check bot actions connectors rasa_sdk_plugins rasa_components tests benchmarks
	@$(APP)/ruff format --check bot actions connectors rasa_sdk_plugins tests benchmarks

typecheck: setup
	@$(APP)/mypy

validate: setup
	@$(APP)/python scripts/validate.py

train: setup
	@$(APP)/python -c "from bot.stack import train_model; train_model()"

bench: setup
	@scripts/bench.sh

clean:
	rm -rf var models .pytest_cache .mypy_cache .ruff_cache
