"""Scoring: apply purchases to aggregates, then re-rank the touched stores' value pyramid."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from crm_libs.principal import Principal
from crm_libs.problems import NotFound
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from scoring_service.scores import events
from scoring_service.scores.aggregates import PurchaseSeen, extend_supply
from scoring_service.scores.models import CustomerScore, PurchaseFact
from scoring_service.scores.tiers import INACTIVE, WINDOW_DAYS, tier_case_sql

_TIER_CASE, _TIER_PARAMS = tier_case_sql()

# Rank the store's spenders; rank()-1 is "how many have strictly greater spend", so ties share a tier.
_RERANK_SQL = text(
    f"""
    WITH ranked AS (
        SELECT customer_id, value_tier AS previous_tier, net_spend_365d,
               net_spend_365d > 0 AS spends,
               rank() OVER (PARTITION BY net_spend_365d > 0 ORDER BY net_spend_365d DESC) - 1 AS greater,
               count(*) OVER (PARTITION BY net_spend_365d > 0) AS spenders
        FROM customer_score
        WHERE store_id = :store_id
    ), tiered AS (
        SELECT customer_id, previous_tier, net_spend_365d,
               CASE WHEN NOT spends THEN '{INACTIVE}' ELSE {_TIER_CASE} END AS tier
        FROM ranked
    )
    UPDATE customer_score AS cs
    SET value_tier = t.tier, version = cs.version + 1, computed_at = :now
    FROM tiered AS t
    WHERE cs.customer_id = t.customer_id AND cs.value_tier IS DISTINCT FROM t.tier
    RETURNING cs.customer_id, cs.store_id, t.previous_tier, t.tier, cs.version, t.net_spend_365d
    """
)

_WINDOW_SPEND_SQL = text(
    """
    UPDATE customer_score AS cs
    SET net_spend_365d = COALESCE(s.spend, 0), computed_at = :now
    FROM (
        SELECT c.customer_id, SUM(f.total) AS spend
        FROM unnest(CAST(:ids AS text[])) AS c(customer_id)
        LEFT JOIN purchase_fact f ON f.customer_id = c.customer_id AND f.purchased_at > :since
        GROUP BY c.customer_id
    ) AS s
    WHERE cs.customer_id = s.customer_id
    """
)


def window_start(as_of: date | None) -> tuple[datetime, datetime]:
    """(now, start of the trailing window); ``as_of`` pins "now" for historical replays."""
    now = datetime.now(UTC) if as_of is None else datetime.combine(as_of, time.max, tzinfo=UTC)
    return now, now - timedelta(days=WINDOW_DAYS)


async def apply_purchases(
    session: AsyncSession, *, purchases: list[PurchaseSeen], as_of: date | None = None
) -> list[events.TierChange]:
    """Fold new purchases into aggregates, re-rank their stores, stage ``score.changed``."""
    if not purchases:
        return []
    now, since = window_start(as_of)
    fresh = await _store_facts(session, purchases)
    if not fresh:
        return []
    customer_ids = sorted({p.customer_id for p in fresh})
    # Locked in a stable order so concurrent group members never deadlock on each other.
    existing = {
        row.customer_id: row
        for row in (
            await session.execute(
                select(CustomerScore)
                .where(CustomerScore.customer_id.in_(customer_ids))  # type: ignore[attr-defined]
                .order_by(CustomerScore.customer_id)
                .with_for_update()
            )
        ).scalars()
    }
    rows: dict[str, dict[str, object]] = {}
    for p in fresh:  # in arrival order: one customer's events arrive in order on one partition
        row = rows.get(p.customer_id)
        if row is None:
            current = existing.get(p.customer_id)
            row = {
                "customer_id": p.customer_id,
                "store_id": p.store_id,
                "timezone": p.timezone,
                "purchase_count": current.purchase_count if current else 0,
                "first_purchase_at": current.first_purchase_at if current else None,
                "last_purchase_at": current.last_purchase_at if current else None,
                "supply_runs_out_on": current.supply_runs_out_on if current else None,
                "version": current.version if current else 0,
            }
            rows[p.customer_id] = row
        row["purchase_count"] = int(row["purchase_count"]) + 1  # type: ignore[call-overload]
        first, last = row["first_purchase_at"], row["last_purchase_at"]
        row["first_purchase_at"] = (
            p.purchased_at if first is None or p.purchased_at < first else first
        )  # type: ignore[operator]
        row["last_purchase_at"] = p.purchased_at if last is None or p.purchased_at > last else last  # type: ignore[operator]
        row["supply_runs_out_on"] = extend_supply(
            row["supply_runs_out_on"],  # type: ignore[arg-type]
            purchased_on=p.purchased_on,
            supply_days=p.supply_days,
        )
        row["timezone"] = p.timezone
    stmt = insert(CustomerScore).values(list(rows.values()))
    stmt = stmt.on_conflict_do_update(
        index_elements=["customer_id"],
        set_={
            c: stmt.excluded[c]
            for c in (
                "timezone",
                "purchase_count",
                "first_purchase_at",
                "last_purchase_at",
                "supply_runs_out_on",
            )
        },
    )
    await session.execute(stmt)
    await session.execute(_WINDOW_SPEND_SQL, {"ids": customer_ids, "since": since, "now": now})
    changes = await rerank_stores(session, store_ids={p.store_id for p in fresh}, now=now)
    return changes


async def rerank_stores(
    session: AsyncSession, *, store_ids: Iterable[str], now: datetime
) -> list[events.TierChange]:
    """Recompute the pyramid of each store; stage an event for every customer whose tier moved."""
    changes: list[events.TierChange] = []
    for store_id in sorted(store_ids):
        result = await session.execute(
            _RERANK_SQL, {"store_id": store_id, "now": now, **_TIER_PARAMS}
        )
        changes.extend(
            events.TierChange(
                customer_id=r.customer_id,
                store_id=r.store_id,
                previous_tier=r.previous_tier,
                value_tier=r.tier,
                version=r.version,
                net_spend_365d=r.net_spend_365d,
            )
            for r in result
        )
    await events.scores_changed(session, changes=changes)
    return changes


async def refresh_windows(
    session: AsyncSession, *, store_id: str, as_of: date | None = None
) -> int:
    """Let purchases age out of the trailing window for a whole store, then re-rank it."""
    now, since = window_start(as_of)
    ids = list(
        (
            await session.execute(
                select(CustomerScore.customer_id).where(CustomerScore.store_id == store_id)
            )
        ).scalars()
    )
    await session.execute(_WINDOW_SPEND_SQL, {"ids": ids, "since": since, "now": now})
    return len(await rerank_stores(session, store_ids=[store_id], now=now))


async def _store_facts(session: AsyncSession, purchases: list[PurchaseSeen]) -> list[PurchaseSeen]:
    """Insert the purchase facts; return only purchases not stored before (a second guard)."""
    stmt = (
        insert(PurchaseFact)
        .values(
            [
                {
                    "purchase_id": p.purchase_id,
                    "store_id": p.store_id,
                    "customer_id": p.customer_id,
                    "purchased_at": p.purchased_at,
                    "total": p.total,
                    "supply_days": p.supply_days,
                }
                for p in purchases
            ]
        )
        .on_conflict_do_nothing(index_elements=["purchase_id"])
        .returning(PurchaseFact.purchase_id)  # type: ignore[arg-type]
    )
    inserted = set((await session.execute(stmt)).scalars())
    fresh = []
    for p in purchases:
        if p.purchase_id in inserted:
            inserted.discard(p.purchase_id)  # the same purchase twice in one batch counts once
            fresh.append(p)
    return fresh


async def get_score(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> CustomerScore:
    query = select(CustomerScore).where(CustomerScore.customer_id == customer_id)
    if (scope := principal.store_scope()) is not None:
        query = query.where(CustomerScore.store_id == scope)
    score = (await session.execute(query)).scalar_one_or_none()
    if score is None:
        raise NotFound("No score for this customer yet")
    return score
