"""The score's history: every change of value tier, ladder level or lifecycle, with its cause.

Written by the statements that make the changes, as CTEs beside the ``score.changed`` they
stage (scores/events.py for tiers, scores/classify.py for ladder and lifecycle), so a change and
its history row are never apart. ``at`` is when the change was made (the transaction's time),
also when a replay evaluates windows as of another date.

The cause of a tier the re-rank moves: what the transaction declared (:func:`declare_cause`,
e.g. the daily ageing, a recompute, a refund) or else ``purchase`` for a customer whose purchase
the transaction stored and ``rank_moved`` for one pushed by the others' spend.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from scoring_service.scores.tiers import PROSPECT

PURCHASE = "purchase"
REFUND = "refund"
EVENT_ATTENDED = "event_attended"
GUEST_BROUGHT = "guest_brought"
REFERRAL = "referral"
FLOOR_SET = "floor_set"
FLOOR_CLEARED = "floor_cleared"
AGEING = "ageing"
RECOMPUTE = "recompute"
RANK_MOVED = "rank_moved"
# A file registered: a prospect (staged with its score.changed, not a change to keep).
REGISTERED = "registered"
# A merge's survivor took the merged-away file's purchases and signals.
MERGED = "merged"
# The customer file changed what the ladder or loyalty reads (its referrer, competitors' products).
FILE_CHANGED = "file_changed"
# A member event of the store scheduled or cancelled moved an expected purchase date.
MEMBER_EVENT = "member_event"

# A transaction-local setting: gone with the transaction, seen by every statement of it.
_CAUSE_SETTING = "scoring.cause"


# SQL: the cause the transaction declared (declare_cause), NULL if none.
DECLARED_CAUSE_SQL = f"NULLIF(current_setting('{_CAUSE_SETTING}', true), '')"


def tier_cause_sql(row: str) -> str:
    """SQL for the cause of the tier change in row ``row`` (a TierChange's columns): the
    declared one, else whether the transaction stored a purchase of the customer (now() is the
    transaction's start, which purchase_fact.created_at defaults to)."""
    return f"""COALESCE(
        {DECLARED_CAUSE_SQL},
        CASE WHEN {row}.previous_tier IS NULL AND {row}.value_tier = '{PROSPECT}'
             THEN '{REGISTERED}'
             WHEN EXISTS (SELECT FROM purchase_fact AS pf
                          WHERE pf.customer_id = {row}.customer_id AND pf.created_at = now())
             THEN '{PURCHASE}' ELSE '{RANK_MOVED}' END)"""


async def declare_cause(session: AsyncSession | asyncpg.Connection, *, cause: str) -> None:
    """Name the cause of every change the rest of this transaction makes to tiers."""
    db = await driver_connection(session) if isinstance(session, AsyncSession) else session
    await db.execute("SELECT set_config($1, $2, true)", _CAUSE_SETTING, cause)


class HistoryEntry(msgspec.Struct, frozen=True):
    id: int
    at: datetime
    field: str
    previous: str | None
    value: str | None
    cause: str


# Newest first, older than the id the previous page ended at (null: the first page).
_PAGE_SQL = text("""
    SELECT id, at, field, previous, value, cause FROM score_history
    WHERE customer_id = :customer_id
      AND (CAST(:before_id AS bigint) IS NULL OR id < CAST(:before_id AS bigint))
    ORDER BY id DESC
    LIMIT :limit
""")


async def history_page(
    session: AsyncSession, *, customer_id: str, before_id: int | None, limit: int
) -> Sequence[HistoryEntry]:
    """Up to ``limit`` changes of the customer's score, newest first, older than ``before_id``."""
    rows = await session.execute(
        _PAGE_SQL, {"customer_id": customer_id, "before_id": before_id, "limit": limit}
    )
    return [HistoryEntry(**r._mapping) for r in rows]
