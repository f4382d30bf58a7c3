"""``<data dir>/crm-dev.pid``: which processes a run of ``crm-dev`` started, for the next run.

Parent-death signals stop a killed supervisor's children, but a child that was stopped (SIGSTOP),
hung, or started by an older ``crm-dev`` can outlive it. The next run on the same data directory
reads this file and stops what is left before it starts anything.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from crm_devstack.processes import Identity, describe, stop_strays

log = logging.getLogger("crm.stack")

NAME = "crm-dev.pid"


class AlreadyRunning(RuntimeError):
    """Another live ``crm-dev`` uses the same data directory."""


class RunFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / NAME

    def record(self, pids: Mapping[str, int]) -> None:
        """Write this supervisor and its children's pids (atomically: a reader sees old or new)."""
        entries = {"supervisor": Identity.of(os.getpid())}
        entries.update({name: Identity.of(pid) for name, pid in pids.items()})
        body = {name: [i.pid, i.started] for name, i in entries.items() if i is not None}
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(body, indent=1))
        os.replace(partial, self.path)

    def recorded(self) -> dict[str, Identity]:
        try:
            body = json.loads(self.path.read_text())
            return {name: Identity(int(pid), int(started)) for name, (pid, started) in body.items()}
        except (OSError, ValueError, TypeError):
            return {}

    def clean_up_previous_run(self) -> None:
        """Stop what a previous run left; refuse if that run's supervisor is still alive."""
        recorded = self.recorded()
        supervisor = recorded.pop("supervisor", None)
        if supervisor and supervisor.pid != os.getpid() and supervisor.alive():
            raise AlreadyRunning(
                f"crm-dev is already running on {self.path.parent} as {describe(supervisor.pid)}; "
                "stop it first (Ctrl-C in its terminal, or kill it)"
            )
        # PostgreSQL is stopped by its own data directory's lock file (EmbeddedPostgres.start),
        # with its fast shutdown rather than SIGTERM's wait for clients.
        recorded.pop("postgres", None)
        left = {name: i for name, i in recorded.items() if i.alive()}
        if left:
            log.warning(
                "stopping what the previous run left: %s",
                ", ".join(f"{name} (pid {i.pid})" for name, i in left.items()),
            )
            stop_strays(left.values())
        self.remove()

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
