"""Child processes that die with whoever started them, and stopping many processes at once.

Every child gets its own session (a terminal's Ctrl-C reaches only the supervisor, which then stops
them in order) and a parent-death signal, so a supervisor killed with SIGKILL leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PR_SET_PDEATHSIG = 1
# When hurried (a second Ctrl-C), each signal still gets this long before the next, harder one.
_HURRIED_WAIT = 1.0

T = TypeVar("T")

_libc: ctypes.CDLL | None = None


def _die_with_parent(death_signal: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to send ``death_signal`` when the parent dies.

    The kernel sends it when the *thread* that forked exits, so only the main thread's children
    get it: a child forked from a short-lived worker thread would be killed when that thread ends.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    global _libc
    if _libc is None:
        # Loaded before fork: the child between fork and exec should only make the one call.
        _libc = ctypes.CDLL(None, use_errno=True)
    libc, parent = _libc, os.getpid()

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, death_signal)
        # The parent may have died between fork and prctl; then no signal would ever come.
        if os.getppid() != parent:
            os.kill(os.getpid(), death_signal)

    return arm


def spawn(
    args: Sequence[str | os.PathLike[str]], *, death_signal: int = signal.SIGTERM, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a child in its own session that receives ``death_signal`` if we die."""
    return subprocess.Popen(
        args, start_new_session=True, preexec_fn=_die_with_parent(death_signal), **popen
    )


class StopRequested(Exception):  # noqa: N818 - a request, not an error
    """A start-up wait was cut short because the stack is being stopped."""


def stop_children(
    processes: Iterable[subprocess.Popen[bytes]],
    *,
    signals: Sequence[int],
    grace: Sequence[float],
    hurry: threading.Event | None = None,
    kill_group: bool = False,
) -> None:
    """Stop children in parallel: each signal in turn, waiting up to its grace, then SIGKILL.

    ``hurry`` (a second Ctrl-C) cuts every wait to a moment; SIGKILL is always the end, so no
    child is abandoned. ``kill_group``: that SIGKILL goes to the child's whole process group (its
    session, from :func:`spawn`), so the workers of a server killed mid-stop go with it.
    """

    def send(process: subprocess.Popen[bytes], sent: int) -> None:
        if kill_group and sent == signal.SIGKILL:
            os.killpg(process.pid, sent)
        else:
            process.send_signal(sent)

    _stop(
        list(processes),
        alive=lambda p: p.poll() is None,
        send=send,
        signals=signals,
        grace=grace,
        hurry=hurry,
    )


def stop_strays(
    strays: Iterable[Identity],
    *,
    signals: Sequence[int] = (signal.SIGTERM,),
    grace: Sequence[float] = (5.0,),
) -> None:
    """Stop processes that are not our children (a previous run's), then SIGKILL them."""

    def send(stray: Identity, sent: int) -> None:
        # SIGCONT too: a stopped process would keep any other signal pending for ever.
        os.kill(stray.pid, signal.SIGCONT)
        os.kill(stray.pid, sent)

    _stop(list(strays), alive=Identity.alive, send=send, signals=signals, grace=grace, hurry=None)


def _stop(
    targets: list[T],
    *,
    alive: Callable[[T], bool],
    send: Callable[[T, int], None],
    signals: Sequence[int],
    grace: Sequence[float],
    hurry: threading.Event | None,
) -> None:
    running = [t for t in targets if alive(t)]
    for sent, wait in [*zip(signals, grace, strict=True), (signal.SIGKILL, 5.0)]:
        for target in running:
            with contextlib.suppress(ProcessLookupError):
                send(target, sent)
        deadline = time.monotonic() + wait
        while running and time.monotonic() < deadline:
            if hurry is not None and hurry.is_set() and sent != signal.SIGKILL:
                deadline = min(deadline, time.monotonic() + _HURRIED_WAIT)
            time.sleep(0.05)
            running = [t for t in running if alive(t)]
        if not running:
            return


@dataclass(frozen=True)
class Identity:
    """A process as a pid plus its start time, so a recycled pid is never mistaken for it."""

    pid: int
    started: int  # clock ticks after boot (/proc/<pid>/stat, field 22)

    @classmethod
    def of(cls, pid: int) -> Identity | None:
        stat = stat_fields(pid)
        return cls(pid, int(stat[19])) if stat else None

    def alive(self) -> bool:
        stat = stat_fields(self.pid)
        return stat is not None and int(stat[19]) == self.started and stat[0] != "Z"


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first), or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def describe(pid: int) -> str:
    """``pid 123 (python -m uvicorn …)`` for messages to a person."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        command = "?"
    return f"pid {pid} ({command[:120]})"
