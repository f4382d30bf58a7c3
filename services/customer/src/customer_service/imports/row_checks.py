"""The processes that check an import's rows.

Checking a customer row is Python work (phones, dates, pinyin, encryption, the COPY tuple and
the event), some fifty microseconds each. In the service's own process it shared the one
interpreter lock with the event loop that writes the chunks, publishes their events and serves
requests, and every system call the checks made (the randomness of an id or a nonce) handed the
lock over and waited to get it back. Here a pool of processes checks the next chunks while the
service writes the one before.

The pool is started by the first job that needs it (a sheet longer than a chunk), never with the
service: a service that never imports starts no process. Until its processes are up (``ready``)
the job checks its chunks itself, one at a time (imports/worker.py). It is shut down when the
import worker finds no job left and when the service stops. Its processes run at a lower priority
(``NICENESS``), ignore SIGINT (Ctrl-C at a terminal reaches a whole process group; the service
stops them itself) and the kernel sends them SIGTERM if the service dies (``PR_SET_PDEATHSIG``),
so none outlives it.
"""

import asyncio
import contextlib
import ctypes
import functools
import gc
import logging
import multiprocessing
import os
import pickle
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
# The checks run behind everything else on the machine: the service's requests, the writing
# of the chunk before (its database backend) and the events' relay. They keep up in what is
# left, being several chunks ahead, and staff using the service while a store imports its
# spreadsheets do not wait for them. Not far behind, though: at 10 the consumers that take
# the import's events (at the default priority) left them a tenth of a core, less than the
# writer needs checked (some 40 % of a core on two), and the writer waited for them.
NICENESS = 5


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class RowChecks:
    """A process pool for pure row work, started on first use."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes or default_processes()
        self._pool: ProcessPoolExecutor | None = None
        self._starting: list[Future[None]] = []

    @property
    def started(self) -> bool:
        return self._pool is not None

    @property
    def ready(self) -> bool:
        """Started, and every process up with what checking needs loaded."""
        return self._pool is not None and all(f.done() for f in self._starting)

    def pids(self) -> list[int]:
        """The pool's processes (none before it is started)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def start(self) -> None:
        """Start the processes and have each load what checking needs (pinyin's tables, the
        numbering plan), while the caller reads its sheet."""
        if self._pool is not None:
            return
        self._pool = ProcessPoolExecutor(
            max_workers=self.processes,
            # Not fork: the service has threads (the broker clients', the event loop's), whose
            # locks a forked child could inherit held.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=(os.getpid(),),
        )
        # Processes are started as tasks come: one each now.
        self._starting = [self._pool.submit(_ready) for _ in range(self.processes)]
        log.info("import row checks started", extra={"fields": {"processes": self.processes}})

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in one of the processes (started if need be); its
        arguments and result travel pickled."""
        self.start()
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        call = functools.partial(_pickled, function, *args, **kwargs)
        return _unpickled(await loop.run_in_executor(self._pool, call))

    def close(self) -> None:
        """Stop the processes (a check under way is abandoned: its chunk is not written)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            log.info("import row checks stopped")


def _start_process(service_pid: int) -> None:
    """In each process: leave Ctrl-C to the service, die with it, and load what checking needs
    (pinyin's tables, the numbering plan) while the service reads its sheet."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICENESS)
    # Not on Linux, the pipe to the service closing ends the process instead.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    # The service may have died before the call: then no signal would ever come.
    if os.getppid() != service_pid:
        os.kill(os.getpid(), signal.SIGTERM)
    # What is loaded now lives as long as the process, so the collector has nothing to find in
    # it: paused, it does not walk the hundreds of thousands of objects pinyin's dictionaries
    # are read into again and again as they grow (a sixth of a process's start).
    gc.disable()
    try:
        from customer_service.customers import phones, pinyin
        from customer_service.imports import customer_checks  # noqa: F401 - loaded now

        pinyin.name_search_keys("王芳")
        phones.parse_phone("138 1234 5678")
    finally:
        gc.enable()
    # Nor need it walk all that each time a chunk's thousands of new objects set it off (an
    # eighth of the checks' time).
    gc.freeze()


def _ready() -> None:
    """A task that starts a process."""


def _pickled(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> bytes:
    """The result pickled here, so that the service receives bytes (see ``_unpickled``).

    The collector is paused meanwhile: a chunk's checks make tens of thousands of objects
    that form no cycle, and each of the collections they set off walked all the young ones
    (a tenth of the checks' CPU); what a chunk leaves behind is collected once it resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.dumps(function(*args, **kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        if enabled:
            gc.enable()


def _unpickled(blob: bytes) -> Any:
    """A chunk's result unpickled with the collector paused: its tens of thousands of new
    containers would set it off dozens of times over the service's whole heap (15 µs a row,
    against 2.5 without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        return pickle.loads(blob)  # noqa: S301 - bytes from our own child process
    finally:
        if enabled:
            gc.enable()
