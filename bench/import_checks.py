"""An import's row checks alone: CPU per row of what the row-check processes run, cold and warm.

    uv run python bench/import_checks.py [--count 50000] [--profile out.txt]

Generates the sheet ``bench/imports.py`` imports (``bench/people.py``, seed 7: Chinese headers,
phones typed the usual ways, a third of the birthdays lunar, the 服务代表 column naming one of
ten staff members), reads it as the import job does (``open_sheet``, chunks of the worker's
``CHUNK_ROWS``) and sends each chunk, one at a time, to one process started by the import's own
``RowChecks`` (imports/row_checks.py): its start-up, ``customer_checks.check_rows`` and the
pickling of its results are what a check process does during an import. Prints, from that
process's ``time.process_time``:

- its start: the interpreter, the check modules' imports and the start-up's first-use caches;
- the checks' CPU per row (results pickled included), cold (the first 5,000 rows of the fresh
  process) and warm (the rest);
- a baseline in the same process: the least any import does per row (the row's cells read as
  text, an id, the COPY tuple, pickled back), and the checks' ratio to it.

With ``--profile`` py-spy (on PATH or in ~/.local/bin) samples the process during the checks;
its collapsed stacks go to the file and a summary by innermost project function is printed, as
``bench/support.py`` summarises the services.
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from typing import Any

COLD_ROWS = 5_000


def timed(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[float, float, int]:
    """In the check process: (CPU seconds since the process started, CPU seconds of the call with
    its result pickled as the pool pickles it, rows checked)."""
    before = time.process_time()
    result = function(*args, **kwargs)
    pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    after = time.process_time()
    return before, after - before, len(args[0])


def baseline(raw: Sequence[tuple[int, Sequence[Any]]], *, store_id: str) -> list[tuple[Any, ...]]:
    """The least an import does for a row: its cells as trimmed text, an id, the COPY tuple."""
    from crm_libs.ids import new_id
    from customer_service.imports.cells import text_of

    records = []
    for _number, cells in raw:
        texts = [text_of(cell) for cell in cells]
        records.append((new_id(), store_id, *texts, None, None, None, "active", 1))
    return records


def main() -> int:
    import argparse
    import asyncio
    import io
    import subprocess
    import sys
    from datetime import date
    from pathlib import Path

    from imports import STAFF, sheet
    from support import PySpy, find_py_spy, log

    from crm_libs.ids import new_id
    from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
    from customer_service.imports import customer_checks
    from customer_service.imports.row_checks import RowChecks
    from customer_service.imports.sheets import open_sheet
    from customer_service.imports.worker import CHUNK_ROWS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", help="py-spy's collapsed stacks of the checks go here")
    args = parser.parse_args()

    content = sheet(args.count, args.seed)
    parsed = open_sheet(io.BytesIO(content), kind="customers")
    rows = iter(parsed.rows)
    chunks = []
    while raw := customer_checks.raw_rows(rows, CHUNK_ROWS):
        chunks.append(raw)
    staff = {name: new_id() for name in STAFF}
    context = customer_checks.StoreContext(
        store_id=new_id(),
        timezone="Asia/Shanghai",
        field_keys=(DEV_FIELD_KEY,),
        phone_hash_key=DEV_PHONE_HASH_KEY,
        staff_by_name={name: (staff_id,) for name, staff_id in staff.items()},
        staff_ids=frozenset(staff.values()),
    )
    today = date.today()
    log(f"sheet: {args.count:,} rows in {len(chunks)} chunks; load {os.getloadavg()[0]:.2f}")

    async def measure() -> None:
        checks = RowChecks(processes=1)
        checks.start()
        try:
            started, _, _ = await checks.run(timed, len, [])
            (pid,) = checks.pids()
            profiler = None
            if args.profile:
                binary = find_py_spy()
                if binary is None:
                    log("py-spy is not installed: no profile")
                else:
                    profiler = PySpy(binary, pid, Path(args.profile))
                    await asyncio.sleep(1)  # py-spy attaches
            spent = []
            for raw in chunks:
                _, seconds, n = await checks.run(
                    timed,
                    customer_checks.check_rows,
                    raw,
                    columns=parsed.columns,
                    today=today,
                    context=context,
                )
                spent.append((seconds, n))
            if profiler is not None:
                profiler.stop()
            base = [
                (await checks.run(timed, baseline, raw, store_id=context.store_id))[1:]
                for raw in chunks
            ]
        finally:
            checks.close()
        cold_chunks = max(1, COLD_ROWS // CHUNK_ROWS)

        def per_row(part: Sequence[tuple[float, int]]) -> float:
            return sum(s for s, _ in part) / max(1, sum(n for _, n in part)) * 1e6

        cold, warm = per_row(spent[:cold_chunks]), per_row(spent[cold_chunks:])
        floor = per_row(base[cold_chunks:])
        print(f"check process start: {started * 1000:.0f} ms of CPU")
        print(f"checks, cold (first {cold_chunks * CHUNK_ROWS:,} rows): {cold:.1f} µs a row")
        print(f"checks, warm (the other {sum(n for _, n in spent[cold_chunks:]):,}): {warm:.1f}")
        print(f"baseline (cells read, id, COPY tuple), warm: {floor:.1f} µs a row")
        print(f"ratio to the baseline: cold {cold / floor:.1f}, warm {warm / floor:.1f}")
        print(f"load average: {os.getloadavg()[0]:.2f}")
        if profiler is not None:
            print("\n".join(profiler.summary(("customer_service", "crm_libs"), top=14)))

    asyncio.run(measure())
    if args.profile:
        log(f"profile: {Path(args.profile).resolve()}")
    subprocess.run(["uptime"], check=False, stdout=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
