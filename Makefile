# Two commands on a fresh machine: `make run` and `make test`. Everything else is installed here.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)

.PHONY: install run test lint typecheck pytest bench clean run-packages test-packages

$(TOOLS)/bin/uv:
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

# Bytecode compiled once here, as the image does (UV_COMPILE_BYTECODE): a process started
# without it compiles every module it imports (an import's row-check processes, a third of
# their start), and none writes it back where PYTHONDONTWRITEBYTECODE is set.
install: $(if $(findstring $(TOOLS),$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen --all-packages --compile-bytecode
	$(UV) run --frozen python -m compileall -q -j 0 libs/src devstack/src gateway/src \
	    services/customer/src services/engagement/src services/scoring/src

# Debian packages: scoring's report draws its Chinese labels with Noto Sans CJK (`run` and
# `test`); its test drives Debian's Chromium (`test`; Playwright's own browser download is never
# used). Installed quietly where missing, as root (CI is); otherwise a clear failure naming them.
RUN_DEBS := fonts-noto-cjk
TEST_DEBS := $(RUN_DEBS) chromium
define debian_packages
	@missing="$$(for p in $(1); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done)"; missing="$$(echo $$missing)"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages: $$missing; install them as root:" \
	      "apt-get install -y --no-install-recommends $$missing" >&2; exit 1; \
	  fi; \
	fi
endef

run-packages:
	$(call debian_packages,$(RUN_DEBS))

test-packages:
	$(call debian_packages,$(TEST_DEBS))

run: install run-packages
	CRM_ENVIRONMENT=development $(UV) run crm-dev --data-dir data

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck: install
	$(UV) run mypy libs/src devstack/src services/customer/src services/engagement/src services/scoring/src gateway/src

pytest: install test-packages
	$(UV) run pytest

test: lint typecheck pytest

bench: install
	$(UV) run python bench/pipeline.py
	$(UV) run python bench/gateway.py
	$(UV) run python bench/service.py
	$(UV) run python bench/load.py

clean:
	rm -rf .venv $(TOOLS) .pytest_cache .ruff_cache .mypy_cache
