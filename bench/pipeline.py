"""Scoring pipeline benchmark: the whole CDNOW purchase log through the scoring service.

    uv run python bench/pipeline.py [--limit N] [--profile]

Starts PostgreSQL and the broker only (no services), produces every CDNOW purchase onto
``crm.purchases.v1`` as ``purchase.recorded`` events, then times
(a) a bare consumer in a fresh group that only decodes the envelopes (the baseline), and
(b) the scoring service started on the full backlog until it has applied every event,
prints events/s for both and their ratio, checks every customer's value tier and lifecycle
against the pyramid and the yearly lifecycle computed here from the raw file, and says where the
scoring process spends its time; then (c) replays the same events, from empty scoring tables,
through two scoring instances in one new consumer group (they re-rank the same stores
concurrently) and checks the tiers and lifecycles again.
Exits non-zero if any tier or lifecycle differs or scoring does not catch up.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import NamedTuple

import asyncpg
import cdnow
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from proc_cpu import CpuMeter, broker_pid, cpu_seconds, postmaster_pid, tree_cpu_seconds
from prometheus_client.parser import text_string_to_metric_families
from support import PySpy, find_py_spy, log, statement_times, temp_stack

from crm_devstack.stack import TOPIC_PARTITIONS, LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics

AS_OF = date(1998, 6, 30)  # the last day of the CDNOW data: tiers as at the end of the log
TIER_ORDER = ("vip", "major", "medium", "small", "inactive")
LIFECYCLE_ORDER = (
    "lost",
    "stopped",
    "new_this_year",
    "active_core",
    "active_second_line",
    "in_service_not_bought",
)
SCORING_DB = "crm_scoring"
PAIR_GROUP = "scoring-pair"  # run (c)'s consumer group: reads the topic again from the start


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N purchases")
    parser.add_argument(
        "--timeout", type=float, default=3600, help="give up on scoring after this many seconds"
    )
    parser.add_argument(
        "--stall", type=float, default=180, help="give up when nothing is applied for this long"
    )
    parser.add_argument(
        "--profile", action="store_true", help="sample the scoring process with py-spy if found"
    )
    parser.add_argument(
        "--skip-pair", action="store_true", help="skip run (c), two scoring members in one group"
    )
    parser.add_argument(
        "--profile-out",
        type=Path,
        default=None,
        help="keep py-spy's collapsed stacks here (implies --profile)",
    )
    parser.add_argument(
        "--explain",
        type=Path,
        default=None,
        help="write the plans (EXPLAIN ANALYZE, auto_explain) of scoring's statements over 50 ms "
        "in run (b) to this file; slows them, so not for timing",
    )
    return parser.parse_args()


async def produce(bootstrap: str, events: list[EventEnvelope]) -> float:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        max_batch_size=256 * 1024,
        request_timeout_ms=30_000,
    )
    started = time.perf_counter()
    await producer.start()
    try:
        futures = [
            await producer.send(Topics.PURCHASES, value=e.to_bytes(), key=e.key) for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def baseline_consume(bootstrap: str, expected: int) -> tuple[float, float]:
    """A bare consumer, fresh group, same fetch settings as EventConsumer; decodes every record.

    Returns (seconds until all ``expected`` were decoded, seconds until records first arrived)."""
    consumer = AIOKafkaConsumer(
        Topics.PURCHASES,
        bootstrap_servers=bootstrap,
        group_id=f"bench-baseline-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2000,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    started = time.perf_counter()
    first = None
    seen = 0
    await consumer.start()
    try:
        while seen < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            if batches and first is None:
                first = time.perf_counter() - started
            for records in batches.values():
                for record in records:
                    EventEnvelope.from_bytes(record.value)
                    seen += 1
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return elapsed, first or elapsed


async def dead_lettered(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = Topics.dead_letter(Topics.PURCHASES)
        partitions = [TopicPartition(topic, p) for p in range(TOPIC_PARTITIONS)]
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


async def enable_statement_log(admin_dsn: str, *, explain: bool = False) -> None:
    """Log every statement's duration in the scoring database (not its parameters); with
    ``explain`` also the plans of those over 50 ms, as executed (auto_explain)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f"ALTER DATABASE {SCORING_DB} SET log_min_duration_statement = 0")
        await conn.execute(f"ALTER DATABASE {SCORING_DB} SET log_parameter_max_length = 0")
        if explain:
            for setting, value in (
                ("session_preload_libraries", "auto_explain"),
                ("auto_explain.log_min_duration", "50"),
                ("auto_explain.log_analyze", "on"),
                ("auto_explain.log_buffers", "on"),
            ):
                await conn.execute(f"ALTER DATABASE {SCORING_DB} SET {setting} = '{value}'")
    finally:
        await conn.close()


def write_plans(server_log: Path, offset: int, out: Path) -> None:
    """The server log's entries holding a plan (auto_explain's), from ``offset`` on."""
    logged = server_log.read_bytes()[offset:].decode("utf-8", "replace")
    entries = re.split(r"(?m)^(?=\S+ \S+ \S+ \[\d+\] )", logged)
    out.write_text("".join(e for e in entries if "plan:" in e[:300]))


class Progress:
    def __init__(self) -> None:
        self.first_applied: float | None = None
        self.applied_at_first = 0  # already applied when the first progress was seen
        self.cpu_at_first = 0.0  # the scoring process's CPU seconds at that moment
        self.cpu_at_done = 0.0
        self.pg_cpu_at_first = 0.0  # PostgreSQL's (all backends), likewise
        self.pg_cpu_at_done = 0.0
        self.done: float | None = None
        self.applied = 0


async def committed_events(offsets: AIOKafkaConsumer) -> int:
    """Purchase events the group of ``offsets`` applied and committed (offsets start at 0).

    Asked of the broker rather than counted in ``processed_event``: a count over a table of tens
    of thousands of rows ten times a second would be PostgreSQL work in the measured window.
    The consumer commits a batch's offsets right after its transaction, so this is as fresh."""
    partitions = [TopicPartition(Topics.PURCHASES, p) for p in range(TOPIC_PARTITIONS)]
    committed = await asyncio.gather(*(offsets.committed(tp) for tp in partitions))
    return sum(offset or 0 for offset in committed)


async def wait_caught_up(
    stack: LocalStack,
    conn: asyncpg.Connection,
    expected: int,
    started: float,
    args: argparse.Namespace,
    keys: tuple[str, ...] = ("scoring",),
    group: str = "scoring",
) -> Progress:
    """Poll until consumer group ``group`` (scoring instances ``keys``) committed ``expected``
    events, and check that the purchase facts and claims hold them all."""
    progress = Progress()
    last_change = time.perf_counter()
    last_report = last_change
    processes = [stack.processes[key] for key in keys]
    pg = postmaster_pid(stack)

    def cpu() -> float:
        return sum(cpu_seconds(p.pid) for p in processes)

    def pg_cpu() -> float:
        return tree_cpu_seconds(pg) if pg else 0.0

    # Never subscribes: it only reads the group's committed offsets.
    offsets = AIOKafkaConsumer(
        bootstrap_servers=stack.broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await offsets.start()
    try:
        while True:
            count = await committed_events(offsets)
            now = time.perf_counter()
            if count and progress.first_applied is None:
                progress.first_applied = now - started
                progress.applied_at_first = count
                progress.cpu_at_first = cpu()
                progress.pg_cpu_at_first = pg_cpu()
            if count != progress.applied:
                progress.applied = count
                last_change = now
            if count >= expected:
                progress.done = now - started
                progress.cpu_at_done = cpu()
                progress.pg_cpu_at_done = pg_cpu()
                # A purchase is claimed by its fact (no processed_event row); anything else
                # by its claim.
                stored = await conn.fetchval(
                    "SELECT (SELECT count(*) FROM processed_event)"
                    " + (SELECT count(*) FROM purchase_fact)"
                )
                if stored < expected:
                    log(f"offsets say {count} applied, claims and purchase facts: {stored}")
                    progress.done = None
                return progress
            if dead := [p for p in processes if p.poll() is not None]:
                log(f"scoring exited with {dead[0].returncode} after {count} events")
                return progress
            if now - started > args.timeout or (
                progress.first_applied is not None and now - last_change > args.stall
            ):
                log(f"scoring stalled or too slow: {count} of {expected} applied")
                return progress
            if now - last_report >= 10:
                last_report = now
                log(f"  … scoring applied {count:,} of {expected:,} after {now - started:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await offsets.stop()


class Check(NamedTuple):
    """One column of ``customer_score`` against its recomputation from the raw file."""

    mismatches: int
    actual: Counter[str]
    expected: Counter[str]
    examples: list[str]


async def verify(
    conn: asyncpg.Connection, column: str, expected: dict[str, tuple[str, str]]
) -> Check:
    """Every customer's (store, ``column``) in scoring against ``expected``."""
    actual = {
        r["customer_id"]: (r["store_id"], r[column])
        for r in await conn.fetch(
            f"SELECT customer_id, store_id, {column} FROM customer_score"  # noqa: S608
        )
    }
    mismatches = 0
    examples: list[str] = []
    for customer in sorted(set(expected) | set(actual)):
        want, got = expected.get(customer), actual.get(customer)
        if want != got:
            mismatches += 1
            if len(examples) < 5:
                examples.append(f"{customer}: expected {want}, scoring has {got}")
    actual_dist = Counter(value or "None" for _, value in actual.values())
    return Check(mismatches, actual_dist, cdnow.distribution(expected), examples)


async def verify_tiers(conn: asyncpg.Connection, rows: list[cdnow.CdnowRow]) -> Check:
    return await verify(conn, "value_tier", cdnow.expected_tiers(rows, AS_OF))


async def verify_lifecycles(conn: asyncpg.Connection, rows: list[cdnow.CdnowRow]) -> Check:
    return await verify(conn, "lifecycle", cdnow.expected_lifecycles(rows, AS_OF))


def format_distribution(counts: Counter[str], order: tuple[str, ...] = TIER_ORDER) -> str:
    total = sum(counts.values()) or 1
    keys = [k for k in order if k in counts] + sorted(set(counts) - set(order))
    return ", ".join(f"{k} {counts[k]:,} ({counts[k] / total:.1%})" for k in keys)


def print_lifecycles(check: Check, *, indent: str = "") -> None:
    print(f"{indent}lifecycles as of {AS_OF} (UTC): {check.mismatches} mismatches")
    for example in check.examples:
        print(f"{indent}    {example}")
    print(f"{indent}    scoring:  {format_distribution(check.actual, LIFECYCLE_ORDER)}")
    if check.expected != check.actual:
        print(f"{indent}    expected: {format_distribution(check.expected, LIFECYCLE_ORDER)}")


async def run(stack: LocalStack, rows: list[cdnow.CdnowRow], args: argparse.Namespace) -> bool:
    n = len(rows)
    bootstrap = stack.broker.bootstrap
    events = [cdnow.envelope(r) for r in rows]

    log("producing …")
    produce_s = await produce(bootstrap, events)
    print(
        f"produce (aiokafka, acks=all, no idempotence):  {produce_s:8.2f} s "
        f"{n / produce_s:10,.0f} events/s"
    )

    log("baseline consumer …")
    async with asyncio.timeout(args.timeout):
        base_s, base_first = await baseline_consume(bootstrap, n)
    base_rate = n / base_s
    base_steady = n / (base_s - base_first) if base_s > base_first else float("nan")
    print(
        f"(a) baseline: bare consumer, decode only:      {base_s:8.2f} s "
        f"{base_rate:10,.0f} events/s"
        f"   (first records {base_first:.2f} s after start: joining the group)"
    )
    print(
        f"    baseline, first records -> all read:       {base_s - base_first:8.2f} s "
        f"{base_steady:10,.0f} events/s"
    )

    admin_dsn = stack.postgres.url(SCORING_DB, driver="postgresql")
    await enable_statement_log(admin_dsn, explain=args.explain is not None)
    server_log = stack.postgres.data_dir / "server.log"
    log_offset = server_log.stat().st_size if server_log.exists() else 0
    conn = await asyncpg.connect(admin_dsn, server_settings={"log_min_duration_statement": "-1"})
    try:
        log("scoring service …")
        started = time.perf_counter()
        stack.start_service("scoring")
        scoring_pid = stack.processes["scoring"].pid
        meter = CpuMeter(
            {
                "scoring (python)": scoring_pid,
                "postgres": postmaster_pid(stack),
                "broker": broker_pid(stack),
            }
        )
        meter.start()
        spy = None
        py_spy = find_py_spy() if args.profile or args.profile_out else None
        if py_spy:
            out = args.profile_out or stack.data_dir / "scoring.pyspy.txt"
            spy = PySpy(py_spy, scoring_pid, out.resolve())
        progress = await wait_caught_up(stack, conn, n, started, args)
        meter.stop()
        if spy:
            spy.stop()

        facts = await conn.fetchval("SELECT count(*) FROM purchase_fact")
        unpublished = await conn.fetchval(
            "SELECT count(*) FROM outbox_event WHERE published_at IS NULL"
        )
        staged = await conn.fetchval("SELECT count(*) FROM outbox_event")
        dlq = await dead_lettered(bootstrap)
        if progress.done is None:
            print(
                f"(b) scoring did NOT catch up: {progress.applied:,} of {n:,} applied, "
                f"{facts:,} purchase facts, {dlq} dead-lettered"
            )
            return False
        rate = n / progress.done
        first = progress.first_applied or 0.0
        steady = (
            (n - progress.applied_at_first) / (progress.done - first)
            if progress.done > first
            else float("nan")
        )
        print(
            f"(b) scoring service, from process start:      {progress.done:8.2f} s {rate:10,.0f} "
            f"events/s   (first event applied {first:.2f} s after start)"
        )
        print(
            f"    scoring, first applied -> caught up:       {progress.done - first:8.2f} s "
            f"{steady:10,.0f} events/s"
        )
        print(
            f"ratio scoring/baseline: {rate / base_rate:.3f} from start (both include joining "
            f"the group), {steady / base_steady:.3f} once records flow"
        )
        print(
            f"    purchase_fact rows {facts:,}; dead-lettered {dlq}; score.changed events staged "
            f"{staged:,}, {unpublished:,} not yet published when scoring caught up"
        )

        mismatches, actual, expected, examples = await verify_tiers(conn, rows)
        lifecycles = await verify_lifecycles(conn, rows)
        customers = len({r.customer_id for r in rows})
        print(
            f"tiers as of {AS_OF} (window: purchased_at > "
            f"{cdnow.window_since(AS_OF).isoformat()}): "
            f"{mismatches} mismatches of {customers:,} customers"
        )
        for example in examples:
            print(f"    {example}")
        print(f"    scoring:  {format_distribution(actual)}")
        if expected != actual:
            print(f"    expected: {format_distribution(expected)}")
        print_lifecycles(lifecycles)
        mismatches += lifecycles.mismatches

        print("what limits the throughput:")
        for line in meter.lines():
            print(line)
        totals, counts = statement_times(server_log, log_offset)
        if args.explain is not None:
            write_plans(server_log, log_offset, args.explain)
            print(f"  plans of the statements over 50 ms: {args.explain}")
        db_ms = sum(totals.values())
        # Every batch with purchases locks its stores once (its claims may be a COPY or not).
        batches = counts.get("lock the batch's stores (advisory)", 0)
        print(
            f"  PostgreSQL executing statements {db_ms / 1000:.1f} s of {meter.wall:.1f} s wall; "
            f"{batches} consumer batches (~{n / batches:,.0f} events each)"
            if batches
            else f"  PostgreSQL executing statements {db_ms / 1000:.1f} s of {meter.wall:.1f} s"
        )
        for kind, ms in sorted(totals.items(), key=lambda kv: -kv[1])[:7]:
            print(f"    {ms / 1000:6.2f} s  {counts.get(kind, 0):5d}×  {kind}")
        if batches and n - progress.applied_at_first >= n / batches:
            # Once consuming, the consumer decodes the next batch while PostgreSQL applies the
            # previous one: the wall time per batch is about the larger of the two, not the sum.
            flowing = n - progress.applied_at_first
            steady_batches = batches * flowing / n
            steady_wall = progress.done - first
            steady_cpu = progress.cpu_at_done - progress.cpu_at_first
            steady_pg = progress.pg_cpu_at_done - progress.pg_cpu_at_first
            print(
                f"  per consumer batch once consuming (~{steady_batches:.0f} batches): "
                f"{steady_wall / steady_batches:.3f} s wall; scoring process CPU "
                f"(consumer and relay) {steady_cpu / steady_batches:.3f} s, PostgreSQL CPU "
                f"(all backends) {steady_pg / steady_batches:.3f} s, PostgreSQL statements "
                f"{db_ms / 1000 / batches:.3f} s"
            )
            print(
                f"  per event once consuming: {steady_wall / flowing * 1e6:.1f} µs wall, "
                f"scoring CPU {steady_cpu / flowing * 1e6:.1f} µs, "
                f"PostgreSQL CPU {steady_pg / flowing * 1e6:.1f} µs"
            )
        if spy:
            for line in spy.summary(("scoring_service", "crm_libs")):
                print(line)
        elif args.profile or args.profile_out:
            print("  (py-spy not found: `uv tool install py-spy` to profile)")
        if args.skip_pair:
            return mismatches == 0
        pair_ok = await run_pair(stack, conn, rows, base_rate, base_steady, args)
        return mismatches == 0 and pair_ok
    finally:
        await conn.close()


async def applied_by(url: str) -> int:
    """Purchase events one scoring instance applied, from its ``/metrics``."""
    async with httpx.AsyncClient(timeout=10) as client:
        page = (await client.get(f"{url}/metrics")).text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(page)
            if family.name == "consumer_events_processed"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels.get("topic") == Topics.PURCHASES
        )
    )


def port_of(stack: LocalStack, key: str) -> str:
    args = [str(a) for a in stack.processes[key].args]
    return args[args.index("--port") + 1]


async def run_pair(
    stack: LocalStack,
    conn: asyncpg.Connection,
    rows: list[cdnow.CdnowRow],
    base_rate: float,
    base_steady: float,
    args: argparse.Namespace,
) -> bool:
    """(c) The same events through two scoring members of one new group, from empty tables."""
    n = len(rows)
    stack.stop_service("scoring")
    await conn.execute(
        "TRUNCATE customer_score, purchase_fact, processed_event, outbox_event, score_history"
        " RESTART IDENTITY"
    )
    stack.extra_env["CRM_CONSUMER_GROUP"] = PAIR_GROUP
    log("two scoring members in one group …")
    started = time.perf_counter()
    keys = (stack.start_service("scoring"), stack.start_service("scoring", replica="2"))
    progress = await wait_caught_up(stack, conn, n, started, args, keys, group=PAIR_GROUP)
    if progress.done is None:
        print(f"(c) two members did NOT catch up: {progress.applied:,} of {n:,} applied")
        return False
    shares = [await applied_by(f"http://127.0.0.1:{port_of(stack, key)}") for key in keys]
    rate = n / progress.done
    first = progress.first_applied or 0.0
    steady = (
        (n - progress.applied_at_first) / (progress.done - first)
        if progress.done > first
        else float("nan")
    )
    print(
        f"(c) two scoring members, one group:          {progress.done:8.2f} s {rate:10,.0f} "
        f"events/s   (first event applied {first:.2f} s after start)"
    )
    print(
        f"    two members, first applied -> caught up:   {progress.done - first:8.2f} s "
        f"{steady:10,.0f} events/s"
    )
    print(
        f"    ratio two members/baseline: {rate / base_rate:.3f} from start, "
        f"{steady / base_steady:.3f} once records flow; events applied by each member: "
        + " / ".join(f"{share:,}" for share in shares)
        + f"; CPU of both {progress.cpu_at_done - progress.cpu_at_first:.1f} s once consuming"
    )
    mismatches, actual, expected, examples = await verify_tiers(conn, rows)
    print(f"    tier mismatches with two members: {mismatches}")
    for example in examples:
        print(f"    {example}")
    if expected != actual:
        print(f"    scoring:  {format_distribution(actual)}")
        print(f"    expected: {format_distribution(expected)}")
    lifecycles = await verify_lifecycles(conn, rows)
    print_lifecycles(lifecycles, indent="    ")
    return mismatches == 0 and lifecycles.mismatches == 0


def main() -> int:
    args = parse_args()
    rows = cdnow.load(limit=args.limit)
    customers = len({r.customer_id for r in rows})
    print(
        f"CDNOW pipeline benchmark: {len(rows):,} purchase.recorded events of {customers:,} "
        f"customers in {cdnow.STORES} stores (store = CDNOW id % {cdnow.STORES}), "
        f"topic {Topics.PURCHASES} ({TOPIC_PARTITIONS} partitions), scoring as of {AS_OF}",
        flush=True,
    )
    env = {"CRM_AS_OF": AS_OF.isoformat(), "CRM_LOG_LEVEL": "WARNING"}
    with temp_stack("crm-bench-pipeline-", extra_env=env) as stack:
        log(f"starting PostgreSQL and the broker in {stack.data_dir} …")
        stack.start_infrastructure()
        ok = asyncio.run(run(stack, rows, args))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
