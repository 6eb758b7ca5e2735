# Lifebook: `make run` for the product, `make test` for the whole suite.
# Both create (once) and reuse the virtualenv in .venv/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run test bench migrate worker clean-var

install: $(VENV)/.installed

# Reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

migrate: install
	@$(BIN)/python manage.py migrate --noinput

# The product on the embedded default (SQLite + filesystem broker in var/):
# web server and a real Celery worker, started and stopped together.
run: migrate
	@DEBUG=1 $(BIN)/python manage.py load_demo --if-empty
	@echo "Lifebook: http://127.0.0.1:$(PORT)/  (Ctrl-C stops the web server and the worker)"
	@DEBUG=1 LIFEBOOK_PORT=$(PORT) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start

# The machine's PostgreSQL and Redis, as .ci/run uses them (the job tests need both); override to taste.
test: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/lifebook
test: export CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Engine speed, as ratios against baselines measured in the same run (bench/README.md).
bench: install
	$(BIN)/python bench/engine.py --json
	$(BIN)/python bench/training.py --json
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/lifebook} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/0} $(BIN)/python bench/jobs.py --json
	$(BIN)/python bench/web.py --json
	$(BIN)/python bench/demo_flow.py --json

# A GPU worker on another host (see README, "Production").
worker: install
	$(BIN)/celery -A lifebook worker --queues=$${QUEUES:-default,generate,train} --pool=solo --loglevel=INFO

clean-var:
	rm -rf var/
