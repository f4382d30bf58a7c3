"""Audit entries of committed writes that the database could not take at once.

A write the service has committed must be answered with its real status: a 503 would invite the
client to retry and so repeat the write. When the audit insert fails after such a write, its
entries go to a file on the gateway's local disk (fsynced before the answer leaves) and are
moved into the audit table in the background once the database is back, also after a restart.
An outbox table would not help: it lives in the same database that just failed.

Replicas on one host may share the directory: a file is claimed by renaming it, so each entry
is written to the table once. Reads are never spooled: they fail closed before disclosure. A
service's worker's reads handed to the intake (intake.py) are, as the worker uses them only
once they are kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_gateway.audit.models import AuditEntry
from crm_libs import process_alive

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_CLAIMED = ".claimed-"


def default_directory(database_url: str) -> Path:
    """One directory per audit database, so stacks sharing a machine never mix their entries."""
    name = hashlib.sha256(database_url.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"crm-gateway-audit-spool-{name}"


class AuditSpool:
    def __init__(
        self,
        *,
        directory: Path,
        sessionmaker: async_sessionmaker[AsyncSession],
        retry_seconds: float,
    ) -> None:
        self._directory = directory
        self._sessionmaker = sessionmaker
        self._retry_seconds = retry_seconds

    async def keep(self, rows: list[dict[str, Any]]) -> None:
        """Store audit rows (JSON-ready) durably on local disk until :meth:`drain` records them."""
        await asyncio.to_thread(self._write, orjson.dumps(rows))

    def _write(self, data: bytes) -> None:
        self._directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        partial = self._directory / f".{name}.partial"
        with partial.open("wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        # Renamed into place only once whole: the drainer never reads half a file.
        partial.rename(self._directory / f"{name}{_SUFFIX}")
        self._sync_directory()

    def _sync_directory(self) -> None:
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def pending(self) -> list[Path]:
        if not self._directory.is_dir():
            return []
        return sorted(self._directory.glob(f"*{_SUFFIX}"))

    async def drain(self) -> int:
        """Record every spooled file this replica can claim; returns how many entries."""
        self._release_abandoned_claims()
        recorded = 0
        for path in self.pending():
            claimed = path.with_name(f"{path.name}{_CLAIMED}{os.getpid()}")
            try:
                path.rename(claimed)
            except FileNotFoundError:
                continue  # another replica took it
            try:
                rows = orjson.loads(claimed.read_bytes())
                async with self._sessionmaker() as session, session.begin():
                    session.add_all([_entry(row) for row in rows])
            except Exception:
                claimed.rename(path)
                raise
            claimed.unlink()
            recorded += len(rows)
        return recorded

    def _release_abandoned_claims(self) -> None:
        """Files claimed by a process that died before recording them are pending again."""
        if not self._directory.is_dir():
            return
        for claimed in self._directory.glob(f"*{_CLAIMED}*"):
            pid = int(claimed.name.rpartition("-")[2])
            if pid != os.getpid() and not process_alive.alive(pid):
                original = claimed.name.partition(_CLAIMED)[0]
                try:
                    claimed.rename(claimed.with_name(original))
                except FileNotFoundError:
                    continue

    async def run(self) -> None:
        """Drain now and then until cancelled (the first time at start)."""
        while True:
            try:
                if recorded := await self.drain():
                    log.warning(
                        "spooled audit entries recorded", extra={"fields": {"entries": recorded}}
                    )
            except Exception as exc:
                log.warning(
                    "spooled audit entries still waiting for the database",
                    extra={"fields": {"files": len(self.pending()), "error": repr(exc)}},
                )
            await asyncio.sleep(self._retry_seconds)


def _entry(row: dict[str, Any]) -> AuditEntry:
    return AuditEntry(**{**row, "at": datetime.fromisoformat(row["at"])})
