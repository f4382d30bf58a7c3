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
stops them itself) and each ends itself when the service ends (``_die_with``), so none outlives
it.

The processes are forks of a fork server (multiprocessing's ``forkserver``), a fresh interpreter
that loads what checking needs once (imports/check_server.py) and lives until the service exits:
each process spawned afresh loaded it all again, about half a cpu-second apiece, at every
import. The server itself holds no thread of the service's, so forking it is safe; it leaves
once the service and its processes have.
"""

import asyncio
import functools
import gc
import logging
import multiprocessing
import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from crm_libs import process_alive

log = logging.getLogger(__name__)

T = TypeVar("T")

# The checks run behind everything else on the machine: the service's requests, the writing
# of the chunk before (its database backend) and the events' relay. They keep up in what is
# left, being several chunks ahead, and staff using the service while a store imports its
# spreadsheets do not wait for them. Not far behind, though: at 10 the consumers that take
# the import's events (at the default priority) left them a tenth of a core, less than the
# writer needs checked (some 40 % of a core on two), and the writer waited for them.
NICENESS = 5
# The module whose import is the fork server's loading.
_PRELOAD = "customer_service.imports.check_server"


def default_processes() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class RowChecks:
    """A process pool for pure row work, started on first use."""

    def __init__(self, processes: int = 0) -> None:
        self.processes = processes or default_processes()
        self._pool: ProcessPoolExecutor | None = None
        # One task per process, once they are asked for (``_start_processes``).
        self._starting: Future[list[Future[None]]] = Future()

    @property
    def started(self) -> bool:
        return self._pool is not None

    @property
    def ready(self) -> bool:
        """Started, and every process up with what checking needs loaded."""
        starting = self._starting
        return (
            self._pool is not None
            and starting.done()
            and starting.exception() is None
            and all(f.done() for f in starting.result())
        )

    def pids(self) -> list[int]:
        """The pool's processes (none before it is started)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def start(self) -> None:
        """Start the processes (and the fork server, which loads what checking needs: pinyin's
        tables, the numbering plan), while the caller reads its sheet."""
        if self._pool is not None:
            return
        # Not a fork of the service: it has threads (the broker clients', the event loop's),
        # whose locks a forked child could inherit held. Forks of the fork server instead.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_PRELOAD])
        self._pool = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=context,
            initializer=_start_process,
            initargs=(os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)),
        )
        self._starting = Future()
        threading.Thread(
            target=_start_processes,
            args=(self._pool, self.processes, self._starting),
            name="import-row-checks-start",
            daemon=True,
        ).start()
        log.info("import row checks started", extra={"fields": {"processes": self.processes}})

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in one of the processes (started if need be); its
        arguments and result travel pickled."""
        self.start()
        assert self._pool is not None
        await asyncio.wrap_future(self._starting)  # the processes asked for (or why not)
        loop = asyncio.get_running_loop()
        call = functools.partial(_pickled, function, *args, **kwargs)
        return _unpickled(await loop.run_in_executor(self._pool, call))

    def close(self) -> None:
        """Stop the processes (a check under way is abandoned: its chunk is not written)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            # Once its processes are asked for: until then the thread asking holds the pool's
            # lock, waiting for the fork server, and a shutdown here would wait with it.
            self._starting.add_done_callback(
                lambda _: pool.shutdown(wait=False, cancel_futures=True)
            )
            log.info("import row checks stopped")


def _start_processes(
    pool: ProcessPoolExecutor, processes: int, starting: Future[list[Future[None]]]
) -> None:
    """Ask for the pool's processes, in a thread of their own: processes are started as tasks
    come, one each now, and the first waits for the fork server to load (half a second or more
    on a busy machine), which would hold up the service's event loop."""
    try:
        starting.set_result([pool.submit(_ready) for _ in range(processes)])
    except BaseException as exc:  # noqa: BLE001 - the pool shut down meanwhile, or no server
        starting.set_exception(exc)


def _start_process(service_pid: int, service_priority: int) -> None:
    """In each process: leave Ctrl-C to the service, die with it, and run behind it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(service_pid)
    # The fork server runs behind the service already (check_server.py): never ahead of it.
    behind = min(service_priority + NICENESS, 19)
    if os.getpriority(os.PRIO_PROCESS, 0) < behind:
        os.setpriority(os.PRIO_PROCESS, 0, behind)


def _die_with(service_pid: int) -> None:
    """End this process when the service ends, however it ends (SIGKILL included).

    Its parent is the fork server, not the service, and neither notices the service's death on
    its own: each process holds the ends of the pipes the service would close (the task queue's
    included, so a read never meets their end) and the fork server waits for every process to
    leave. A thread here waits on the service's pid file descriptor, readable once it exits."""
    try:
        service: int | None = os.pidfd_open(service_pid)
    except ProcessLookupError:
        os.kill(os.getpid(), signal.SIGTERM)  # gone before the process started
        return
    except (OSError, AttributeError):  # not Linux 5.3 or later: asked once a second instead
        service = None

    def watch() -> None:
        if service is not None:
            select.select([service], [], [])
        else:
            while process_alive.alive(service_pid):
                time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="service-watch", daemon=True).start()


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
