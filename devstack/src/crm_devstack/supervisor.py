"""``crm-dev`` (``make run``): the whole stack in the foreground, watched, until a signal.

Ctrl-C, SIGTERM and SIGHUP (a closed terminal) stop everything in order within 15 s; a second
one stops it at once. A crashed service, broker or PostgreSQL is restarted with a growing delay,
and after too many crashes the supervisor stops the stack and says so rather than loop for ever.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType

from crm_devstack.ports import PortTaken, refuse_taken_ports
from crm_devstack.processes import StopRequested
from crm_devstack.run_file import AlreadyRunning, RunFile
from crm_devstack.stack import SERVICES, LocalStack, Ports
from crm_libs.settings import DEV_BOOTSTRAP_ADMIN_PASSWORD

log = logging.getLogger("crm.stack")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class StopSignals:
    """Turns stop signals into flags: the first asks for an orderly stop, a later one for haste.

    The handlers never raise, so a signal can interrupt no stop half-way and abandon children;
    and they only ever ``set()`` the events, which the main thread never waits on (an Event's
    lock is not re-entrant, so a handler could deadlock on it).
    """

    # `uv run` forwards the terminal's SIGINT to a child that already got it from the terminal:
    # one Ctrl-C arrives twice within moments. Only a signal after this long is a second press.
    SAME_PRESS = 0.5

    def __init__(self, stopping: threading.Event, hurry: threading.Event) -> None:
        self.stopping = stopping
        self.hurry = hurry
        self._first_at: float | None = None

    def install(self) -> None:
        # Explicit for SIGINT too, so Ctrl-C works where it was ignored (a shell's background job).
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._received)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        now = time.monotonic()
        if self._first_at is None:
            self._first_at = now
            self.stopping.set()
        elif now - self._first_at >= self.SAME_PRESS and not self.hurry.is_set():
            self.hurry.set()


@dataclass
class RestartPolicy:
    """Restart after 1 s, doubling to 30 s; give up after ``max_crashes`` within ``window``."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    max_crashes: int = 5
    window: float = 120.0


@dataclass
class Watch:
    """One supervised process: its recent crashes and when it is due to be started again."""

    policy: RestartPolicy
    crashes: deque[float] = field(default_factory=deque)
    restart_at: float | None = None

    def crashed(self, now: float) -> bool:
        """Count a crash and schedule a restart; False once the crash budget is spent."""
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - self.policy.window:
            self.crashes.popleft()
        if len(self.crashes) >= self.policy.max_crashes:
            return False
        delay = self.policy.first_delay * 2 ** (len(self.crashes) - 1)
        self.restart_at = now + min(delay, self.policy.max_delay)
        return True


class GaveUp(RuntimeError):
    """A part of the stack kept crashing."""


@dataclass(frozen=True)
class Part:
    """A watched part of the stack: its current process, and how to start it again."""

    name: str
    process: Callable[[], subprocess.Popen[bytes] | None]
    restart: Callable[[], object]

    def exit_code(self) -> int | None:
        """None while it runs; its exit code (or -1 if it has no process) once it has stopped."""
        process = self.process()
        return -1 if process is None else process.poll()


class Supervisor:
    def __init__(self, stack: LocalStack, policy: RestartPolicy) -> None:
        self.stack = stack
        self.policy = policy
        self.watches: dict[str, Watch] = {}

    def parts(self) -> list[Part]:
        stack = self.stack
        parts = [
            Part("postgres", lambda: stack.postgres.process, stack.start_postgres),
            # A memory broker comes back empty: start_broker creates the topics again.
            Part("broker", lambda: stack.broker.process, stack.start_broker),
        ]
        for spec in SERVICES:
            parts.append(
                Part(
                    spec.name,
                    partial(stack.processes.get, spec.name),
                    partial(stack.start_service, spec.name),
                )
            )
        return parts

    def watch(self, *, tick: float = 0.5) -> None:
        """Restart what dies until a stop is requested; raise GaveUp when something keeps dying."""
        parts = self.parts()
        stopping = self.stack.stopping
        while not stopping.is_set():
            for part in parts:
                watch = self.watches.setdefault(part.name, Watch(self.policy))
                now = time.monotonic()
                if watch.restart_at is None:
                    code = part.exit_code()
                    if code is not None:
                        self._crashed(part.name, watch, now, f"exited with {code}")
                elif now >= watch.restart_at:
                    watch.restart_at = None
                    log.info("restarting %s", part.name)
                    try:
                        part.restart()
                    except StopRequested:
                        return
                    except Exception as error:  # noqa: BLE001 - any failure to start is a crash
                        self._crashed(part.name, watch, time.monotonic(), f"failed: {error}")
            time.sleep(tick)  # not stopping.wait(): see StopSignals

    def _crashed(self, name: str, watch: Watch, now: float, how: str) -> None:
        if not watch.crashed(now):
            raise GaveUp(
                f"{name} {how}; {len(watch.crashes)} crashes within {self.policy.window:.0f} s, "
                "so crm-dev gives up and stops everything"
            )
        assert watch.restart_at is not None
        log.error("%s %s; restarting it in %.0f s", name, how, watch.restart_at - now)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the CRM platform on this machine")
    parser.add_argument("--data-dir", default="data", type=Path)
    defaults = Ports()
    for port in dataclasses.fields(Ports):
        option = "--" + port.name.replace("_", "-") + "-port"
        default = getattr(defaults, port.name)
        parser.add_argument(option, type=int, default=default, help=f"default {default}")
    policy = RestartPolicy()
    parser.add_argument(
        "--max-crashes",
        type=int,
        default=policy.max_crashes,
        help="crashes of one part within --crash-window after which crm-dev gives up",
    )
    parser.add_argument("--crash-window", type=float, default=policy.window, help="seconds")
    return parser.parse_args(argv)


def say(text: str) -> None:
    """Print for the person at the terminal, who may have closed it (SIGHUP): never fail."""
    with contextlib.suppress(OSError):
        print(text, flush=True)


def main(argv: list[str] | None = None) -> None:
    """``make run``: start everything in the foreground until Ctrl-C."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ports = Ports(**{p.name: getattr(args, p.name + "_port") for p in dataclasses.fields(Ports)})
    stack = LocalStack(data_dir=args.data_dir, ports=ports)
    StopSignals(stack.stopping, stack.hurry).install()
    policy = RestartPolicy(max_crashes=args.max_crashes, window=args.crash_window)
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    run_file = RunFile(stack.data_dir)
    try:
        run_file.clean_up_previous_run()
        stack.postgres.stop_stale()
        refuse_taken_ports(dataclasses.asdict(ports))
    except (AlreadyRunning, PortTaken) as error:
        log.error("crm-dev cannot start: %s", error)
        sys.exit(2)
    stack.run_file = run_file
    failed = False
    try:
        stack.start()
        announce(stack)
        Supervisor(stack, policy).watch()
    except StopRequested:
        pass
    except GaveUp as error:
        log.error("%s", error)
        failed = True
    except Exception:
        log.exception("crm-dev failed; stopping everything")
        failed = True
    finally:
        say("\nstopping… (press Ctrl-C again to stop at once)")
        stack.stop()
        run_file.remove()
        say("stopped at once (a second signal)." if stack.hurry.is_set() else "stopped.")
    if failed:
        sys.exit(1)


def announce(stack: LocalStack) -> None:
    password = stack.admin_password
    if password == DEV_BOOTSTRAP_ADMIN_PASSWORD:
        log.warning(
            "WARNING: the administrator 'admin' has the development password %r; "
            "set CRM_BOOTSTRAP_ADMIN_PASSWORD for anything but local development",
            password,
        )
    say(
        "\nCRM platform is up (embedded mode)\n"
        f"  gateway     {stack.url('gateway')}   API docs {stack.url('gateway')}/docs\n"
        f"  customer    {stack.url('customer')}\n"
        f"  engagement  {stack.url('engagement')}\n"
        f"  scoring     {stack.url('scoring')}\n"
        f"  postgres    {stack.postgres.url('<db>', driver='postgresql')}\n"
        f"  data        {stack.data_dir}\n"
        f"  broker      {stack.broker.bootstrap} (Tansu, memory storage)\n"
        + f"  sign in     POST /api/v1/auth/token as admin / {password}\n"
        + "Press Ctrl-C to stop."
    )


if __name__ == "__main__":
    main()
