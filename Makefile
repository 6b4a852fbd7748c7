# SynPref Studio. `make run` starts the app with demo data and users; `make test` runs the suite.
# `make install` installs what the app needs to run (requirements.txt); `make install-dev` adds what
# development and tests need (requirements-dev.txt). Nothing compiles: every locked package is a wheel.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install install-dev check-wheels run web worker llm test lint fmt bench clean

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(VENV)/bin/python
	$(PIP) install -q --only-binary=:all: -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt requirements-nodeps.txt
	$(PIP) install -q --only-binary=:all: -r requirements-dev.txt
	$(PIP) install -q --only-binary=:all: --no-deps -r requirements-nodeps.txt
	touch $@

# Every locked requirement must install from a wheel on any x86-64 machine (the Docker image builds
# on python:3.11-slim, which has no compiler). Resolves the locks without installing anything.
check-wheels:
	bash scripts/check_wheels.sh

# The local setup opts in to a generated secret key kept in var/secret_key and plain-HTTP cookies
# (DEBUG stays off; see docs/security.md). Production sets SECRET_KEY instead.
run web worker test: export SYNPREF_DEV := 1

# Web server and a real Celery worker (all queues, with beat for claim expiry); one Ctrl+C stops both
# cleanly (devtools/run_dev.py: one SIGTERM each, a warm shutdown, then a kill after 30 s).
run: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py seed_demo_history
	$(PY) manage.py load_corpus --demo
	@echo "SynPref Studio on http://$(HOST):$(PORT)/  (log in as alice / synpref-demo; see README)"
	@$(PY) -m devtools.run_dev --host $(HOST) --port $(PORT)

web: install
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(VENV)/bin/celery -A config worker -B -Q celery,gpu,sandbox --loglevel INFO --schedule var/celerybeat-schedule

# A local OpenAI-compatible LLM (SmolLM2-135M-Instruct via `transformers serve`, offline) for trying
# AI assist: LLM_BASE_URL=http://127.0.0.1:8011/v1 and LLM_MODEL as printed. Development only.
LLM_PORT ?= 8011
llm: install-dev
	$(PY) -m devtools.local_llm serve --port $(LLM_PORT)

# Tests keep their SQLite files and broker folders under var/test, apart from the dev data of `make run`.
test: install-dev
	$(PY) manage.py makemigrations --check --dry-run
	VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest -n $${PYTEST_WORKERS:-2}

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	$(PY) bench/run_all.py

clean:
	rm -rf var
