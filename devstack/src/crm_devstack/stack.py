"""The whole system on one machine: embedded PostgreSQL, the Tansu broker, four services.

``make run`` calls :func:`main`; the end-to-end tests use :class:`LocalStack` with free ports
and a throwaway data directory.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from crm_devstack.broker import EmbeddedBroker, create_topics_sync, wait_for_port
from crm_devstack.postgres import EmbeddedPostgres
from crm_libs.events.envelope import Topics
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD

log = logging.getLogger("crm.stack")

TOPIC_PARTITIONS = 12


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

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
        self.postgres.start()
        self.postgres.wait_ready()
        for spec in SERVICES:
            if spec.database:
                self.postgres.create_database(spec.database)
        self.start_broker()
        self.migrate()

    def start_broker(self) -> None:
        self.broker.start()
        topics = [*Topics.ALL, *(Topics.dead_letter(t) for t in Topics.ALL)]
        create_topics_sync(self.broker.bootstrap, topics, partitions=TOPIC_PARTITIONS)

    def migrate(self) -> None:
        for spec in SERVICES:
            if spec.migrations_module:
                # A child process: alembic's env runs its own event loop.
                subprocess.run(
                    [sys.executable, "-m", f"{spec.migrations_module}.migrate"],
                    env=self.env_for(spec),
                    check=True,
                )

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
            }
        )
        if spec.database:
            env["CRM_DATABASE_URL"] = self.postgres.url(spec.database)
        if spec.name == "gateway":
            env["CRM_METRICS_PORT"] = str(self.ports.gateway_metrics)
        env.setdefault("CRM_BOOTSTRAP_ADMIN_PASSWORD", self.admin_password)
        env.update(self.extra_env)
        return env

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
        self.processes[key] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                spec.app_factory,
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--loop",
                "uvloop",
            ],
            env=env,
            start_new_session=True,
        )
        return key

    def stop_service(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def start_services(self) -> None:
        for spec in SERVICES:
            self.start_service(spec.name)
        for spec in SERVICES:
            self.wait_healthy(spec.name)

    def wait_healthy(self, name: str, timeout: float = 60.0) -> None:
        port = getattr(self.ports, name)
        wait_for_port("127.0.0.1", port, timeout=timeout, process=self.processes.get(name))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{name} did not become ready")

    def start(self) -> None:
        self.start_infrastructure()
        self.start_services()

    def stop(self) -> None:
        for name in list(self.processes):
            self.stop_service(name)
        self.broker.stop()
        self.postgres.stop()


def main() -> None:
    """``make run``: start everything in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run the CRM platform on this machine")
    parser.add_argument("--data-dir", default="data", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    stack = LocalStack(data_dir=args.data_dir)
    stopping = threading.Event()

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit, so Ctrl-C works even where SIGINT was ignored (a shell's background job).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        stack.start()
        password = stack.admin_password
        if password == DEV_BOOTSTRAP_ADMIN_PASSWORD:
            log.warning(
                "WARNING: the administrator 'admin' has the development password %r; "
                "set CRM_BOOTSTRAP_ADMIN_PASSWORD for anything but local development",
                password,
            )
        print(
            "\nCRM platform is up (embedded mode)\n"
            f"  gateway     {stack.url('gateway')}   API docs {stack.url('gateway')}/docs\n"
            f"  customer    {stack.url('customer')}\n"
            f"  engagement  {stack.url('engagement')}\n"
            f"  scoring     {stack.url('scoring')}\n"
            f"  postgres    {stack.postgres.url('<db>', driver='postgresql')}\n"
            f"  data        {stack.data_dir}\n"
            f"  broker      {stack.broker.bootstrap} (Tansu, memory storage)\n"
            + f"  sign in     POST /api/v1/auth/token as admin / {password}\n"
            + "Press Ctrl-C to stop.",
            flush=True,
        )
        while not stopping.is_set():
            for name, process in stack.processes.items():
                if process.poll() is not None:
                    log.error("%s exited with %s; restarting it", name, process.returncode)
                    stack.start_service(name)
                    break
            stopping.wait(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("\nstopping…", flush=True)
        stack.stop()
        print("stopped.", flush=True)
