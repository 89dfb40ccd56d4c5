# The two commands: `make run` (set up and run on embedded defaults) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Tests run on PostgreSQL and Redis (DESIGN.md §4); override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test test-faults test-image setup setup-dev system-packages assets lint check pytest clean

run: setup
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	scripts/run-portal

test: setup-dev
	scripts/ensure-services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	shellcheck deployments/manifests/scripts/*.sh
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(VENV)/bin/pytest --ignore=tests/faults --ignore=tests/portal/test_containerfile.py $(PYTEST_ARGS)
	# `make run` runs on SQLite: the scan → match → summary path and the dashboard's daily counts
	# once more on it (PostgreSQL-only SQL broke the demo twice while every PostgreSQL test passed).
	CELERY_BROKER_URL=$(TEST_BROKER_URL) $(VENV)/bin/pytest -q \
		tests/images/test_matching.py tests/images/test_demo_story.py \
		tests/deployments/test_daily_counts.py

# Faults survived (README "Operations"): a broker and a database restarted under load, the
# registry down mid-push and mid-scan, a full disk, workers killed mid-scan, per-queue pools.
# Real redis-server, PostgreSQL cluster, workers and gunicorn started by the tests; ~10 min.
test-faults: setup-dev
	scripts/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(VENV)/bin/pytest -p no:cacheprovider --durations=20 tests/faults $(PYTEST_ARGS)

# The portal's own image (Containerfile, both targets) built by buildah from a bootstrapped
# Debian base: ~15 minutes, so apart from `make test`; .ci/run calls it.
test-image: setup-dev
	scripts/ensure-services
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
		$(VENV)/bin/pytest -p no:cacheprovider tests/portal/test_containerfile.py $(PYTEST_ARGS)

system-packages:
	scripts/ensure-system-packages

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

# Not --quiet: on a fresh clone this takes over a minute, and a silent minute looks hung.
$(STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	@echo "Installing the pinned Python packages into $(VENV) (about 75 s on a fresh clone)..."
	set -o pipefail; $(VENV)/bin/pip install --progress-bar off --disable-pip-version-check \
		-r requirements-dev.txt | { grep --line-buffered -E '^(Collecting|Successfully) ' || true; }
	touch $(STAMP)

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund

# Static files, and the 简体中文 catalog: locale/*/LC_MESSAGES/django.po compiled to .mo
# (build output, not committed).
assets: node_modules/.package-lock.json
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py compilemessages --ignore=.venv --ignore=node_modules --ignore=var -v0

setup: system-packages $(STAMP) assets

setup-dev: setup

clean:
	rm -rf var node_modules $(VENV)
