"""The daily job: at each store's local midnight, points whose day has come expire, first in
first out, and members whose purchases left the 12-month window move down a level.

The shape is engagement's daily care jobs' and scoring's ageing: one replica leads a run (a
PostgreSQL advisory lock held for the run), each store in a transaction of its own; a store's
run and the local day it was for (``points_expiry_day``) are written in one transaction and
checked again under a per-store lock, so a restart, a second replica or a new leader never runs
a store twice for one day.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_libs.events.driver import driver_connection
from crm_libs.ids import new_id
from crm_libs.leader import database_url_of, leader_lock
from customer_service.membership import events
from customer_service.membership.earning import spend_12m_sql
from customer_service.membership.ledger import rules_of, settle_level

log = logging.getLogger(__name__)

# Unique among this database's one-bigint advisory locks.
EXPIRY_LOCK = 72_808_001

# Stores with members, their zone and the day they were last run for.
_STORES = """
    SELECT s.id AS store_id, s.timezone, d.expired_on
    FROM store s LEFT JOIN points_expiry_day d ON d.store_id = s.id
    WHERE EXISTS (SELECT 1 FROM member_account a WHERE a.store_id = s.id)
"""
# A store's run, in the two-int space: this job's class, then the store.
STORE_LOCK_CLASS = 7281
_STORE_LOCK = "SELECT pg_advisory_xact_lock($1::int, hashtext($2::text))"
_EXPIRED_ON = "SELECT expired_on FROM points_expiry_day WHERE store_id = $1::text"
_MARK = """
    INSERT INTO points_expiry_day (store_id, expired_on, expired_at) VALUES ($1, $2, now())
    ON CONFLICT (store_id) DO UPDATE SET expired_on = excluded.expired_on,
                                         expired_at = excluded.expired_at
"""
# The members with lots due, locked (in id order: no deadlock with another locker of several);
# a redemption or a sale of theirs waits for the store's run, which is short.
_LOCK_DUE = """
    SELECT customer_id FROM member_account
    WHERE customer_id IN (SELECT customer_id FROM points_entry
                          WHERE store_id = $1::text AND remaining > 0 AND expires_on <= $2::date)
    ORDER BY customer_id FOR UPDATE
"""
# Read after the locks: no debit can change these lots meanwhile.
_DUE = """
    SELECT customer_id, sum(remaining)::bigint AS points FROM points_entry
    WHERE store_id = $1::text AND remaining > 0 AND expires_on <= $2::date
    GROUP BY customer_id ORDER BY customer_id
"""
_EXPIRE = """
    WITH spent AS (
        UPDATE points_entry SET expired = expired + remaining, remaining = 0
        WHERE store_id = $1::text AND remaining > 0 AND expires_on <= $2::date
    ), due AS (
        SELECT * FROM unnest($3::text[], $4::bigint[], $5::text[]) AS d(customer_id, points, id)
    ), accounts AS (
        UPDATE member_account a SET points_balance = a.points_balance - due.points
        FROM due WHERE a.customer_id = due.customer_id
        RETURNING a.customer_id, a.points_balance, due.points, due.id
    )
    INSERT INTO points_entry (id, store_id, customer_id, kind, points, balance_after, reason)
    SELECT id, $1::text, customer_id, 'expire', -points, points_balance, $6::text FROM accounts
"""
# Members whose level is not what their 12-month spend reaches now (by the same rules).
_MEMBERS = f"""
    SELECT a.customer_id, a.level,
           {spend_12m_sql(store="a.store_id", customer="a.customer_id")} AS spend_12m
    FROM member_account a WHERE a.store_id = $1::text
"""  # noqa: S608 - constants

_LOCK_MEMBER = "SELECT level FROM member_account WHERE customer_id = $1::text FOR UPDATE"


@dataclass(frozen=True, slots=True)
class StoreDay:
    store_id: str
    today: date


async def stores_due(conn: Any, *, now: datetime) -> list[StoreDay]:
    """The stores whose local day has moved on since their last run."""
    due = []
    for row in await conn.fetch(_STORES):
        try:
            today = now.astimezone(ZoneInfo(row["timezone"])).date()
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("store time zone unknown", extra={"fields": dict(row)})
            continue
        if row["expired_on"] is None or row["expired_on"] < today:
            due.append(StoreDay(row["store_id"], today))
    return due


async def run_store(conn: Any, *, store_id: str, today: date) -> tuple[int, int] | None:
    """Expire the store's points due by its local ``today`` and settle its members' levels;
    (points expired, levels moved), or None if the store was run for that day already. The
    caller commits."""
    await conn.execute(_STORE_LOCK, STORE_LOCK_CLASS, store_id)
    done = await conn.fetchval(_EXPIRED_ON, store_id)
    if done is not None and done >= today:
        return None
    await conn.fetch(_LOCK_DUE, store_id, today)
    due = await conn.fetch(_DUE, store_id, today)
    if due:
        await conn.execute(
            _EXPIRE,
            store_id,
            today,
            [r["customer_id"] for r in due],
            [r["points"] for r in due],
            [new_id() for _ in due],
            f"expired on {today.isoformat()}",
        )
    moved = 0
    rules = await rules_of(conn, store_id=store_id)
    base = rules.level_for(Decimal(0))
    for member in await conn.fetch(_MEMBERS, store_id):
        held = member["level"] if member["level"] is not None else base
        if rules.level_for(member["spend_12m"]) == held:
            continue
        # Locked and read again: a sale or refund of theirs may have settled it meanwhile.
        locked = await conn.fetchrow(_LOCK_MEMBER, member["customer_id"])
        before = locked["level"] if locked["level"] is not None else base
        after = await settle_level(
            conn,
            store_id=store_id,
            customer_id=member["customer_id"],
            level=locked["level"],
            cause=events.WINDOW,
        )
        moved += after != before
    await conn.execute(_MARK, store_id, today)
    return sum(r["points"] for r in due), moved


async def run_due_stores(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """Run every store past its local midnight, each in its own transaction."""
    now = now or datetime.now(UTC)
    async with sessionmaker() as session:
        due = await stores_due(await driver_connection(session), now=now)
    ran = {}
    for store in due:
        async with sessionmaker() as session, session.begin():
            conn = await driver_connection(session)
            result = await run_store(conn, store_id=store.store_id, today=store.today)
        if result is not None:
            ran[store.store_id] = result
    return ran


async def run_as_leader(
    sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None
) -> dict[str, tuple[int, int]] | None:
    """:func:`run_due_stores` if no other replica is running it; None when another leads."""
    async with leader_lock(database_url_of(sessionmaker), EXPIRY_LOCK) as leading:
        if not leading:
            return None
        return await run_due_stores(sessionmaker, now=now)


async def points_expiry_worker(app: FastAPI) -> None:
    """Every ``points_expiry_check_seconds``, run the stores past their local midnight (first
    at start-up: a replica started after midnight runs at once)."""
    settings = app.state.settings
    while True:
        ran = await run_as_leader(app.state.sessionmaker)
        if ran:
            log.info(
                "points expired",
                extra={
                    "fields": {
                        "stores": len(ran),
                        "points": sum(p for p, _ in ran.values()),
                        "levels_moved": sum(m for _, m in ran.values()),
                    }
                },
            )
        await asyncio.sleep(settings.points_expiry_check_seconds)
