"""How many worker processes a service runs: what fits the cores this process may use.

``python -m crm_libs.workers`` prints the ``workers`` setting for an image's start command, and
first empties ``PROMETHEUS_MULTIPROC_DIR`` (if set): a restarted container's old values must not
be added to the new workers'.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

# Each worker holds its own database pool, outbox relay and consumer-group members: beyond this
# many per instance, connections and rebalances grow faster than throughput (run more instances).
MAX_WORKERS = 8


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, cut to a container's CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores or 1, max(1, math.ceil(quota)))
    return max(1, cores or 1)


def _cgroup_cpu_quota() -> float | None:
    """Cores' worth of CPU time the cgroup (v2) allows, or None when unlimited or unknown."""
    try:
        limit, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def fitting_workers(*, sharing: int = 1) -> int:
    """Workers that fit the usable cores when ``sharing`` busy processes divide them."""
    return max(1, min(MAX_WORKERS, usable_cores() // max(1, sharing)))


def empty_metrics_directory(directory: Path) -> None:
    """Create the multiprocess metrics directory, or remove what a previous run left in it."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def main() -> None:
    from crm_libs.settings import BaseServiceSettings

    workers = BaseServiceSettings().workers
    if directory := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        empty_metrics_directory(Path(directory))
    print(workers)


if __name__ == "__main__":
    main()
