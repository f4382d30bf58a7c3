"""A merge moves the duplicate's points to the survivor (customers/merge.py calls this in the
merge's transaction).

Summarised, not re-pointed: each ledger tells its own file's story with its own balances, so
the duplicate's rows stay on the duplicate (closed by one ``adjust`` taking its balance to 0,
``reference`` naming the survivor) and the survivor gets one incoming ``adjust`` per day the
moved points expire on (``reference`` naming the duplicate), each a lot that keeps its expiry.
The purchases moved too, so the survivor's level is settled on its new 12-month spend
(``customer.level_changed`` with cause ``merge`` when it moves).
"""

from typing import Any

from crm_libs.ids import new_id
from customer_service.membership import events
from customer_service.membership.ledger import settle_level
from customer_service.membership.models import ADJUST

_OPEN = """
    INSERT INTO member_account (customer_id, store_id, points_balance)
    VALUES ($1::text, $2::text, 0) ON CONFLICT (customer_id) DO NOTHING
"""
# Both accounts in id order: a concurrent merge of the pair the other way round waits.
_LOCK_PAIR = """
    SELECT customer_id, points_balance, level FROM member_account
    WHERE customer_id IN ($1::text, $2::text) ORDER BY customer_id FOR UPDATE
"""
_LOTS = """
    SELECT expires_on, sum(remaining)::bigint AS points FROM points_entry
    WHERE customer_id = $1::text AND remaining > 0 GROUP BY expires_on ORDER BY expires_on
"""
_CLOSE_LOTS = "UPDATE points_entry SET remaining = 0 WHERE customer_id = $1::text AND remaining > 0"
_SET_BALANCE = "UPDATE member_account SET points_balance = $2::bigint WHERE customer_id = $1::text"
_ENTRY = """
    INSERT INTO points_entry
        (id, store_id, customer_id, kind, points, balance_after, reference, reason, remaining,
         expires_on)
    VALUES ($1::text, $2::text, $3::text, $4::text, $5::bigint, $6::bigint, $7::text, $8::text,
            $9::bigint, $10::date)
"""


async def move_on_merge(
    conn: Any, *, store_id: str, duplicate_id: str, survivor_id: str
) -> dict[str, Any]:
    """Move the duplicate's balance to the survivor; what moved, for the merge's record."""
    for customer_id in sorted((duplicate_id, survivor_id)):
        await conn.execute(_OPEN, customer_id, store_id)
    accounts = {
        r["customer_id"]: r for r in await conn.fetch(_LOCK_PAIR, duplicate_id, survivor_id)
    }
    lots = await conn.fetch(_LOTS, duplicate_id)
    moved = sum(r["points"] for r in lots)
    if moved:
        balance = accounts[survivor_id]["points_balance"]
        for lot in lots:
            balance += lot["points"]
            await conn.execute(
                _ENTRY,
                new_id(),
                store_id,
                survivor_id,
                ADJUST,
                lot["points"],
                balance,
                f"merge:{duplicate_id}",
                "merged from the duplicate file",
                lot["points"],
                lot["expires_on"],
            )
        await conn.execute(_SET_BALANCE, survivor_id, balance)
        await conn.execute(_CLOSE_LOTS, duplicate_id)
        await conn.execute(
            _ENTRY,
            new_id(),
            store_id,
            duplicate_id,
            ADJUST,
            -moved,
            0,
            f"merge:{survivor_id}",
            "merged into the surviving file",
            None,
            None,
        )
        await conn.execute(_SET_BALANCE, duplicate_id, 0)
    level = await settle_level(
        conn,
        store_id=store_id,
        customer_id=survivor_id,
        level=accounts[survivor_id]["level"],
        cause=events.MERGE,
    )
    return {"points": moved, "level": level}
