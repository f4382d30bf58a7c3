"""Follow-up plans: started by a first purchase of a product, listed as tasks."""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.ids import new_id
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from engagement_service.followups.models import FollowUpPlan, ProductBought, Task
from engagement_service.followups.phases import schedule_phases

FOLLOW_UP = "follow_up"


@dataclass(frozen=True)
class PurchaseSeen:
    """The fields of ``purchase.recorded`` this service reads."""

    purchase_id: str
    store_id: str
    customer_id: str
    purchased_on: date
    staff_id: str | None
    skus: tuple[str, ...]

    @classmethod
    def from_payload(
        cls, *, store_id: str, customer_id: str, payload: dict[str, Any]
    ) -> "PurchaseSeen":
        skus = tuple(dict.fromkeys(line["sku"] for line in payload["lines"]))
        return cls(
            purchase_id=payload["purchase_id"],
            store_id=store_id,
            customer_id=customer_id,
            purchased_on=date.fromisoformat(payload["purchased_on"]),
            staff_id=payload.get("staff_id"),
            skus=skus,
        )


async def start_plans(
    session: AsyncSession, *, purchases: list[PurchaseSeen]
) -> list[FollowUpPlan]:
    """Start a five-phase plan for every product a customer buys for the first time."""
    wanted: dict[tuple[str, str], PurchaseSeen] = {}
    for p in purchases:
        for sku in p.skus:
            wanted.setdefault((p.customer_id, sku), p)
    if not wanted:
        return []
    stmt = (
        insert(ProductBought)
        .values(
            [
                {
                    "customer_id": c,
                    "sku": sku,
                    "store_id": p.store_id,
                    "first_purchase_id": p.purchase_id,
                }
                for (c, sku), p in wanted.items()
            ]
        )
        .on_conflict_do_nothing()
        .returning(col(ProductBought.customer_id), col(ProductBought.sku))
    )
    first_time = {(r.customer_id, r.sku) for r in await session.execute(stmt)}
    plans: list[FollowUpPlan] = []
    tasks: list[dict[str, Any]] = []
    for pair, p in wanted.items():
        if pair not in first_time:
            continue
        plan = FollowUpPlan(
            store_id=p.store_id,
            customer_id=p.customer_id,
            sku=pair[1],
            purchase_id=p.purchase_id,
            started_on=p.purchased_on,
        )
        plans.append(plan)
        for phase, due_on in schedule_phases(p.purchased_on):
            tasks.append(
                {
                    "id": new_id(),
                    "store_id": p.store_id,
                    "customer_id": p.customer_id,
                    "plan_id": plan.id,
                    "kind": FOLLOW_UP,
                    "phase": phase.number,
                    "sku": pair[1],
                    "due_on": due_on,
                    "method": phase.method,
                    "purpose": phase.purpose,
                    "status": "open",
                    "assignee_staff_id": p.staff_id,
                }
            )
    if plans:
        session.add_all(plans)
        await session.flush()
        await session.execute(insert(Task), tasks)
    return plans


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    staff_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    due_before: date | None = None,
) -> list[Task]:
    query = keyset(select(Task), col(Task.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Task.store_id) == scope)
    if staff_id:
        query = query.where(col(Task.assignee_staff_id) == staff_id)
    if customer_id:
        query = query.where(col(Task.customer_id) == customer_id)
    if status:
        query = query.where(col(Task.status) == status)
    if due_before:
        query = query.where(col(Task.due_on) < due_before)
    return list((await session.execute(query)).scalars())
