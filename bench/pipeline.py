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
from pathlib import Path

import asyncpg
import cdnow
import httpx
from pipeline_checks import (
    AS_OF,
    format_distribution,
    print_lifecycles,
    verify_lifecycles,
    verify_tiers,
)
from pipeline_events import baseline_consume, dead_lettered, produce, wait_caught_up
from proc_cpu import CpuMeter, broker_pid, postmaster_pid
from prometheus_client.parser import text_string_to_metric_families
from support import PySpy, find_py_spy, log, statement_times, temp_stack

from crm_devstack.stack import TOPIC_PARTITIONS, LocalStack
from crm_libs.events.envelope import Topics

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
