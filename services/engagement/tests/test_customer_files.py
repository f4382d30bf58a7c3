"""The customer file's events as engagement's consumer applies them: the read copy, and the tasks
that follow their file to its owner, onto a merge's survivor, or closed with it."""

import asyncio
import re
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import make_engine, make_sessionmaker
from crm_libs.events.envelope import EventEnvelope, Topics
from engagement_service.consumed import decode_event
from engagement_service.customers.events import CUSTOMER_EVENTS, CustomerChangeSeen
from engagement_service.customers.service import _COPIED
from engagement_service.handlers import handle_events

STORE = "s1"
BOUGHT_ON = date.today() - timedelta(days=2)


def file_event(
    type_: str,
    customer: str,
    *,
    version: int,
    owner: str | None = None,
    status: str = "active",
    changed: tuple[str, ...] = (),
    merged_into: str | None = None,
    **fields: Any,
) -> EventEnvelope:
    file = {
        "timezone": "Asia/Shanghai",
        "status": status,
        "owner_staff_id": owner,
        "birthday": None,
        "birthday_calendar": "solar",
        "wedding_anniversary": None,
        "relations": [],
        "referrer_id": None,
        "consents": {"sms": {"granted": False, "at": None, "channel": None}},
        "version": version,
        **fields,
    }
    payload: dict[str, Any] = {"file": file}
    if changed:
        payload["changed"] = list(changed)
    if merged_into:
        payload["merged_into"] = merged_into
    return EventEnvelope(type=type_, store_id=STORE, customer_id=customer, payload=payload)


def registered(customer: str, *, owner: str | None, version: int = 1) -> EventEnvelope:
    return file_event("customer.registered", customer, version=version, owner=owner)


def owner_changed(customer: str, *, owner: str | None, version: int) -> EventEnvelope:
    return file_event(
        "customer.updated", customer, version=version, owner=owner, changed=("owner_staff_id",)
    )


def merged(customer: str, *, into: str, version: int, owner: str | None = None) -> EventEnvelope:
    return file_event(
        "customer.merged", customer, version=version, owner=owner, status="merged", merged_into=into
    )


def bought(customer: str, purchase_id: str, *skus: str, staff: str = "till") -> EventEnvelope:
    return EventEnvelope(
        type="purchase.recorded",
        store_id=STORE,
        customer_id=customer,
        payload={
            "purchase_id": purchase_id,
            "purchased_on": BOUGHT_ON.isoformat(),
            "staff_id": staff,
            "lines": [{"sku": sku, "qty": 1} for sku in skus],
        },
    )


async def tasks_of(session: AsyncSession, *customers: str) -> list[tuple]:
    """(customer, sku, phase, status, closed_reason, assignee) of every task, in a stable order."""
    rows = await session.execute(
        text(
            """
            SELECT customer_id, sku, phase, status, closed_reason, assignee_staff_id FROM task
            WHERE customer_id = ANY(:ids) ORDER BY customer_id, sku, phase, status, id
            """
        ),
        {"ids": list(customers)},
    )
    return [tuple(r) for r in rows]


async def copy_of(session: AsyncSession, customer: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            text("SELECT * FROM customer_file WHERE customer_id = :c"), {"c": customer}
        )
    ).one_or_none()
    return None if row is None else {k: v for k, v in row._mapping.items() if k != "updated_at"}


async def mark_done(session: AsyncSession, customer: str, sku: str, phase: int) -> None:
    await session.execute(
        text("UPDATE task SET status = 'done' WHERE customer_id = :c AND sku = :s AND phase = :p"),
        {"c": customer, "s": sku, "p": phase},
    )


def five(customer: str, sku: str, status: str, reason: str | None, assignee: str) -> list[tuple]:
    return [(customer, sku, phase, status, reason, assignee) for phase in range(1, 6)]


async def test_the_copy_holds_what_engagement_needs_from_either_shape(
    session: AsyncSession,
) -> None:
    # customer.registered as first published: the time zone alone.
    legacy = EventEnvelope(
        type="customer.registered",
        store_id=STORE,
        customer_id="c1",
        payload={"timezone": "Asia/Urumqi"},
    )
    await handle_events(session, [legacy])
    first = await copy_of(session, "c1")
    assert first is not None
    assert (first["status"], first["timezone"], first["version"]) == ("active", "Asia/Urumqi", 0)
    assert first["owner_staff_id"] is None and first["sms_consent_granted"] is False

    update = file_event(
        "customer.updated",
        "c1",
        version=2,
        owner="staff-a",
        changed=("birthday", "relations", "consents"),
        birthday="1951-08-14",
        birthday_calendar="lunar",
        wedding_anniversary="1975-05-01",
        relations=[
            {"customer_id": "c9", "kind": "child"},
            {"customer_id": "c2", "kind": "spouse"},
        ],
        consents={"sms": {"granted": True, "at": "2026-03-01T02:00:00Z", "channel": "in_store"}},
        name="王芳",  # not in the contract: ignored, never stored
    )
    await handle_events(session, [update])
    copy = await copy_of(session, "c1")
    assert copy is not None
    consent_at = copy.pop("sms_consent_at")
    assert consent_at.isoformat() == "2026-03-01T02:00:00+00:00"
    assert copy == {
        "customer_id": "c1",
        "store_id": STORE,
        "status": "active",
        "merged_into": None,
        "timezone": "Asia/Shanghai",
        "owner_staff_id": "staff-a",
        "birthday": date(1951, 8, 14),
        "birthday_calendar": "lunar",
        "wedding_anniversary": date(1975, 5, 1),
        "spouse_customer_id": "c2",
        "sms_consent_granted": True,
        "sms_consent_channel": "in_store",
        "version": 2,
    }


async def test_a_plan_goes_to_the_files_owner_else_the_purchases_staff(
    session: AsyncSession,
) -> None:
    await handle_events(session, [registered("c1", owner="owner-1"), registered("c2", owner=None)])
    await handle_events(
        session,
        [bought("c1", "p1", "A", staff="seller"), bought("c2", "p2", "A", staff="seller")],
    )
    await handle_events(session, [bought("c3", "p3", "A", staff="seller")])  # file unknown yet
    assert await tasks_of(session, "c1", "c2", "c3") == [
        *five("c1", "A", "open", None, "owner-1"),
        *five("c2", "A", "open", None, "seller"),
        *five("c3", "A", "open", None, "seller"),
    ]


async def test_a_purchase_consumed_before_the_files_first_event(session: AsyncSession) -> None:
    # The purchase's topic was read first: its staff member has the tasks until the file's
    # first event names the owner, which then takes the open ones.
    await handle_events(session, [bought("c1", "p1", "A", staff="seller")])
    await mark_done(session, "c1", "A", 1)
    await handle_events(session, [registered("c1", owner="owner-1")])
    assert await tasks_of(session, "c1") == [
        ("c1", "A", 1, "done", None, "seller"),
        *five("c1", "A", "open", None, "owner-1")[1:],
    ]


async def test_an_owner_change_moves_the_open_tasks_only(session: AsyncSession) -> None:
    await handle_events(session, [registered("c1", owner="owner-1"), bought("c1", "p1", "A")])
    await mark_done(session, "c1", "A", 1)
    await handle_events(session, [owner_changed("c1", owner="owner-2", version=2)])
    expected = [
        ("c1", "A", 1, "done", None, "owner-1"),
        *five("c1", "A", "open", None, "owner-2")[1:],
    ]
    assert await tasks_of(session, "c1") == expected
    # A file waiting in the pool (no owner) leaves the tasks where they are.
    await handle_events(session, [owner_changed("c1", owner=None, version=3)])
    assert await tasks_of(session, "c1") == expected


async def test_one_batch_applies_a_files_events_in_version_order(session: AsyncSession) -> None:
    # Out of order in the batch, and a purchase among them: the newest file wins, and the
    # purchase (handled after the files) sees it.
    await handle_events(
        session,
        [
            owner_changed("c1", owner="owner-3", version=3),
            bought("c1", "p1", "A"),
            registered("c1", owner="owner-1"),
            owner_changed("c1", owner="owner-2", version=2),
        ],
    )
    assert await tasks_of(session, "c1") == five("c1", "A", "open", None, "owner-3")
    copy = await copy_of(session, "c1")
    assert copy is not None and (copy["owner_staff_id"], copy["version"]) == ("owner-3", 3)


async def test_an_event_applied_twice_or_overtaken_changes_nothing(session: AsyncSession) -> None:
    change = owner_changed("c1", owner="owner-2", version=2)
    await handle_events(session, [registered("c1", owner="owner-1"), bought("c1", "p1", "A")])
    await handle_events(session, [change])
    before = (await tasks_of(session, "c1"), await copy_of(session, "c1"))
    # The same event again (a redelivery), an older version, another event of the same version.
    await handle_events(session, [change])
    await handle_events(session, [owner_changed("c1", owner="owner-0", version=1)])
    await handle_events(session, [owner_changed("c1", owner="owner-x", version=2)])
    assert (await tasks_of(session, "c1"), await copy_of(session, "c1")) == before
    assert before[0] == five("c1", "A", "open", None, "owner-2")


async def test_a_merge_moves_tasks_to_the_survivor_without_doubling_them(
    session: AsyncSession,
) -> None:
    await handle_events(
        session,
        [
            registered("keep", owner="owner-k"),
            registered("gone", owner="owner-g"),
            bought("keep", "p1", "A"),
            bought("gone", "p2", "A", "B"),
        ],
    )
    await mark_done(session, "gone", "A", 1)
    merge = merged("gone", into="keep", version=2, owner="owner-g")
    await handle_events(session, [merge])
    after = await tasks_of(session, "keep", "gone")
    assert after == sorted(
        [
            *five("keep", "A", "open", None, "owner-k"),
            # The merged-away file's history stays whole: its done task keeps its assignee.
            ("keep", "A", 1, "done", None, "owner-g"),
            *five("keep", "A", "closed", "merged", "owner-g")[1:],
            *five("keep", "B", "open", None, "owner-k"),
        ]
    )
    plans = await session.execute(
        text(
            "SELECT DISTINCT customer_id FROM follow_up_plan WHERE customer_id IN ('keep', 'gone')"
        )
    )
    assert [r.customer_id for r in plans] == ["keep"]
    # Replayed: nothing moves again.
    await handle_events(session, [merge])
    assert await tasks_of(session, "keep", "gone") == after
    # A later change of the merged-away file need not repeat where it went.
    await handle_events(
        session, [file_event("customer.updated", "gone", version=3, status="merged")]
    )
    # The survivor has bought what either file bought; a purchase of the merged-away file
    # consumed late lands on the survivor.
    await handle_events(session, [bought("keep", "p3", "B"), bought("gone", "p4", "B", "C")])
    assert await tasks_of(session, "keep", "gone") == sorted(
        [*after, *five("keep", "C", "open", None, "owner-k")]
    )
    copy = await copy_of(session, "gone")
    assert copy is not None and (copy["status"], copy["merged_into"]) == ("merged", "keep")


async def test_merges_are_followed_to_the_last_survivor(session: AsyncSession) -> None:
    # The survivor's own events are on another partition: its first event may come later.
    await handle_events(session, [merged("a", into="b", version=2), bought("a", "p1", "A")])
    await handle_events(session, [merged("b", into="c", version=2)])
    await handle_events(session, [bought("a", "p2", "B")])
    await handle_events(session, [registered("c", owner="owner-c")])
    assert await tasks_of(session, "a", "b", "c") == [
        *five("c", "A", "open", None, "owner-c"),
        *five("c", "B", "open", None, "owner-c"),
    ]


async def test_archiving_closes_the_open_tasks_and_a_late_purchase_starts_closed(
    session: AsyncSession,
) -> None:
    await handle_events(session, [registered("c1", owner="owner-1"), bought("c1", "p1", "A")])
    await mark_done(session, "c1", "A", 1)
    archive = file_event("customer.archived", "c1", version=2, owner="owner-1", status="archived")
    await handle_events(session, [archive])
    await handle_events(session, [bought("c1", "p2", "B")])
    assert await tasks_of(session, "c1") == [
        ("c1", "A", 1, "done", None, "owner-1"),
        *five("c1", "A", "closed", "archived", "owner-1")[1:],
        *five("c1", "B", "closed", "archived", "owner-1"),
    ]


async def test_erasure_closes_the_tasks_and_keeps_only_ids_and_status(
    session: AsyncSession,
) -> None:
    full = file_event(
        "customer.registered",
        "c1",
        version=1,
        owner="owner-1",
        birthday="1950-01-02",
        wedding_anniversary="1972-03-04",
        relations=[{"customer_id": "c2", "kind": "spouse"}],
        consents={"sms": {"granted": True, "at": "2026-01-01T00:00:00Z", "channel": "paper"}},
    )
    await handle_events(session, [full, bought("c1", "p1", "A")])
    # Even an erasure that still carried facts leaves none in the copy.
    erase = file_event("customer.erased", "c1", version=5, owner="owner-1", birthday="1950-01-02")
    await handle_events(session, [erase])
    assert await tasks_of(session, "c1") == five("c1", "A", "closed", "erased", "owner-1")
    assert await copy_of(session, "c1") == {
        "customer_id": "c1",
        "store_id": STORE,
        "status": "erased",
        "merged_into": None,
        "timezone": None,
        "owner_staff_id": None,
        "birthday": None,
        "birthday_calendar": None,
        "wedding_anniversary": None,
        "spouse_customer_id": None,
        "sms_consent_granted": False,
        "sms_consent_at": None,
        "sms_consent_channel": None,
        "version": 5,
    }


def test_a_merge_without_its_survivor_is_the_events_own_fault() -> None:
    broken = merged("c1", into="c2", version=2)
    del broken.payload["merged_into"]
    with pytest.raises(ValueError, match="merged_into"):
        CustomerChangeSeen.from_envelope(broken)


async def test_a_purchase_applied_beside_a_merge_lands_on_the_survivor(database_url: str) -> None:
    # Two members of the group at once: one applies a merge, the other a purchase of the
    # merged-away file (two topics: their partitions may belong to different members).
    engine = make_engine(database_url, pool_size=3)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as setup, setup.begin():
            await handle_events(
                setup, [registered("x-keep", owner="owner-k"), registered("x-gone", owner=None)]
            )

        async def purchase() -> None:
            async with sessions() as session, session.begin():
                await handle_events(session, [bought("x-gone", "p1", "A")])

        async with sessions() as merging, merging.begin():
            await handle_events(merging, [merged("x-gone", into="x-keep", version=2)])
            buying = asyncio.create_task(purchase())
            await eventually(lambda: finished_or_waiting(buying, engine))
        await buying
        async with sessions() as check:
            assert await tasks_of(check, "x-keep", "x-gone") == five(
                "x-keep", "A", "open", None, "owner-k"
            )
    finally:
        await engine.dispose()


async def finished_or_waiting(task: asyncio.Task[None], engine: AsyncEngine) -> bool:
    if task.done():
        return True
    async with engine.connect() as conn:
        waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        return bool((await conn.execute(text(waiting))).scalar_one())


async def statements_of(
    session: AsyncSession, stack: LocalStack, batch: list[EventEnvelope]
) -> int:
    """How many statements the session's backend executes to apply ``batch`` (the server logs
    each execution; the consumer's statements go past SQLAlchemy's events to asyncpg)."""
    await session.execute(text("SET log_min_duration_statement = 0"))  # undone by the rollback
    pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    server_log = stack.postgres.data_dir / "server.log"
    start = server_log.stat().st_size
    await handle_events(session, batch)
    logged = server_log.read_bytes()[start:].decode("utf-8", "replace")
    return len(
        re.findall(
            rf"^\S+ \S+ \S+ \[{pid}\] LOG:\s+duration: .*?(?:execute|statement)", logged, re.M
        )
    )


async def test_a_batch_of_registrations_costs_the_same_statements_whatever_its_size(
    session: AsyncSession, stack: LocalStack
) -> None:
    await handle_events(session, [registered("warm-c", owner="st-1")])  # array types looked up
    small = await statements_of(
        session, stack, [registered(f"few-c{n}", owner="st-1") for n in range(2)]
    )
    large = await statements_of(
        session, stack, [registered(f"many-c{n}", owner="st-1") for n in range(40)]
    )
    assert small > 0 and large == small
    copied = await session.execute(
        text(
            "SELECT count(*) FROM customer_file "
            "WHERE customer_id LIKE 'many-c%' AND owner_staff_id = 'st-1'"
        )
    )
    assert copied.scalar_one() == 40


def story(p: str) -> list[list[EventEnvelope]]:
    """Batches of four files' events (customers ``{p}a`` to ``{p}d``): registrations with
    purchases, then owner changes, a merge, an archive and an erasure, then an overtaken event."""
    a, b, c, d = (f"{p}{x}" for x in "abcd")
    return [
        [
            file_event(
                "customer.registered",
                a,
                version=1,
                owner="owner-1",
                birthday="1951-08-14",
                birthday_calendar="lunar",
                wedding_anniversary="1975-05-01",
                relations=[{"customer_id": b, "kind": "spouse"}],
                consents={"sms": {"granted": True, "at": "2026-03-01T02:00:00Z", "channel": "x"}},
            ),
            registered(b, owner="owner-2"),
            registered(c, owner=None),
            registered(d, owner="owner-1"),
            bought(a, f"{p}p1", "A"),
            bought(b, f"{p}p2", "B"),
            bought(c, f"{p}p3", "A"),
        ],
        [
            owner_changed(a, owner="owner-4", version=3),
            owner_changed(a, owner="owner-3", version=2),
            merged(b, into=a, version=2),
            file_event("customer.archived", c, version=2),
            file_event("customer.erased", d, version=2, owner="owner-1"),
        ],
        [owner_changed(a, owner="owner-0", version=2)],
    ]


async def test_events_the_consumer_decoded_leave_what_their_envelopes_leave(
    session: AsyncSession,
) -> None:
    # The consumer hands the handler a file's event decoded by msgspec (CustomerChangeSeen,
    # engagement_service/consumed.py), anything else as an envelope.
    for batch in story("env-"):
        await handle_events(session, batch)
    for batch in story("dec-"):
        decoded = [
            decode_event(e.to_bytes(), Topics.CUSTOMERS if e.type in CUSTOMER_EVENTS else "any")
            for e in batch
        ]
        assert [isinstance(e, CustomerChangeSeen) for e in decoded] == [
            e.type in CUSTOMER_EVENTS for e in batch
        ]
        await handle_events(session, decoded)

    async def left(p: str) -> object:
        ids = [f"{p}{x}" for x in "abcd"]
        copies = [await copy_of(session, i) for i in ids]
        return repr((copies, await tasks_of(session, *ids))).replace(p, "")

    assert await left("dec-") == await left("env-")
    held = await left("env-")
    for expected in ("'merged', 'merged_into': 'a'", "'erased'", "'archived'", "'owner-4'"):
        assert expected in str(held)


async def test_the_row_type_the_copy_is_sent_in_has_the_copys_columns(
    session: AsyncSession,
) -> None:
    # customers/service.py sends a batch's rows as customer_file_copy[] (migration 0017).
    attributes = await session.execute(
        text(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS kind
            FROM pg_type AS t JOIN pg_attribute AS a ON a.attrelid = t.typrelid
            WHERE t.typname = 'customer_file_copy' AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """
        )
    )
    named = {"timestamptz": "timestamp with time zone"}
    assert [tuple(r) for r in attributes] == [
        (column, named.get(kind, kind)) for column, kind in _COPIED.items()
    ]
