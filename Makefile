# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed here.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)

.PHONY: install run test lint typecheck pytest bench clean

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

install: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen --all-packages

run: install
	CRM_ENVIRONMENT=development $(UV) run crm-dev --data-dir data

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: install
	$(UV) run mypy libs/src devstack/src services/customer/src services/engagement/src services/scoring/src gateway/src

pytest: install
	$(UV) run pytest

test: lint typecheck pytest

bench: install
	$(UV) run python bench/pipeline.py
	$(UV) run python bench/gateway.py
	$(UV) run python bench/service.py
	$(UV) run python bench/load.py

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
