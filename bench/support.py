"""Shared helpers for the benchmarks: a throwaway stack, latency statistics, plans, statement
timings from the server log, py-spy (CPU accounting: proc_cpu.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_devstack.stack import LocalStack, Ports

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@contextlib.contextmanager
def temp_stack(prefix: str, extra_env: dict[str, str] | None = None) -> Iterator[LocalStack]:
    """A LocalStack on free ports in a temporary directory; stopped and deleted on the way out.

    Nothing is started here: the caller starts what it needs (infrastructure only, or all)."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    stack = LocalStack(data_dir=data_dir, ports=Ports.free(), extra_env=dict(extra_env or {}))
    try:
        yield stack
    finally:
        try:
            stack.stop()
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- plans ---------------------------------------------------------------------------------


def plan_indexes(plan: Any) -> set[str]:
    """The indexes an ``EXPLAIN (FORMAT JSON)`` plan reads, at any depth."""
    found: set[str] = set()
    if isinstance(plan, dict):
        if "Index Name" in plan:
            found.add(plan["Index Name"])
        for value in plan.values():
            found |= plan_indexes(value)
    elif isinstance(plan, list):
        for value in plan:
            found |= plan_indexes(value)
    return found


# --- latency -------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def percentile_ms(seconds: Iterable[float], q: float) -> float:
    """The ``q``-th percentile of timings in seconds, in milliseconds."""
    return percentile(sorted(seconds), q) * 1000


async def timed(call: Any) -> tuple[float, Any]:
    """Seconds an awaitable took, and what it gave."""
    started = time.perf_counter()
    found = await call
    return time.perf_counter() - started, found


def p50_p99_ms(seconds: Iterable[float]) -> tuple[float, float]:
    """The median and the 99th percentile of timings in seconds, in milliseconds."""
    ordered = sorted(seconds)
    return percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000


@dataclass
class LatencySummary:
    count: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")


def summarize(latencies: Sequence[float], seconds: float, errors: int = 0) -> LatencySummary:
    p50_ms, p99_ms = p50_p99_ms(latencies)
    return LatencySummary(
        count=len(latencies),
        seconds=seconds,
        p50_ms=p50_ms,
        p99_ms=p99_ms,
        errors=errors,
    )


# --- PostgreSQL statement timings from the server log ----------------------------------------

_ENTRY_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \S+ \[\d+\] ", re.M)
_DURATION = re.compile(
    r"LOG:\s+duration: ([\d.]+) ms\s+(?:(parse|bind|execute) [^:]*|statement): (.*)", re.S
)

# Statement kinds worth naming; anything else is shown by its first words.
_KINDS = (
    ('COPY "processed_event"', "claim event ids (COPY processed_event)"),
    ('COPY "purchase_fact"', "copy purchase_fact"),
    ("AS b(customer_id, store_id, timezone, purchases,", "add and rank the batch (customer_score)"),
    ("cur AS (", "classify the batch's customers (ladder, lifecycle, RFM)"),
    ("INSERT INTO processed_event", "claim event ids (processed_event)"),
    ("INSERT INTO purchase_fact", "insert purchase_fact"),
    ("INSERT INTO customer_score", "upsert customer_score"),
    ("SET net_spend_365d", "window spend update"),
    ("WITH ranked AS", "re-rank a store (window functions)"),
    ("INSERT INTO outbox_event", "stage score.changed (outbox insert)"),
    ("FROM outbox_event", "relay: claim outbox rows"),
    ("UPDATE outbox_event", "relay: mark outbox rows sent"),
    ("FROM customer_score", "lock customer_score rows"),
    ("pg_advisory_xact_lock", "lock the batch's stores (advisory)"),
    ("FROM purchase_fact", "read facts to rebuild back-dated aggregates"),
)


def _kind(statement: str) -> str:
    flat = " ".join(statement.split())
    for needle, name in _KINDS:
        if needle in flat:
            return name
    return flat[:48]


def statement_times(log_file: Path, offset: int) -> tuple[dict[str, float], dict[str, int]]:
    """Total server-side milliseconds and executions per statement kind, from ``offset`` on.

    Needs ``log_min_duration_statement = 0`` for the database of interest."""
    with log_file.open("rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    starts = [m.start() for m in _ENTRY_START.finditer(text)] + [len(text)]
    total: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for begin, end in zip(starts, starts[1:], strict=False):
        match = _DURATION.search(text, begin, end)
        if match is None:
            continue
        phase, statement = match.group(2), text[match.start(3) : end]
        kind = _kind(statement)
        total[kind] += float(match.group(1))
        if phase in (None, "execute"):
            count[kind] += 1
    return dict(total), dict(count)


# --- py-spy, when installed -----------------------------------------------------------------


def find_py_spy() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    local = Path.home() / ".local" / "bin" / "py-spy"
    return str(local) if local.exists() else None


def record_profile(pid: int, output: str, *, rate: int = 100) -> subprocess.Popen[bytes]:
    """``py-spy record`` of ``pid`` and the processes it starts, until sent SIGINT (py-spy
    writes its output then): an .svg is a flame graph, any other name the collapsed stacks,
    one per line."""
    spy = find_py_spy()
    if spy is None:
        raise SystemExit("--profile needs py-spy on PATH")
    form = "flamegraph" if output.endswith(".svg") else "raw"
    command = [spy, "record", "--subprocesses", "--pid", str(pid), "--rate", str(rate)]
    return subprocess.Popen([*command, "--output", output, "--format", form])


class PySpy:
    """``py-spy record`` on a running process, collapsed stacks summarised afterwards."""

    RATE = 100

    def __init__(self, binary: str, pid: int, out: Path) -> None:
        self.out = out
        self._t0 = time.perf_counter()
        self._process = subprocess.Popen(
            [
                binary,
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(self.RATE),
                "--format",
                "raw",
                "--nonblocking",
                "--full-filenames",
                "--nolineno",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.seconds = 0.0

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._t0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)

    def summary(self, project_markers: Sequence[str], top: int = 8) -> list[str]:
        """Each sample goes to the innermost project function on its stack (with the library
        calls it makes), or to the leaf's package when no project code is on the stack."""
        try:
            lines = self.out.read_text().splitlines()
        except OSError:
            return ["  py-spy wrote no profile"]
        samples = 0
        importing = 0
        compiling = 0
        innermost: dict[str, int] = defaultdict(int)
        self_by_package: dict[str, int] = defaultdict(int)
        for line in lines:
            stack, _, n = line.rpartition(" ")
            if not n.isdigit():
                continue
            weight = int(n)
            samples += weight
            frames = stack.split(";")
            self_by_package[_package_of(frames[-1])] += weight
            if any("importlib" in frame for frame in frames):
                importing += weight
                continue
            owner = next(
                (
                    _short_frame(frame)
                    for frame in reversed(frames)
                    if not frame.startswith("<module>")
                    and any(marker in frame for marker in project_markers)
                ),
                None,
            )
            innermost[owner or _unowned(frames)] += weight
            if any("sqlalchemy" in f and "compile" in f.partition(" (")[0].lower() for f in frames):
                compiling += weight
        if not samples:
            return ["  py-spy collected no samples"]
        busy = samples / (self.seconds * self.RATE) if self.seconds else 0.0

        working = max(1, samples - importing)

        def share(counts: dict[str, int], total: int) -> str:
            ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
            return ", ".join(f"{name} {n / total:.0%}" for name, n in ranked)

        return [
            f"  py-spy: scoring process on CPU in {busy:.0%} of {self.seconds:.0f} s "
            f"({samples} samples, {importing} of them importing modules at start-up)",
            f"    after start-up ({working} samples), by innermost project function: "
            + share(innermost, working),
            f"    after start-up, SQLAlchemy compiling SQL statements: {compiling / working:.0%}",
            "    all samples, by package of the running frame: " + share(self_by_package, samples),
        ]


def _unowned(frames: Sequence[str]) -> str:
    """A sample without project code on its stack: SQLAlchemy's async layer runs its sync work in
    a greenlet whose stack starts at ``Session.execute``, so the caller is not visible there."""
    names = [f.partition(" (")[0] for f in frames]
    if any("sqlalchemy" in f for f in frames):
        what = "compiling" if any("compile" in n.lower() for n in names) else "executing"
        orm = "ORM bulk INSERT" if any(n.startswith("_BulkORMInsert") for n in names) else "SQL"
        return f"[greenlet: sqlalchemy {what} {orm}]"
    return f"[no project frame: {_package_of(frames[-1])}]"


def _short_frame(frame: str) -> str:
    # "apply_purchases (scoring_service/scores/service.py:71)" -> "service.apply_purchases"
    name, _, where = frame.partition(" (")
    module = Path(where.rstrip(")").split(":")[0]).stem
    return f"{module}.{name}"


def _package_of(frame: str) -> str:
    _, _, where = frame.partition(" (")
    path = where.rstrip(")").split(":")[0]
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0].removesuffix(".py")
    if "/lib/python" in path:
        return "stdlib"
    for marker in ("scoring_service", "crm_libs"):
        if marker in path:
            return marker
    return path or frame
