"""The store's pool of orphan files (DOMAIN.md §9): read, assigned to staff who may receive
them, and the yearly take-back of files that did not buy again."""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.customers.models import Customer
from customer_service.ownership import history, rules
from customer_service.ownership.models import PoolFile, StaffMonthCompletion
from customer_service.staff.models import Staff
from customer_service.stores import service as stores
from customer_service.stores.models import Store

_POOL = text(
    """
    SELECT p.customer_id, c.name, p.in_pool_since, p.from_staff_id
    FROM customer_pool AS p JOIN customer AS c ON c.id = p.customer_id
    WHERE p.store_id = :store_id AND c.status = 'active'
      AND (CAST(:after AS text) IS NULL OR p.customer_id > :after)
    ORDER BY p.customer_id LIMIT :limit
    """
)


async def list_pool(
    session: AsyncSession, *, principal: Principal, store_id: str, page: PageParams
) -> list[dict[str, Any]]:
    """The store's active orphan files in id order, ``limit + 1`` of them (``page_of``'s
    convention)."""
    await stores.get(session, principal=principal, store_id=store_id)
    rows = await session.execute(
        _POOL, {"store_id": store_id, "after": page.after, "limit": page.limit + 1}
    )
    return [dict(r._mapping) for r in rows]


def local_today(timezone: str, now: datetime | None = None) -> date:
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()


async def _serving_staff(session: AsyncSession, *, store_id: str, staff_id: str) -> Staff:
    staff = await session.get(Staff, staff_id)
    if staff is None or staff.store_id != store_id or staff.status != "active":
        raise InvalidField("staff_id", "not an active staff member of this store")
    return staff


async def completion_last_month(
    session: AsyncSession, *, staff_id: str, today: date
) -> Decimal | None:
    """The staff member's follow-up completion over the month before ``today``'s (store-local),
    as engagement closed it; None when no close is known."""
    month = rules.add_months(today.replace(day=1), -1)
    rate: Decimal | None = (
        await session.execute(
            select(col(StaffMonthCompletion.completion_rate)).where(
                col(StaffMonthCompletion.staff_id) == staff_id,
                col(StaffMonthCompletion.month) == month,
            )
        )
    ).scalar_one_or_none()
    return rate


async def assign(
    session: AsyncSession,
    *,
    principal: Principal,
    store_id: str,
    staff_id: str,
    customer_ids: list[str],
    manager_approval: bool,
) -> list[str]:
    """Give pool files to a staff member who may receive them; all or nothing (a refusal names
    its rule, 409). The assigned ids."""
    store = await stores.get(session, principal=principal, store_id=store_id)
    staff = await _serving_staff(session, store_id=store.id, staff_id=staff_id)
    today = local_today(store.timezone)
    started_on = staff.hired_on or local_today(store.timezone, staff.created_at)
    rate = await completion_last_month(session, staff_id=staff.id, today=today)
    refusal = rules.pool_refusal(
        started_on=started_on, today=today, rate=rate, manager_approval=manager_approval
    )
    if refusal is not None:
        raise refusal
    wanted = sorted(set(customer_ids))
    files = list(
        (
            await session.execute(
                select(Customer)
                .join(PoolFile, col(PoolFile.customer_id) == col(Customer.id))
                .where(
                    col(Customer.id).in_(wanted),
                    col(PoolFile.store_id) == store.id,
                    # An orphan archived or merged away meanwhile is nobody's to serve.
                    col(Customer.status) == "active",
                )
                .order_by(col(Customer.id))
                .with_for_update(of=Customer)
            )
        ).scalars()
    )
    missing = sorted(set(wanted) - {c.id for c in files})
    if missing:
        raise InvalidField("customer_ids", f"not in this store's pool: {', '.join(missing)}")
    # Recorded only where it was needed: at or below 80 % the approval is what allowed it.
    approved = rate is not None and rate <= rules.FREE_RATE
    for customer in files:
        await history.move(
            session,
            customer=customer,
            to_staff_id=staff.id,
            kind=rules.POOL_ASSIGNMENT,
            reason="assigned from the pool",
            by=principal.subject,
            timezone=store.timezone,
            enforce_limit=True,
            manager_approval=approved,
        )
    return [c.id for c in files]


# The pool files a staff member received in the cohort's year (between two years and one year
# ago), each with whether it bought again since and whether the staff member still holds it;
# files already taken back from them after that assignment are out. The kind is written into
# the statement: the index it reads holds pool assignments only, which the planner proves of
# a constant, not of a parameter.
_COHORT = text(
    f"""
    SELECT DISTINCT ON (oc.customer_id) oc.customer_id, oc.at,
           EXISTS (SELECT 1 FROM purchase AS p
                   WHERE p.customer_id = oc.customer_id AND p.purchased_at >= oc.at)
               AS bought_again,
           (c.owner_staff_id = :staff_id AND c.status = 'active') AS still_held
    FROM ownership_change AS oc JOIN customer AS c ON c.id = oc.customer_id
    WHERE oc.store_id = :store_id AND oc.to_staff_id = :staff_id
      AND oc.kind = '{rules.POOL_ASSIGNMENT}'
      AND oc.at <= now() - make_interval(days => :after_days)
      AND oc.at > now() - make_interval(days => :after_days + :cohort_days)
      AND NOT EXISTS (SELECT 1 FROM ownership_change AS t
                      WHERE t.customer_id = oc.customer_id AND t.kind = :take_back
                        AND t.from_staff_id = :staff_id AND t.at > oc.at)
    ORDER BY oc.customer_id, oc.at DESC
    """  # noqa: S608 (only the kind's constant is interpolated)
)
_TAKEN_THIS_YEAR = text(
    """
    SELECT EXISTS (SELECT 1 FROM ownership_change
                   WHERE store_id = :store_id AND from_staff_id = :staff_id AND kind = :take_back
                     AND at > now() - make_interval(days => :days))
    """
)


@dataclass(frozen=True, slots=True)
class TakeBack:
    received: int
    bought_again: int
    taken_back: list[str]


async def take_back(
    session: AsyncSession, *, principal: Principal, store_id: str, staff_id: str
) -> TakeBack:
    """The yearly take-back: if fewer than 5 % of the pool files the staff member received a
    year ago bought again, 30 % of them (rounded down: never more) go back to the pool, those
    received first among the ones still held that did not buy. Refused (409) otherwise."""
    store = await stores.get(session, principal=principal, store_id=store_id)
    staff = await session.get(Staff, staff_id)
    if staff is None or staff.store_id != store.id:
        raise InvalidField("staff_id", "not a staff member of this store")
    # One take-back at a time per staff member: a concurrent one waits here and finds it done.
    await session.execute(select(Staff).where(col(Staff.id) == staff.id).with_for_update())
    params = {"store_id": store.id, "staff_id": staff.id, "take_back": rules.TAKE_BACK}
    if (
        await session.execute(_TAKEN_THIS_YEAR, {**params, "days": rules.TAKE_BACK_COHORT.days})
    ).scalar_one():
        raise rules.RuleRefused(
            rules.RULE_TAKE_BACK_YEARLY,
            "pool files were taken back from this staff member within the last year",
            field="staff_id",
        )
    cohort = list(
        await session.execute(
            _COHORT,
            {
                **params,
                "after_days": rules.TAKE_BACK_AFTER.days,
                "cohort_days": rules.TAKE_BACK_COHORT.days,
            },
        )
    )
    if not cohort:
        raise rules.RuleRefused(
            rules.RULE_TAKE_BACK_COHORT,
            "this staff member received no pool files between two years and one year ago",
            field="staff_id",
        )
    bought = sum(1 for r in cohort if r.bought_again)
    share = Decimal(bought) / Decimal(len(cohort))
    if share >= rules.TAKE_BACK_REBOUGHT_BELOW:
        raise rules.RuleRefused(
            rules.RULE_TAKE_BACK_REBOUGHT,
            f"{bought} of the {len(cohort)} pool files received a year ago bought again "
            f"({share:.2%}): a take-back needs fewer than 5 %",
            field="staff_id",
        )
    count = math.floor(len(cohort) * rules.TAKE_BACK_SHARE)
    chosen = [
        r.customer_id
        for r in sorted(cohort, key=lambda r: (r.at, r.customer_id))
        if r.still_held and not r.bought_again
    ][:count]
    files = list(
        (
            await session.execute(
                select(Customer)
                .where(col(Customer.id).in_(chosen), col(Customer.owner_staff_id) == staff.id)
                .order_by(col(Customer.id))
                .with_for_update()
            )
        ).scalars()
    )
    for customer in files:
        await history.move(
            session,
            customer=customer,
            to_staff_id=None,
            kind=rules.TAKE_BACK,
            reason=(
                f"yearly take-back: {bought} of {len(cohort)} pool files received a year ago "
                "bought again"
            ),
            by=principal.subject,
            timezone=store.timezone,
            enforce_limit=False,
        )
    return TakeBack(
        received=len(cohort), bought_again=bought, taken_back=sorted(c.id for c in files)
    )


async def store_timezone(session: AsyncSession, store_id: str) -> str:
    timezone: str = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == store_id))
    ).scalar_one()
    return timezone
