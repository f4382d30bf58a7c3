"""Scoring's share of an import: 100,000 ``customer.registered`` events consumed, in CPU.

    uv run python bench/scoring_files.py [--count 100000] [--rounds 1] [--rate 5000]
        [--profile out.txt]

Starts PostgreSQL, the broker and the scoring service alone, publishes the registrations an
import of ``--count`` rows would (``engagement_files.registrations``: the envelope's JSON as the
import's row checks write it), and measures the CPU scoring's process and PostgreSQL use (also
by database or process) until scoring's consumer has committed every one of them (the broker
is asked, so that the wait costs PostgreSQL nothing). The daily ageing is kept out
(``CRM_AGEING_CHECK_SECONDS``: its first check runs at start-up, before the store exists): it
runs once a day per store, and in a whole import it ages the new store whenever its minute
falls (bench/imports.py). With ``--profile`` scoring is sampled by py-spy (on PATH) during the
rounds (an .svg is a flame graph, any other name the collapsed stacks).

To compare with an older scoring, run it with that scoring's sources first on the path
(``PYTHONPATH=/tmp/old/services/scoring/src``, from ``git archive``): the stack's service
processes inherit it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from cluster_meters import BackendCpu
from engagement_files import registrations
from proc_cpu import tree_cpu_seconds
from support import log, record_profile, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import Topics

# The consumer group scoring_service.config names by default.
GROUP = "scoring"
_SLICE = 500


async def _consumed(watcher: AIOKafkaConsumer, last: dict[TopicPartition, int]) -> bool:
    """Whether the group has committed past each partition's last event (the offsets the
    broker gave them: its end offsets do not always agree with what consumers commit)."""
    for tp, offset in last.items():
        if (await watcher.committed(tp) or 0) <= offset:
            return False
    return True


async def one_round(
    stack: LocalStack, events: list[tuple[bytes, bytes]], *, rate: float | None
) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
    watcher = AIOKafkaConsumer(bootstrap_servers=stack.broker.bootstrap, group_id=GROUP)
    await producer.start()
    await watcher.start()
    try:
        pids = stack.pids()
        cpu = {name: tree_cpu_seconds(pids[name]) for name in ("scoring", "postgres")}
        backends = BackendCpu(stack)
        backends.start()
        started = time.perf_counter()
        # In slices of a relay's send, at most ``rate`` a second when given.
        last: dict[TopicPartition, int] = {}
        for n in range(0, len(events), _SLICE):
            sent = [
                await producer.send(Topics.CUSTOMERS, value=value, key=key)
                for key, value in events[n : n + _SLICE]
            ]
            await producer.flush()
            for record in await asyncio.gather(*sent):
                tp = TopicPartition(record.topic, record.partition)
                last[tp] = max(last.get(tp, -1), record.offset)
            if rate:
                await asyncio.sleep(max(0.0, started + (n + _SLICE) / rate - time.perf_counter()))
        published = time.perf_counter() - started
        while True:
            if await _consumed(watcher, last):
                break
            await asyncio.sleep(0.1)
        caught_up = time.perf_counter() - started
        used = {name: tree_cpu_seconds(pids[name]) - cpu[name] for name in cpu}
        backends.stop()
    finally:
        await watcher.stop()
        await producer.stop()
    return {"published": published, "caught_up": caught_up, **used, "by": backends.lines()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="imports one after the other")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rate",
        type=float,
        help="events published a second at most (an import's relay sends some 5,000): "
        "scoring then consumes them in smaller batches, as in an import",
    )
    parser.add_argument("--profile", help="write a py-spy profile of scoring here")
    args = parser.parse_args()
    env = {"CRM_AGEING_CHECK_SECONDS": "86400"}
    with temp_stack("crm-bench-scoring-", env) as stack:
        log(f"starting PostgreSQL, the broker and scoring in {stack.data_dir} …")
        stack.start_infrastructure()
        stack.start_service("scoring")
        stack.wait_healthy("scoring")
        profiler = record_profile(stack.pids()["scoring"], args.profile) if args.profile else None
        for n in range(args.rounds):
            events = registrations(args.count, seed=args.seed + n, store_id=str(uuid.uuid4()))
            r = asyncio.run(one_round(stack, events, rate=args.rate))
            per_row = 1e6 / args.count
            print(
                f"round {n + 1}: {args.count:,} registrations published in {r['published']:.1f} s,"
                f" scoring caught up after {r['caught_up']:.1f} s; scoring "
                f"{r['scoring']:.2f} cpu-s ({r['scoring'] * per_row:.1f} µs a row), "
                f"PostgreSQL {r['postgres']:.2f} cpu-s ({r['postgres'] * per_row:.1f} µs a row)"
            )
            print("PostgreSQL's CPU by database (client backends) or process:")
            print("\n".join(r["by"]))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
