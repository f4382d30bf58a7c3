"""Stopped customers (停服, DOMAIN.md §4): when scoring says a customer's lifecycle became
``stopped``, one ``recovery`` task by the reason engagement last saw (care/stop_reasons.py).

What each reason asks, as data (:data:`RECOVERY`): one step, or steps one after the other,
the next opened when the one before is done (:func:`open_next_step`, from the task's completion):

- product effect or quality: urgent, within 2 days: the after-sales expert calls
  (``expert_phone``) or the manager visits (``home``);
- service: the manager visits with the staff member, or suggests another serving staff
  member (a change of owner goes through the customer service's reassignment);
- competitor: the staff member reviews the customer with the manager within 3 days; once that
  review is done, the owner visits within 3 days of it;
- unknown: the owner visits to learn why.

Engagement knows no store's manager: the task goes to the file's owner (who carries it to the
manager), and ``with_manager`` marks the steps that need the manager; the manager's day list can
filter on it. A task's ``recovery_step`` is its place in its reason's steps (1 the first; None
on tasks older than steps, taken as 1). One open recovery task per customer (a partial unique
index): a customer stopping again while one is open adds nothing, and a step follows only the
one before it, done.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.ids import new_id
from engagement_service.care.files import CareFile
from engagement_service.care.stop_reasons import StopReason, stop_reasons
from engagement_service.followups.methods import Method
from engagement_service.scores.service import ScoreMoved

RECOVERY_KIND = "recovery"


@dataclass(frozen=True, slots=True)
class Recovery:
    method: Method
    methods_allowed: tuple[Method, ...]
    # Due this many days after the stop is seen (the first step) or the step before was done.
    within_days: int
    with_manager: bool
    purpose: str


RECOVERY: dict[StopReason, tuple[Recovery, ...]] = {
    StopReason.PRODUCT: (
        Recovery(
            Method.EXPERT_PHONE,
            (Method.EXPERT_PHONE, Method.HOME),
            2,
            True,
            "urgent: the after-sales expert calls, or the manager visits, about the product's "
            "effect or quality",
        ),
    ),
    StopReason.SERVICE: (
        Recovery(
            Method.HOME,
            (Method.HOME,),
            2,
            True,
            "the manager visits with the staff member; or suggest another serving staff member",
        ),
    ),
    StopReason.COMPETITOR: (
        # The visit it prepares is the method: the review itself does not reach the customer.
        Recovery(
            Method.HOME,
            (Method.HOME,),
            3,
            True,
            "review the customer taken by a competitor with the manager; a visit follows",
        ),
        Recovery(
            Method.HOME,
            (Method.HOME,),
            3,
            False,
            "visit the customer taken by a competitor, as reviewed with the manager",
        ),
    ),
    StopReason.UNKNOWN: (
        Recovery(Method.HOME, (Method.HOME,), 7, False, "visit to learn why the customer stopped"),
    ),
}

_OPEN_SQL = text(
    """
    INSERT INTO task (id, store_id, customer_id, kind, due_on, method, methods_allowed, purpose,
                      status, assignee_staff_id, recovery_reason, with_manager, recovery_step)
    SELECT m.id, m.store_id, m.customer_id, :kind, m.due_on, m.method,
           string_to_array(m.allowed, ','), m.purpose, 'open', m.owner, m.reason, m.with_manager,
           m.step
    FROM unnest(CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:customers AS text[]),
                CAST(:days AS date[]), CAST(:methods AS text[]), CAST(:allowed AS text[]),
                CAST(:purposes AS text[]), CAST(:owners AS text[]), CAST(:reasons AS text[]),
                CAST(:managers AS boolean[]), CAST(:steps AS integer[]))
         AS m(id, store_id, customer_id, due_on, method, allowed, purpose, owner, reason,
              with_manager, step)
    ON CONFLICT (customer_id) WHERE kind = 'recovery' AND status = 'open' DO NOTHING
    """
)


async def open_recoveries(
    session: AsyncSession, *, moved: list[ScoreMoved], files: dict[str, CareFile]
) -> None:
    """A recovery task for each customer the batch saw become stopped."""
    stopped = [m for m in moved if m.became_stopped and files[m.customer_id].active]
    if not stopped:
        return
    reasons = await stop_reasons(session, customer_ids=[m.customer_id for m in stopped])
    care = [(m, files[m.customer_id], RECOVERY[reasons[m.customer_id]][0]) for m in stopped]
    await session.execute(
        _OPEN_SQL,
        {
            "steps": [1 for _ in care],
            "ids": [new_id() for _ in care],
            "stores": [f.store_id for _, f, _ in care],
            "customers": [m.customer_id for m, _, _ in care],
            "days": [f.today + timedelta(days=r.within_days) for _, f, r in care],
            "methods": [r.method.value for _, _, r in care],
            "allowed": [",".join(m.value for m in r.methods_allowed) for _, _, r in care],
            "purposes": [r.purpose for _, _, r in care],
            "owners": [f.owner_staff_id for _, f, _ in care],
            "reasons": [reasons[m.customer_id].value for m, _, _ in care],
            "managers": [r.with_manager for _, _, r in care],
            "kind": RECOVERY_KIND,
        },
    )


_FILE_SQL = text("SELECT owner_staff_id, status FROM customer_file WHERE customer_id = :customer")


async def open_next_step(
    session: AsyncSession,
    *,
    store_id: str,
    customer_id: str,
    reason: str | None,
    step: int | None,
    done_on: date,
    assignee_staff_id: str | None,
) -> None:
    """The step after a recovery task just done (``step``, 1 when None), if its reason has one:
    due ``within_days`` after ``done_on``, to the file's owner."""
    try:
        steps = RECOVERY[StopReason(reason or "")]
    except ValueError:
        return
    done = step or 1
    if done >= len(steps):
        return
    file = (await session.execute(_FILE_SQL, {"customer": customer_id})).one_or_none()
    if file is not None and file.status not in (None, "active"):
        return  # archived, erased or merged: its open tasks were closed, none opens
    following = steps[done]
    # The owner now: the file's, or the done step's assignee when the file names none.
    owner = (file.owner_staff_id if file is not None else None) or assignee_staff_id
    await session.execute(
        _OPEN_SQL,
        {
            "ids": [new_id()],
            "stores": [store_id],
            "customers": [customer_id],
            "days": [done_on + timedelta(days=following.within_days)],
            "methods": [following.method.value],
            "allowed": [",".join(m.value for m in following.methods_allowed)],
            "purposes": [following.purpose],
            "owners": [owner],
            "reasons": [reason],
            "managers": [following.with_manager],
            "steps": [done + 1],
            "kind": RECOVERY_KIND,
        },
    )
