"""Engagement's share of an import: 100,000 ``customer.registered`` events consumed, in CPU.

    uv run python bench/engagement_files.py [--count 100000] [--rounds 1] [--rate 5000]
        [--profile out.txt]

Starts PostgreSQL, the broker and the engagement service alone, publishes the registrations an
import of ``--count`` rows would (the envelope's JSON as the import's row checks write it: a
store, ten owners, birthdays from 1940 to 1975, a third of them lunar), and measures the CPU
engagement's process and PostgreSQL use until engagement's copy holds every file (the consumer
only: the special-days job plans the new files at its next check, a minute later at most;
``--special-days`` runs it once over them afterwards, in this process, and reports its CPU).
Without the customer service and scoring, the machine's other work is only the publishing.
With ``--profile`` engagement is sampled by py-spy (on PATH) during the rounds (an .svg is a
flame graph, any other name the collapsed stacks).

To compare with an older engagement, run it with that engagement's sources first on the path
(``PYTHONPATH=/tmp/old/services/engagement/src``, from ``git archive``): the stack's service
processes inherit it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from proc_cpu import tree_cpu_seconds
from support import log, record_profile, temp_stack

from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn, make_engine, make_sessionmaker
from crm_libs.events.envelope import Topics

OWNERS = [str(uuid.UUID(int=n)) for n in range(1, 11)]
BORN_FROM, BORN_DAYS = date(1940, 1, 1), (date(1975, 12, 31) - date(1940, 1, 1)).days


def registrations(count: int, *, seed: int, store_id: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of each event, as customer_checks._registered writes them."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        customer_id = str(uuid.UUID(int=rng.getrandbits(128)))
        file = {
            "timezone": "Asia/Shanghai",
            "status": "active",
            "owner_staff_id": OWNERS[i % len(OWNERS)],
            "birthday": (BORN_FROM + timedelta(days=rng.randrange(BORN_DAYS))).isoformat(),
            "birthday_calendar": "lunar" if rng.random() < 1 / 3 else "solar",
            "wedding_anniversary": None,
            "relations": [],
            "referrer_id": None,
            "uses_competitor_products": False,
            "consents": {"sms": {"granted": False, "at": None, "channel": None}},
            "district": None,
            "version": 1,
        }
        envelope = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": "customer.registered",
            "version": 1,
            "occurred_at": datetime.now(UTC),
            "store_id": store_id,
            "customer_id": customer_id,
            "payload": {"timezone": "Asia/Shanghai", "file": file},
        }
        out.append((customer_id.encode(), orjson.dumps(envelope, option=orjson.OPT_UTC_Z)))
    return out


_SLICE = 500


async def one_round(
    stack: LocalStack, events: list[tuple[bytes, bytes]], *, rate: float | None
) -> dict[str, float]:
    conn = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, linger_ms=5)
    await producer.start()
    try:
        before = await conn.fetchval("SELECT count(*) FROM customer_file")
        pids = stack.pids()
        cpu = {name: tree_cpu_seconds(pids[name]) for name in ("engagement", "postgres")}
        started = time.perf_counter()
        # In slices of a relay's send, at most ``rate`` a second when given.
        for n in range(0, len(events), _SLICE):
            for key, value in events[n : n + _SLICE]:
                await producer.send(Topics.CUSTOMERS, value=value, key=key)
            await producer.flush()
            if rate:
                await asyncio.sleep(max(0.0, started + (n + _SLICE) / rate - time.perf_counter()))
        published = time.perf_counter() - started
        while True:
            if await conn.fetchval("SELECT count(*) FROM customer_file") >= before + len(events):
                break
            await asyncio.sleep(0.05)
        caught_up = time.perf_counter() - started
        used = {name: tree_cpu_seconds(pids[name]) - cpu[name] for name in cpu}
    finally:
        await producer.stop()
        await conn.close()
    return {"published": published, "caught_up": caught_up, **used}


async def special_days(stack: LocalStack) -> dict[str, float]:
    """One run of the special-days job over the stores' new files (as the service's next check
    would run it), in this process: its CPU, and PostgreSQL's."""
    # Imported here: with an older engagement's sources first on the path, that one's job.
    from engagement_service.care.scheduled import LeadDays, plan_due_stores
    from engagement_service.config import Settings

    engine = make_engine(stack.database_url("engagement"), pool_size=2)
    try:
        postgres = stack.pids()["postgres"]
        cpu, db = time.process_time(), tree_cpu_seconds(postgres)
        planned = await plan_due_stores(
            make_sessionmaker(engine),
            now=datetime.now(UTC),
            lead=LeadDays.of(Settings()),
            default_timezone="Asia/Shanghai",
        )
        return {
            "job": time.process_time() - cpu,
            "postgres": tree_cpu_seconds(postgres) - db,
            "tasks": sum(planned.values()),
        }
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1, help="imports one after the other")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--rate",
        type=float,
        help="events published a second at most (an import's relay sends some 5,000): "
        "engagement then consumes them in smaller batches, as in an import",
    )
    parser.add_argument("--profile", help="write a py-spy profile of engagement here")
    parser.add_argument(
        "--special-days",
        action="store_true",
        help="then run the special-days job over the new files once, in this process",
    )
    args = parser.parse_args()
    with temp_stack("crm-bench-engagement-") as stack:
        log(f"starting PostgreSQL, the broker and engagement in {stack.data_dir} …")
        stack.start_infrastructure()
        stack.start_service("engagement")
        stack.wait_healthy("engagement")
        profiler = (
            record_profile(stack.pids()["engagement"], args.profile) if args.profile else None
        )
        for n in range(args.rounds):
            events = registrations(args.count, seed=args.seed + n, store_id=str(uuid.uuid4()))
            r = asyncio.run(one_round(stack, events, rate=args.rate))
            per_row = 1e6 / args.count
            print(
                f"round {n + 1}: {args.count:,} registrations published in {r['published']:.1f} s,"
                f" engagement caught up after {r['caught_up']:.1f} s; engagement "
                f"{r['engagement']:.2f} cpu-s ({r['engagement'] * per_row:.1f} µs a row), "
                f"PostgreSQL {r['postgres']:.2f} cpu-s ({r['postgres'] * per_row:.1f} µs a row)"
            )
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            profiler.wait()
        if args.special_days:
            stack.stop_service("engagement")  # its own check would plan them first
            job = asyncio.run(special_days(stack))
            files = args.count * args.rounds
            print(
                f"special days: one run over the {files:,} files: the job "
                f"{job['job']:.2f} cpu-s ({job['job'] * 1e6 / files:.1f} µs a file), PostgreSQL "
                f"{job['postgres']:.2f} cpu-s; {job['tasks']:,.0f} tasks created"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
