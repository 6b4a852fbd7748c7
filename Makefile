# SynPref Studio. `make run` starts the app with demo data and users; `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run web worker test lint fmt bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

# Web server and a real Celery worker (all queues, with beat for claim expiry); Ctrl+C stops both.
run: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py seed_demo
	$(PY) manage.py load_corpus --demo
	@echo "SynPref Studio on http://$(HOST):$(PORT)/  (log in as alice / synpref-demo; see README)"
	@trap 'kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A config worker -B -Q celery,gpu,sandbox --concurrency 2 --loglevel INFO \
		--schedule var/celerybeat-schedule & \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

web: install
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: install
	$(VENV)/bin/celery -A config worker -B -Q celery,gpu,sandbox --loglevel INFO --schedule var/celerybeat-schedule

# Tests keep their SQLite files and broker folders under var/test, apart from the dev data of `make run`.
test: install
	$(PY) manage.py makemigrations --check --dry-run
	VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest -n $${PYTEST_WORKERS:-2}

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf var
