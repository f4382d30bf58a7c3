"""The whole system on one machine: embedded PostgreSQL, the Tansu broker, four services.

``make run`` runs it under :mod:`crm_devstack.supervisor`; the end-to-end tests use
:class:`LocalStack` with free ports and a throwaway data directory.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from crm_devstack.broker import EmbeddedBroker, create_topics_sync, wait_for_port
from crm_devstack.postgres import EmbeddedPostgres
from crm_devstack.processes import StopRequested, spawn, stop_children
from crm_devstack.run_file import RunFile
from crm_devstack.worker_app import APP_FACTORY_VARIABLE
from crm_libs.events.envelope import Topics
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD
from crm_libs.workers import fitting_workers

log = logging.getLogger("crm.stack")

TOPIC_PARTITIONS = 12
# How long a service may take to stop gracefully before it is killed: with the broker's and
# PostgreSQL's shutdowns after it, a whole stop stays within 15 s.
SERVICE_STOP_GRACE = 7.0
# The devstack's services, PostgreSQL and the broker share this machine's cores; a worker per
# service beyond its share only adds memory, connections and consumer-group members. Two at most:
# 4 services x 2 workers x 20 pooled connections (CRM_DATABASE_POOL_SIZE, no overflow) = 160, well
# within the embedded PostgreSQL's max_connections=300 with room for migrations and tests.
DEVSTACK_MAX_WORKERS = 2


def default_workers(environment: str) -> int:
    """Workers per service when CRM_WORKERS is not set: the cores divided between the four
    services (one on two cores), and one in tests, which run stacks side by side."""
    if environment == "test":
        return 1
    return min(DEVSTACK_MAX_WORKERS, fitting_workers(sharing=len(SERVICES)))


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    app_factory: str  # "module:function" for uvicorn --factory
    database: str | None  # None: the service keeps no database
    migrations_module: str | None = None


SERVICES = (
    ServiceSpec("customer", "customer_service.main:create_app", "crm_customer", "customer_service"),
    ServiceSpec(
        "engagement", "engagement_service.main:create_app", "crm_engagement", "engagement_service"
    ),
    ServiceSpec("scoring", "scoring_service.main:create_app", "crm_scoring", "scoring_service"),
    ServiceSpec("gateway", "crm_gateway.main:create_app", "crm_gateway", "crm_gateway"),
)


def free_port() -> int:
    """A port nothing listens on, outside the kernel's range for outgoing connections.

    A port the kernel hands out for ``bind(0)`` is an ephemeral one: once its server stops (a
    restart), any client's next connection may take it as its source port, and the restarted
    server then fails with "address already in use" for as long as that connection lives.
    """
    low, high = _ephemeral_ports()
    candidates = [p for p in range(_LOWEST_PORT, 65535) if not low <= p <= high]
    for port in random.sample(candidates, 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port outside the ephemeral range")


_LOWEST_PORT = 10000


def _ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


@dataclass
class Ports:
    postgres: int = 5432
    broker: int = 9092
    gateway: int = 8000
    customer: int = 8001
    engagement: int = 8002
    scoring: int = 8003
    gateway_metrics: int = 9100  # the gateway's Prometheus page, off its public port

    @classmethod
    def free(cls) -> Ports:
        return cls(*(free_port() for _ in range(7)))


@dataclass
class LocalStack:
    data_dir: Path
    ports: Ports = field(default_factory=Ports)
    environment: str = "development"
    extra_env: dict[str, str] = field(default_factory=dict)
    # Worker processes per service, over CRM_WORKERS and the default (default_workers).
    workers: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Set by whoever wants start-up cut short (crm-dev on a signal): waits raise StopRequested.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Set on a second signal: stop() no longer waits for graceful exits.
    hurry: threading.Event = field(default_factory=threading.Event)
    # Where crm-dev keeps the pids it started, for the next run on the same data directory.
    run_file: RunFile | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.postgres = EmbeddedPostgres(self.data_dir / "postgres", port=self.ports.postgres)
        self.broker = EmbeddedBroker(port=self.ports.broker, log_file=self.data_dir / "broker.log")

    @property
    def admin_password(self) -> str:
        """The first administrator's password: the operator's, or the development one."""
        return os.environ.get("CRM_BOOTSTRAP_ADMIN_PASSWORD", DEV_BOOTSTRAP_ADMIN_PASSWORD)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.ports, service)}"

    def database_url(self, service: str) -> str:
        spec = next(s for s in SERVICES if s.name == service)
        assert spec.database
        return self.postgres.url(spec.database)

    def start_infrastructure(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.start_postgres()
        for spec in SERVICES:
            if spec.database:
                self.postgres.create_database(spec.database)
        self.start_broker()
        self.migrate()

    def start_postgres(self) -> None:
        self.postgres.start(stopping=self.stopping)
        self.record_pids()

    def start_broker(self) -> None:
        self.broker.start(stopping=self.stopping)
        self.record_pids()
        topics = [*Topics.ALL, *(Topics.dead_letter(t) for t in Topics.ALL)]
        create_topics_sync(self.broker.bootstrap, topics, partitions=TOPIC_PARTITIONS)

    def migrate(self) -> None:
        for spec in SERVICES:
            if spec.migrations_module:
                # A child process: alembic's env runs its own event loop.
                migration = spawn(
                    [sys.executable, "-m", f"{spec.migrations_module}.migrate"],
                    env=self.env_for(spec),
                )
                try:
                    while migration.poll() is None:
                        if self.stopping.is_set():
                            raise StopRequested
                        time.sleep(0.1)
                finally:
                    stop_children([migration], signals=(signal.SIGTERM,), grace=(2.0,))
                if migration.returncode:
                    raise subprocess.CalledProcessError(migration.returncode, migration.args)

    def env_for(self, spec: ServiceSpec) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CRM_ENVIRONMENT": self.environment,
                "CRM_SERVICE_NAME": spec.name,
                "CRM_PORT": str(getattr(self.ports, spec.name)),
                "CRM_KAFKA_BOOTSTRAP": self.broker.bootstrap,
                "CRM_CUSTOMER_URL": self.url("customer"),
                "CRM_ENGAGEMENT_URL": self.url("engagement"),
                "CRM_SCORING_URL": self.url("scoring"),
                "CRM_GATEWAY_URL": self.url("gateway"),
            }
        )
        if spec.database:
            env["CRM_DATABASE_URL"] = self.postgres.url(spec.database)
        if spec.name == "gateway":
            env["CRM_METRICS_PORT"] = str(self.ports.gateway_metrics)
        env.setdefault("CRM_BOOTSTRAP_ADMIN_PASSWORD", self.admin_password)
        env.update(self.extra_env)
        return env

    def workers_for(self, name: str) -> int:
        """A service's worker processes: this stack's choice, else CRM_WORKERS, else the default."""
        if name in self.workers:
            return self.workers[name]
        configured = self.extra_env.get("CRM_WORKERS", os.environ.get("CRM_WORKERS"))
        return int(configured) if configured else default_workers(self.environment)

    def metrics_dir(self, key: str) -> Path:
        """Where a service's workers keep their Prometheus values (under several workers)."""
        return self.data_dir / "metrics" / key.replace("/", "-")

    def start_service(self, name: str, *, replica: str | None = None) -> str:
        """Start a service process; ``replica`` starts one more instance on a free port.

        Returns the key under which the process is tracked (the name, or name/replica).
        """
        spec = next(s for s in SERVICES if s.name == name)
        port = getattr(self.ports, name) if replica is None else free_port()
        env = self.env_for(spec)
        env["CRM_PORT"] = str(port)
        if replica is not None and "CRM_METRICS_PORT" in env:
            env["CRM_METRICS_PORT"] = str(free_port())
        key = name if replica is None else f"{name}/{replica}"
        workers = self.workers_for(name)
        env["CRM_WORKERS"] = str(workers)
        app_factory = spec.app_factory
        if workers > 1:
            # Values of the last run's workers (a crash, a restart) must not be added to these.
            metrics = self.metrics_dir(key)
            shutil.rmtree(metrics, ignore_errors=True)
            metrics.mkdir(parents=True)
            env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
            env[APP_FACTORY_VARIABLE] = spec.app_factory
            app_factory = "crm_devstack.worker_app:create_app"
        else:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.processes[key] = spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                app_factory,
                "--factory",
                # uvicorn's master forwards SIGINT/SIGTERM to its workers and restarts a dead one.
                "--workers",
                str(workers),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                # The gateway decides itself whose X-Forwarded-For it believes (trusted_proxies).
                "--no-proxy-headers",
                "--log-level",
                "warning",
                "--loop",
                "uvloop",
            ],
            env=env,
        )
        self.record_pids()
        return key

    def stop_service(self, name: str) -> None:
        self.stop_services([name])

    def stop_services(self, names: Iterable[str]) -> None:
        """Stop services in parallel: each stops its relay and lets its consumers finish."""
        stopping = [self.processes.pop(name) for name in list(names) if name in self.processes]
        # uvicorn's graceful shutdown on SIGINT (its master passes it on to its workers); the
        # grace keeps a whole stop within 15 s. The last resort kills the workers too.
        stop_children(
            stopping,
            signals=(signal.SIGINT,),
            grace=(SERVICE_STOP_GRACE,),
            hurry=self.hurry,
            kill_group=True,
        )
        self.record_pids()

    def start_services(self) -> None:
        for spec in SERVICES:
            self.start_service(spec.name)
        for spec in SERVICES:
            self.wait_healthy(spec.name)

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        port = getattr(self.ports, name)
        process = self.processes.get(name)
        wait_for_port("127.0.0.1", port, timeout=timeout, process=process, stopping=self.stopping)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stopping.is_set():
                raise StopRequested
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not become ready")

    def start(self) -> None:
        if self.stopping.is_set():
            raise StopRequested
        self.start_infrastructure()
        self.start_services()

    def stop(self) -> None:
        """Stop everything, in order: services, then the broker, then PostgreSQL.

        Safe to call again, and from a signal-interrupted start: each part stops what it has.
        """
        self.stop_services(list(self.processes))
        self.broker.stop(hurry=self.hurry)
        self.postgres.stop(hurry=self.hurry)
        self.record_pids()

    def pids(self) -> dict[str, int]:
        """The processes of this stack that run now, by name."""
        running = {name: p.pid for name, p in self.processes.items() if p.poll() is None}
        for name, process in (("broker", self.broker.process), ("postgres", self.postgres.process)):
            if process is not None and process.poll() is None:
                running[name] = process.pid
        return running

    def record_pids(self) -> None:
        if self.run_file is not None:
            self.run_file.record(self.pids())
