"""The points ledger: redemptions, refunds' reversals, and what a member's card shows.

Every change of a balance locks the member's ``member_account`` row first (a conditional UPDATE
for a redemption, ``FOR UPDATE`` for the rest), then takes its points and writes its ledger row:
two redemptions of one member queue on that row, and the second sees what the first left, so a
balance is never overspent and never goes below zero (a CHECK keeps it so too). Points are
taken from the lots (``earn`` and incoming ``adjust`` rows, with what is ``remaining`` of each)
that expire first: a debit never leaves older points to expire while younger ones were spent.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import orjson

from crm_libs.events.envelope import Topics
from crm_libs.ids import new_id
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from customer_service.customers import service as customers
from customer_service.membership import events
from customer_service.membership.earning import spend_12m_sql
from customer_service.membership.models import REDEEM, REVERSE
from customer_service.membership.rules import DEFAULT_RULES, Rules

DEFAULT_LEVELS = DEFAULT_RULES.model_dump(mode="json")["levels"]

_REDEEM = """
    UPDATE member_account SET points_balance = points_balance - $2::bigint
    WHERE customer_id = $1::text AND points_balance >= $2::bigint
    RETURNING points_balance
"""
_BALANCE = "SELECT points_balance FROM member_account WHERE customer_id = $1::text"
_LOCK_ACCOUNT = """
    SELECT points_balance, level FROM member_account WHERE customer_id = $1::text FOR UPDATE
"""
_TAKE = "UPDATE member_account SET points_balance = $2::bigint WHERE customer_id = $1::text"
# $2 points taken from the customer's open lots, those expiring first (then the oldest); the
# account is locked, so the lots read here are the ones committed last.
_TAKE_FROM_LOTS_AND_RECORD = """
    WITH lots AS (
        SELECT id, remaining,
               sum(remaining) OVER (ORDER BY expires_on, id) - remaining AS before
        FROM points_entry WHERE customer_id = $1::text AND remaining > 0
    ), taken AS (
        UPDATE points_entry e
        SET remaining = e.remaining - least(l.remaining, $2::bigint - l.before)
        FROM lots l WHERE e.id = l.id AND l.before < $2::bigint
    )
    INSERT INTO points_entry
        (id, store_id, customer_id, kind, points, balance_after, reference, reason, shortfall)
    VALUES ($3::text, $4::text, $1::text, $5::text, -$2::bigint, $6::bigint, $7::text, $8::text,
            $9::bigint)
    RETURNING id, at
"""
_MOVE_LEVEL = """
    UPDATE member_account
    SET previous_level = level, level = $2::text, level_event_id = $3::text,
        level_changed_at = now()
    WHERE customer_id = $1::text
"""
_STAGE = """
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    VALUES ($1::text, $2::text, $3::text, $4::jsonb)
"""
_SPEND = "SELECT " + spend_12m_sql(store="$1::text", customer="$2::text")
_RULES = """
    SELECT points_per_yuan, points_expire_months, levels::text AS levels
    FROM membership_rules WHERE store_id = $1::text
"""


@dataclass(frozen=True, slots=True)
class Redemption:
    id: str
    customer_id: str
    points: int
    gift: str
    balance_after: int

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer_id": self.customer_id,
            "points": self.points,
            "gift": self.gift,
            "balance_after": self.balance_after,
        }


async def rules_of(conn: Any, *, store_id: str) -> Rules:
    row = await conn.fetchrow(_RULES, store_id)
    return Rules.of(*row) if row is not None else Rules.of(None, None, None)


async def redeem(
    conn: Any, *, principal: Principal, customer_id: str, points: int, gift: str
) -> Redemption:
    """Take ``points`` for ``gift`` from a member of the caller's store; 409 naming the balance
    when it holds fewer. Its own transaction (a savepoint inside a keyed request's)."""
    file = await customers.read(conn, principal=principal, customer_id=customer_id)
    if file["merged_into"] is not None:
        raise Conflict(f"The file was merged into {file['merged_into']}: redeem there")
    async with conn.transaction():
        balance = await conn.fetchval(_REDEEM, customer_id, points)
        if balance is None:
            held = await conn.fetchval(_BALANCE, customer_id) or 0
            raise Conflict(
                f"The balance is {held} points: {points} cannot be redeemed",
                errors=[{"field": "points", "message": f"more than the balance of {held}"}],
            )
        entry_id = new_id()
        await conn.fetchrow(
            _TAKE_FROM_LOTS_AND_RECORD,
            customer_id,
            points,
            entry_id,
            file["store_id"],
            REDEEM,
            balance,
            None,
            gift,
            0,
        )
    return Redemption(entry_id, customer_id, points, gift, balance)


async def reverse_for_refund(
    conn: Any,
    *,
    purchase_id: str,
    store_id: str,
    customer_id: str,
    purchase_total: Decimal,
    refunded_before: Decimal,
    refunded_now: Decimal,
    reason: str,
    counted_in_spend: bool,
) -> None:
    """Take back what the purchase earned in proportion to the money refunded (in the refund's
    transaction). Earlier refunds' shares are counted, so refunding a sale in parts takes back
    exactly what refunding it whole would. Points of the sale that expired are not taken again
    (the first parts refunded are taken from them). A balance already spent gives what is left
    and the rest is recorded as the reversal's ``shortfall``; a refund that lowers the 12-month
    spend below a level moves it and stages ``customer.level_changed``."""
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(points) FILTER (WHERE kind = 'earn'), 0) AS earned,
               coalesce(sum(expired) FILTER (WHERE kind = 'earn'), 0) AS expired,
               coalesce(sum(shortfall - points) FILTER (WHERE kind = 'reverse'), 0) AS reversed
        FROM points_entry WHERE store_id = $1::text AND reference = $2::text
        """,
        store_id,
        purchase_id,
    )
    account = await conn.fetchrow(_LOCK_ACCOUNT, customer_id)
    if row["earned"] > 0 and purchase_total > 0 and account is not None:
        share = min(refunded_before + refunded_now, purchase_total) / purchase_total
        # What expired of the sale's points is gone already: expiry took it from the balance.
        want = int(row["earned"] * share) - int(row["reversed"]) - int(row["expired"])
        if want > 0:
            taken = min(want, account["points_balance"])
            balance = account["points_balance"] - taken
            await conn.execute(_TAKE, customer_id, balance)
            await conn.fetchrow(
                _TAKE_FROM_LOTS_AND_RECORD,
                customer_id,
                taken,
                new_id(),
                store_id,
                REVERSE,
                balance,
                purchase_id,
                reason,
                want - taken,
            )
    if counted_in_spend and account is not None:
        await settle_level(
            conn,
            store_id=store_id,
            customer_id=customer_id,
            level=account["level"],
            cause=events.REFUND,
        )


async def settle_level(
    conn: Any, *, store_id: str, customer_id: str, level: str | None, cause: str
) -> str | None:
    """Move a locked account's level to what its 12-month spend reaches now, staging
    ``customer.level_changed`` when it moves; the level it holds after."""
    rules = await rules_of(conn, store_id=store_id)
    spend = await conn.fetchval(_SPEND, store_id, customer_id)
    before = level if level is not None else rules.level_for(Decimal(0))
    after = rules.level_for(spend)
    if after == before:
        return before
    event = events.level_changed(
        store_id=store_id,
        customer_id=customer_id,
        from_level=before,
        to_level=after,
        spend_12m=spend,
        cause=cause,
    )
    await conn.execute(_MOVE_LEVEL, customer_id, after, str(event.event_id))
    await conn.execute(
        _STAGE, str(event.event_id), Topics.CUSTOMERS, customer_id, event.to_bytes().decode()
    )
    return after


@dataclass(frozen=True, slots=True)
class Card:
    """``GET /customers/{id}/membership``."""

    customer_id: str
    level: str | None
    level_name: str | None
    discount_percent: Decimal
    points_balance: int
    points_expiring: list[tuple[int, date]]
    spend_12m: Decimal


_CARD = f"""
    SELECT (SELECT points_balance FROM member_account WHERE customer_id = $2::text) AS balance,
           {spend_12m_sql(store="$1::text", customer="$2::text")} AS spend_12m,
           (SELECT levels::text FROM membership_rules WHERE store_id = $1::text) AS levels
"""  # noqa: S608 - constants
# The next days points expire on, with how many (the lots still open, grouped by day).
_EXPIRING = """
    SELECT expires_on, sum(remaining)::bigint AS points FROM points_entry
    WHERE customer_id = $1::text AND remaining > 0
    GROUP BY expires_on ORDER BY expires_on LIMIT $2::int
"""


async def card(conn: Any, *, principal: Principal, customer_id: str, expiring: int = 3) -> Card:
    """The member's level by the 12-month spend now, balance and the next points to expire."""
    file = await customers.read(conn, principal=principal, customer_id=customer_id)
    row = await conn.fetchrow(_CARD, file["store_id"], customer_id)
    if row is None:
        raise NotFound("No such customer")
    levels = orjson.loads(row["levels"]) if row["levels"] else DEFAULT_LEVELS
    spend: Decimal = row["spend_12m"]
    reached = None
    for level in levels:
        if spend >= Decimal(level["min_spend_12m"]):
            reached = level
    lots = await conn.fetch(_EXPIRING, customer_id, expiring)
    return Card(
        customer_id=customer_id,
        level=reached["code"] if reached else None,
        level_name=reached["name"] if reached else None,
        discount_percent=Decimal(reached["discount_percent"]) if reached else Decimal(0),
        points_balance=row["balance"] or 0,
        points_expiring=[(r["points"], r["expires_on"]) for r in lots],
        spend_12m=spend,
    )


_ENTRIES = """
    SELECT id, at, kind, points, balance_after, reference, reason, shortfall, expires_on
    FROM points_entry
    WHERE store_id = $1::text AND customer_id = $2::text AND ($3::text IS NULL OR id > $3::text)
    ORDER BY id LIMIT $4::int
"""


async def entries(
    conn: Any, *, principal: Principal, customer_id: str, after: str | None, limit: int
) -> list[Any]:
    """A page of the member's ledger, oldest first (``limit + 1`` rows: one tells if more)."""
    file = await customers.read(conn, principal=principal, customer_id=customer_id)
    return list(await conn.fetch(_ENTRIES, file["store_id"], customer_id, after, limit + 1))
