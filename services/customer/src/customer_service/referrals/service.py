"""Referral chains (转介绍): who a customer brought in, and whom those brought in, downward.

A chain cannot loop: a file names its referrer among files that already exist (a registration
refers to an older file), and a later change of ``referrer_id`` is refused when the new referrer
sits below the file in its own chain (customers/service.py ``_check_referrer``). The walk below
still carries its path and never re-enters it, so a loop written around those rules (a manual
UPDATE, a merge bug) ends the walk instead of spinning until the depth limit.
"""

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.principal import Principal
from customer_service.customers import service as customers

# Ordered and paged by (depth, id): the nearest referrals first, a cursor resuming after one.
_CHAIN = text(
    """
    WITH RECURSIVE chain(customer_id, depth, referred_by, path) AS (
        SELECT c.id, 1, c.referrer_id, ARRAY[c.referrer_id, c.id]
        FROM customer c
        WHERE c.referrer_id = :root AND c.store_id = :store_id
        UNION ALL
        SELECT c.id, chain.depth + 1, c.referrer_id, chain.path || c.id
        FROM customer c JOIN chain ON c.referrer_id = chain.customer_id
        WHERE c.store_id = :store_id
          AND chain.depth < :max_depth
          AND NOT c.id = ANY(chain.path)
    )
    SELECT customer_id, depth, referred_by FROM chain
    WHERE (depth, customer_id) > (:after_depth, :after_id)
    ORDER BY depth, customer_id
    LIMIT :limit
    """
)


async def chain_below(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    max_depth: int,
    limit: int,
    after: tuple[int, str] | None,
) -> list[dict[str, Any]]:
    """Up to ``limit`` files referred by the customer, directly (depth 1) or down the chain,
    within the customer's store, after the ``(depth, id)`` of ``after``."""
    root = await customers.get(session, principal=principal, customer_id=customer_id)
    after_depth, after_id = after or (0, "")
    rows = await session.execute(
        _CHAIN,
        {
            "root": root.id,
            "store_id": root.store_id,
            "max_depth": max_depth,
            "after_depth": after_depth,
            "after_id": after_id,
            "limit": limit,
        },
    )
    return [dict(row._mapping) for row in rows]
