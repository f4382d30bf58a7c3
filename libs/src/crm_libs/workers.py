"""How many worker processes a service runs: what fits the cores this process may use.

``python -m crm_libs.workers`` prints the ``workers`` setting, for an image's start command.
"""

from __future__ import annotations

import math
import os
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


def main() -> None:
    from crm_libs.settings import BaseServiceSettings

    print(BaseServiceSettings().workers)


if __name__ == "__main__":
    main()
