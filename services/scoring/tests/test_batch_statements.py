"""A consumed batch costs a fixed number of statements, however many events, stores and tier
changes it holds, and the ``score.changed`` rows it stages are whole envelopes.

Counted by the server: scoring sends its batch straight to asyncpg (COPY, array parameters),
past SQLAlchemy's events, so the test has PostgreSQL log every statement of the session's
backend and counts what it executed.
"""

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_devstack.stack import LocalStack
from crm_libs.events.envelope import EventEnvelope, Topics
from crm_libs.events.outbox import enqueue_many
from scoring_service.scores import service
from scoring_service.scores.aggregates import PurchaseSeen

# Where a server log entry starts: "<date> <time> <zone> [<pid>] "; its text runs to the next.
_ENTRY = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] ", re.M)
# Executions only: the extended protocol also logs each statement's parse and bind.
_EXECUTED = re.compile(r"LOG:\s+duration: [\d.]+ ms\s+(?:execute [^:]*|statement): (.*)", re.S)


@asynccontextmanager
async def counting_statements(session: AsyncSession, stack: LocalStack) -> AsyncIterator[list[str]]:
    """The statements the session's backend executes meanwhile (filled in on the way out)."""
    await session.execute(text("SET log_min_duration_statement = 0"))  # undone by the rollback
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    server_log = stack.postgres.data_dir / "server.log"
    start = server_log.stat().st_size
    seen: list[str] = []
    yield seen
    logged = server_log.read_bytes()[start:].decode("utf-8", "replace")
    entries = list(_ENTRY.finditer(logged))
    for entry, after in zip(entries, [*entries[1:], None], strict=True):
        executed = _EXECUTED.match(logged, entry.end(), after.start() if after else len(logged))
        if int(entry.group(1)) == pid and executed:
            seen.append(" ".join(executed.group(1).split()))


def batch(tag: str, *, stores: int, customers: int) -> list[PurchaseSeen]:
    """Two purchases per customer, customers spread over ``stores`` stores, spends all distinct."""
    at = datetime.now(UTC) - timedelta(days=3)
    return [
        PurchaseSeen(
            purchase_id=f"{tag}-{c}-{n}",
            store_id=f"{tag}-s{c % stores}",
            customer_id=f"{tag}-c{c}",
            purchased_at=at + timedelta(hours=n),
            purchased_on=at.date(),
            timezone="UTC",
            total=Decimal(10 + c),
            supply_days=30,
        )
        for c in range(customers)
        for n in range(2)
    ]


async def test_a_batch_costs_the_same_statements_whatever_its_size(
    session: AsyncSession, stack: LocalStack
) -> None:
    # The connection's first batch also looks up the array types once (asyncpg caches them).
    await service.score_batch(
        session,
        prospects=[("warm-p", "warm-s", "UTC")],
        purchases=batch("warm", stores=1, customers=1),
    )
    async with counting_statements(session, stack) as small:
        changes = await service.score_batch(
            session,
            prospects=[("small-p", "small-s0", "UTC")],
            purchases=batch("small", stores=1, customers=1),
        )
    assert len(changes) == 1  # the buyer's first tier (a prospect stages nothing)
    async with counting_statements(session, stack) as large:
        changes = await service.score_batch(
            session,
            prospects=[(f"large-p{n}", f"large-s{n}", "UTC") for n in range(30)],
            purchases=batch("large", stores=6, customers=120),
        )
    assert len(changes) == 120
    assert small, "nothing counted"
    assert len(large) == len(small), f"statements per batch grew with the batch: {large}"


async def test_staged_score_changes_are_whole_envelopes(session: AsyncSession) -> None:
    changes = await service.score_batch(
        session,
        prospects=[("env-p", "env-s", "Asia/Shanghai")],
        purchases=batch("env", stores=1, customers=2),
    )
    rows = (
        await session.execute(
            text("SELECT event_id, topic, key, envelope FROM outbox_event WHERE key LIKE 'env-%'")
        )
    ).all()
    # The buyers' first tiers, then their dates (this statement, unlike the consumer's
    # classifying one, publishes no dates: scores/expected_dates.py follows it); the registered
    # file stages nothing: a file without a score is a prospect to crm.scores.v1's readers
    # (deploy/README.md).
    assert len(rows) == 2 * len(changes) == 4
    staged = {}
    dated = {}
    for event_id, topic, key, envelope in rows:
        parsed = EventEnvelope.model_validate(envelope)
        assert (str(parsed.event_id), topic, parsed.customer_id) == (event_id, Topics.SCORES, key)
        assert parsed.type == "score.changed" and parsed.version == 1
        assert abs(parsed.occurred_at - datetime.now(UTC)) < timedelta(minutes=5)
        if parsed.payload["previous_tier"] is None:
            staged[key] = (parsed.store_id, parsed.payload)
        else:
            dated[key] = parsed.payload
    runs_out = (
        batch("env", stores=1, customers=1)[0].purchased_on + timedelta(days=60)
    ).isoformat()
    assert {
        k: (p["version"], p["supply_runs_out_on"], p["expected_purchase_on"])
        for k, p in dated.items()
    } == {
        "env-c0": (2, runs_out, runs_out),
        "env-c1": (2, runs_out, runs_out),
    }
    # Not classified yet (scores/classify.py runs after the batch's ranking).
    unclassified = {
        "ladder_level": None,
        "previous_ladder_level": None,
        "ladder_score": None,
        "lifecycle": None,
        "previous_lifecycle": None,
        # as the row was before the statement: none yet
        "supply_runs_out_on": None,
        "expected_purchase_on": None,
    }
    assert staged == {
        "env-c1": (
            "env-s0",
            {
                "value_tier": "vip",
                "previous_tier": None,
                "version": 1,
                "net_spend_365d": "22.00",
                "cause": "purchase",
                **unclassified,
            },
        ),
        "env-c0": (
            "env-s0",
            # One of two spenders is above: p = 0.5.
            {
                "value_tier": "small",
                "previous_tier": None,
                "version": 1,
                "net_spend_365d": "20.00",
                "cause": "purchase",
                **unclassified,
            },
        ),
    }
    assert len({r.event_id for r in rows}) == 4


async def test_enqueue_many_stages_a_list_with_one_statement(
    session: AsyncSession, stack: LocalStack
) -> None:
    envelopes = [
        EventEnvelope(type="x.happened", store_id="many-s", customer_id=f"many-c{n}")
        for n in range(25)
    ]
    async with counting_statements(session, stack) as statements:
        await enqueue_many(session, topic=Topics.SCORES, events=envelopes)
        await session.flush()
    assert len(statements) == 1
    rows = (
        await session.execute(
            text("SELECT key, envelope FROM outbox_event WHERE key LIKE 'many-c%' ORDER BY id")
        )
    ).all()
    assert [(k, EventEnvelope.model_validate(e)) for k, e in rows] == [
        (e.customer_id, e) for e in envelopes
    ]
