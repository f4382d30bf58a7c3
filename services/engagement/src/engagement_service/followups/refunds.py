"""A refund or return of a plan's product ends the plan: its open tasks are closed as
``refunded`` (DOMAIN.md §4: routine care follows a plan only with no return).

A refund names the purchase it takes goods back from; the plan that purchase started for a
product it takes back is closed. Applied once: a redelivered refund finds no open plan.
A completed plan stays completed (the phases were done), and the product stays bought: buying it
again later starts no new plan.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

REFUNDED = "refunded"


@dataclass(frozen=True)
class RefundSeen:
    """The fields of ``purchase.refunded`` this service reads."""

    store_id: str
    purchase_id: str
    refunded_on: date | None
    skus: tuple[str, ...]

    @classmethod
    def from_payload(cls, *, store_id: str, payload: dict[str, Any]) -> "RefundSeen":
        refunded_on = payload.get("refunded_on")
        return cls(
            store_id=store_id,
            purchase_id=payload["purchase_id"],
            refunded_on=date.fromisoformat(refunded_on) if refunded_on else None,
            skus=tuple(dict.fromkeys(line["sku"] for line in payload["lines"])),
        )


_CLOSE_SQL = text(
    """
    WITH refunded (store_id, purchase_id, sku, refunded_on) AS (
        SELECT * FROM unnest(CAST(:stores AS text[]), CAST(:purchases AS text[]),
                             CAST(:skus AS text[]), CAST(:days AS date[]))
    ), closed AS (
        UPDATE follow_up_plan AS p
        SET status = 'closed', closed_reason = :reason, ended_on = r.refunded_on
        FROM refunded AS r
        WHERE p.store_id = r.store_id AND p.purchase_id = r.purchase_id AND p.sku = r.sku
          AND p.status = 'open'
        RETURNING p.id
    )
    UPDATE task AS t SET status = 'closed', closed_reason = :reason
    FROM closed WHERE t.plan_id = closed.id AND t.status = 'open'
    """
)


async def close_refunded_plans(session: AsyncSession, *, refunds: list[RefundSeen]) -> None:
    """Close the open plans of the refunded purchases' products, and their open tasks."""
    rows = [(r, sku) for r in refunds for sku in r.skus]
    if rows:
        await session.execute(
            _CLOSE_SQL,
            {
                "stores": [r.store_id for r, _ in rows],
                "purchases": [r.purchase_id for r, _ in rows],
                "skus": [sku for _, sku in rows],
                "days": [r.refunded_on for r, _ in rows],
                "reason": REFUNDED,
            },
        )
