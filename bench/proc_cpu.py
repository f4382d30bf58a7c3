"""CPU accounting from /proc (Linux) for the benchmarks: a process's CPU seconds, a server's with
its worker processes, the whole machine's, and a meter of named processes over a measured part."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from crm_devstack.processes import stat_fields
from crm_devstack.stack import LocalStack

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    fields = stat_fields(pid)
    if fields is None:
        return 0.0
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17 (1-based).
    ticks = int(fields[11]) + int(fields[12])
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _CLK_TCK


def children_of(pid: int) -> list[int]:
    """The processes ``pid`` started that are still there (running or unreaped).

    Read from each of its threads' ``children`` file: the meters ask for four trees five times
    a second during a measured run, and going through the whole of /proc for each (every
    process's stat, 3-4 ms a tree with the stack up) took 5-7% of a core from what they measure.
    A kernel without those files is gone through as before."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for thread in threads:
        try:
            listed = Path(f"/proc/{pid}/task/{thread}/children").read_text()
        except FileNotFoundError:
            return _children_by_scan(pid)  # no CONFIG_PROC_CHILDREN
        except OSError:
            continue  # the thread ended meanwhile
        out.extend(int(child) for child in listed.split())
    return out


def descendants_of(pid: int) -> list[int]:
    """Its children, theirs, and so on (a service's row checks are forks of a fork server the
    service started)."""
    out: list[int] = []
    parents = [pid]
    while parents:
        children = [child for parent in parents for child in children_of(parent)]
        out.extend(children)
        parents = children
    return out


def _children_by_scan(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """A server and its worker processes (PostgreSQL: postmaster and backends), reaped ones too,
    and theirs."""
    return cpu_seconds(pid, with_reaped_children=True) + sum(
        cpu_seconds(child, with_reaped_children=True) for child in descendants_of(pid)
    )


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, already counted in user
    return (total - idle) / _CLK_TCK, total / _CLK_TCK


def postmaster_pid(stack: LocalStack) -> int | None:
    try:
        return int((stack.postgres.data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def broker_pid(stack: LocalStack) -> int | None:
    process = getattr(stack.broker, "_process", None)
    return process.pid if process is not None else None


class CpuMeter:
    """CPU seconds used by named processes (and the machine) between start() and stop().

    A process counts alone, except those named in ``trees`` (a server with worker processes,
    like PostgreSQL), which count with their descendants. A child that exits before ``stop``
    counts once its parent reaps it; one still unreaped then (a pool shut down as the job
    ends) counts with the CPU it had when last seen: the trees' children are sampled every
    ``every`` seconds meanwhile."""

    def __init__(
        self,
        pids: dict[str, int | None],
        trees: Sequence[str] = ("postgres",),
        *,
        every: float = 0.2,
    ) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid}
        self._trees = set(trees)
        self._every = every
        self._start: dict[str, float] = {}
        self.used: dict[str, float] = {}
        self.machine_busy = 0.0
        self.machine_total = 0.0
        self.wall = 0.0
        # Per tree: each child's CPU when last seen, and what it had at start().
        self._seen: dict[str, dict[int, float]] = {}
        self._children_at_start: dict[str, dict[int, float]] = {}
        self._own_at_start: dict[str, float] = {}
        self._stopping = threading.Event()
        self._sampler: threading.Thread | None = None

    def _seen_trees(self) -> list[str]:
        return [name for name in self._trees if name in self._pids]

    def _tree_children(self) -> dict[str, dict[int, float]]:
        return {
            name: {child: cpu_seconds(child) for child in descendants_of(self._pids[name])}
            for name in self._seen_trees()
        }

    def _sample_children(self) -> None:
        while not self._stopping.wait(self._every):
            for name, children in self._tree_children().items():
                self._seen.setdefault(name, {}).update(children)

    def _sample(self) -> dict[str, float]:
        return {
            name: tree_cpu_seconds(pid) if name in self._trees else cpu_seconds(pid)
            for name, pid in self._pids.items()
        }

    def start(self) -> None:
        self._start = self._sample()
        self._children_at_start = self._tree_children()
        self._own_at_start = {name: cpu_seconds(self._pids[name]) for name in self._seen_trees()}
        self._seen = {name: dict(children) for name, children in self._children_at_start.items()}
        self._stopping.clear()
        self._sampler = threading.Thread(target=self._sample_children, daemon=True)
        self._sampler.start()
        self._machine = machine_busy_seconds()
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        end = self._sample()
        self.wall = time.perf_counter() - self._t0
        self._stopping.set()
        if self._sampler is not None:
            self._sampler.join()
        for name, children in self._tree_children().items():
            self._seen.setdefault(name, {}).update(children)
        self.used = {name: end[name] - self._start.get(name, 0.0) for name in end}
        for name, seen in self._seen.items():
            # Own CPU plus each child's last seen: a lower bound that never misses a child
            # gone unreaped; the reaped count (in ``end``) is taken when it is larger.
            at_start = self._children_at_start.get(name, {})
            own = cpu_seconds(self._pids[name]) - self._own_at_start[name]
            theirs = sum(cpu - at_start.get(pid, 0.0) for pid, cpu in seen.items())
            self.used[name] = max(self.used[name], own + theirs)
        busy, total = machine_busy_seconds()
        self.machine_busy = busy - self._machine[0]
        self.machine_total = total - self._machine[1]

    def lines(self) -> list[str]:
        cores = os.cpu_count() or 1
        parts = [
            f"{name} {secs:.1f} cpu-s ({secs / self.wall:.0%} of a core)"
            for name, secs in sorted(self.used.items(), key=lambda kv: -kv[1])
        ]
        busy = self.machine_busy / self.machine_total * cores if self.machine_total else 0.0
        return [
            f"  CPU over {self.wall:.1f} s wall: " + ", ".join(parts),
            f"  whole machine busy {busy:.2f} of {cores} cores (includes anything else running)",
        ]
