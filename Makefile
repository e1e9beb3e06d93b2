# The two commands of the quick start:
#   make demo   start the app on SQLite with in-process tasks and a demo tenant
#   make test   run every test (PostgreSQL and Redis on localhost when they answer)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser libraries from the npm registry, pinned and hash-checked (tools/vendor-assets.sh).
ASSETS := scrm/static/vendor/echarts/echarts.min.js

.PHONY: demo test install lint

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(ASSETS): tools/vendor-assets.sh
	bash tools/vendor-assets.sh

install: $(STAMP) $(ASSETS)

# The demo runs the local WeChat sandbox next to the app (on :8800, stopped with the app):
# the demo tenant's OA and WeCom corp are connected to it and synced, and its page
# http://127.0.0.1:8800/__fake__/ui sends real, encrypted callbacks to the app.
SANDBOX := http://127.0.0.1:8800
demo: export WECHAT_API_BASE_URL = $(SANDBOX)
demo: export WECOM_API_BASE_URL = $(SANDBOX)
demo: $(STAMP) $(ASSETS)
	mkdir -p var
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(BIN)/python -m integrations.sandbox serve --fixture demo --port 8800 \
		> var/sandbox.log 2>&1 & echo $$! > var/sandbox.pid
	for _ in $$(seq 1 50); do curl -sf $(SANDBOX)/__fake__/health >/dev/null && break; \
		sleep 0.2; done
	$(BIN)/python manage.py seed_demo
	trap 'kill $$(cat var/sandbox.pid) 2>/dev/null' EXIT INT TERM; \
		$(BIN)/python manage.py runserver 127.0.0.1:8000

test: $(STAMP) $(ASSETS)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
