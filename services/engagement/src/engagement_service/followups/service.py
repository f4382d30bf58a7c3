"""Follow-up plans: started by a first purchase of a product, listed as tasks."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, cast, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.ids import new_id
from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from engagement_service.customers.models import CustomerFile
from engagement_service.customers.service import CLOSING_STATUSES, FileState
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
    session: AsyncSession,
    *,
    purchases: list[PurchaseSeen],
    files: Mapping[str, FileState] | None = None,
) -> list[FollowUpPlan]:
    """Start a five-phase plan for every product a customer buys for the first time.

    ``files`` (by the purchase's customer id) places each plan: on the survivor of a merged
    file, its tasks to the file's owner, or the purchase's staff member while engagement knows
    no owner (the customer's first event may come after the purchase: it then moves the open
    tasks to the owner). A purchase of an archived or erased file (recorded before the file was
    closed, consumed after) starts its plan closed, as if it had come first: the end is the same
    whichever topic's event arrives first.
    """
    files = files or {}
    wanted: dict[tuple[str, str], tuple[PurchaseSeen, _Placement]] = {}
    for p in purchases:
        placement = _Placement.of(p, files.get(p.customer_id))
        for sku in p.skus:
            wanted.setdefault((placement.customer_id, sku), (p, placement))
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
                for (c, sku), (p, _) in wanted.items()
            ]
        )
        .on_conflict_do_nothing()
        .returning(col(ProductBought.customer_id), col(ProductBought.sku))
    )
    first_time = {(r.customer_id, r.sku) for r in await session.execute(stmt)}
    plans: list[FollowUpPlan] = []
    tasks: list[dict[str, Any]] = []
    for pair, (p, placement) in wanted.items():
        if pair not in first_time:
            continue
        plan = FollowUpPlan(
            store_id=p.store_id,
            customer_id=placement.customer_id,
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
                    "customer_id": placement.customer_id,
                    "plan_id": plan.id,
                    "kind": FOLLOW_UP,
                    "phase": phase.number,
                    "sku": pair[1],
                    "due_on": due_on,
                    "method": phase.method.value,
                    "methods_allowed": [m.value for m in phase.methods_allowed],
                    "purpose": phase.purpose,
                    "status": placement.status,
                    "closed_reason": placement.closed_reason,
                    "assignee_staff_id": placement.assignee_staff_id,
                }
            )
    if plans:
        session.add_all(plans)
        await session.flush()
        await session.execute(insert(Task), tasks)
    return plans


@dataclass(frozen=True)
class _Placement:
    """Whose list a purchase's new tasks go on, and whether they start open."""

    customer_id: str
    assignee_staff_id: str | None
    status: str
    closed_reason: str | None

    @classmethod
    def of(cls, purchase: PurchaseSeen, file: FileState | None) -> "_Placement":
        if file is None:
            return cls(purchase.customer_id, purchase.staff_id, "open", None)
        closed = file.status if file.status in CLOSING_STATUSES else None
        return cls(
            customer_id=file.customer_id,
            assignee_staff_id=file.owner_staff_id or purchase.staff_id,
            status="closed" if closed else "open",
            closed_reason=closed,
        )


def local_today(timezone: ColumnElement[str]) -> ColumnElement[date]:
    """Today in ``timezone``, as the database's clock reads it."""
    return cast(func.timezone(timezone, func.now()), Date)


def is_overdue(default_timezone: str) -> ColumnElement[bool]:
    """An open task whose day has passed in its store's time zone (the file's copy carries it;
    a task whose file engagement has not seen yet is read in the default zone)."""
    zone = func.coalesce(col(CustomerFile.timezone), default_timezone)
    return and_(col(Task.status) == "open", col(Task.due_on) < local_today(zone))


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    default_timezone: str,
    staff_id: str | None = None,
    customer_id: str | None = None,
    status: str | None = None,
    due_before: date | None = None,
) -> list[tuple[Task, bool]]:
    """A page of tasks in the caller's store, each with whether it is overdue."""
    overdue = is_overdue(default_timezone)
    query = keyset(
        select(Task).outerjoin(
            CustomerFile, col(CustomerFile.customer_id) == col(Task.customer_id)
        ),
        col(Task.id),
        page,
    ).add_columns(overdue.label("overdue"))
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Task.store_id) == scope)
    if staff_id:
        query = query.where(col(Task.assignee_staff_id) == staff_id)
    if customer_id:
        query = query.where(col(Task.customer_id) == customer_id)
    if status == "overdue":
        query = query.where(overdue)
    elif status:
        query = query.where(col(Task.status) == status)
    if due_before:
        query = query.where(col(Task.due_on) < due_before)
    return [(task, bool(late)) for task, late in (await session.execute(query)).all()]
