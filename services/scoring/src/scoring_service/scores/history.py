"""The score's history: every change of value tier, ladder level or lifecycle, with its cause.

Written by the statements that make the changes (the re-rank in scores/service.py, the
classification in scores/classify.py), as CTEs beside the ``score.changed`` they stage, so a
change and its history row are never apart.

The cause of a tier the re-rank moves: what the transaction declared (:func:`declare_cause`,
e.g. the daily ageing, a recompute, a refund) or else ``purchase`` for a customer whose purchase
the transaction stored and ``rank_moved`` for one pushed by the others' spend.
"""

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection

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
# The customer file changed what the ladder or loyalty reads (its referrer, competitors' products).
FILE_CHANGED = "file_changed"

# A transaction-local setting: gone with the transaction, seen by every statement of it.
_CAUSE_SETTING = "scoring.cause"


# The cause of a row ``row`` (an alias of customer_score) the re-rank moved; PostgreSQL's now()
# is the transaction's start, which purchase_fact.created_at defaults to.
def tier_cause_sql(row: str) -> str:
    return f"""COALESCE(
        NULLIF(current_setting('{_CAUSE_SETTING}', true), ''),
        CASE WHEN EXISTS (SELECT FROM purchase_fact AS pf
                          WHERE pf.customer_id = {row}.customer_id AND pf.created_at = now())
             THEN '{PURCHASE}' ELSE '{RANK_MOVED}' END)"""


def tier_history_sql(changes: str, *, at: str) -> str:
    """A CTE (to follow a ``WITH``) writing a history row per tier change in ``changes``
    (columns customer_id, store_id, previous_tier, value_tier, cause); ``at`` is SQL."""
    return f"""
    tier_history AS (
        INSERT INTO score_history (customer_id, store_id, at, field, previous, value, cause)
        SELECT customer_id, store_id, {at}, 'value_tier', previous_tier, value_tier, cause
        FROM {changes}
    )
    """  # noqa: S608 (only constants of the caller's SQL are interpolated)


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


# Newest first; ``$2`` the id the previous page ended at (null: the first page).
_PAGE_SQL = """
    SELECT id, at, field, previous, value, cause FROM score_history
    WHERE customer_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
    ORDER BY id DESC
    LIMIT $3
"""


async def history_page(
    session: AsyncSession, *, customer_id: str, before_id: int | None, limit: int
) -> Sequence[HistoryEntry]:
    """Up to ``limit`` changes of the customer's score, newest first, older than ``before_id``."""
    db = await driver_connection(session)
    rows = await db.fetch(_PAGE_SQL, customer_id, before_id, limit)
    return [HistoryEntry(**r) for r in rows]
