"""Stopped customers (停服, DOMAIN.md §4): when scoring says a customer's lifecycle became
``stopped``, one ``recovery`` task by the reason engagement last saw (care/stop_reasons.py).

What each reason asks, as data (:data:`RECOVERY`):

- product effect or quality: urgent, within 2 days: the after-sales expert calls
  (``expert_phone``) or the manager visits (``home``);
- service: the manager visits with the staff member, or suggests another serving staff
  member (a change of owner goes through the customer service's reassignment);
- competitor: the staff member reviews the customer with the manager, then visits;
- unknown: the owner visits to learn why.

Engagement knows no staff roster and so no store's manager: the task goes to the file's owner
(who carries it to the manager), and ``with_manager`` marks the reasons whose task needs the
manager; the manager's day list can filter on it. One open recovery task per customer (a
partial unique index): a customer stopping again while one is open adds nothing.
"""

from dataclasses import dataclass
from datetime import timedelta

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
    within_days: int  # due this many days after the stop is seen
    with_manager: bool
    purpose: str


RECOVERY: dict[StopReason, Recovery] = {
    StopReason.PRODUCT: Recovery(
        Method.EXPERT_PHONE,
        (Method.EXPERT_PHONE, Method.HOME),
        2,
        True,
        "urgent: the after-sales expert calls, or the manager visits, about the product's "
        "effect or quality",
    ),
    StopReason.SERVICE: Recovery(
        Method.HOME,
        (Method.HOME,),
        2,
        True,
        "the manager visits with the staff member; or suggest another serving staff member",
    ),
    StopReason.COMPETITOR: Recovery(
        Method.HOME,
        (Method.HOME,),
        7,
        True,
        "review the customer with the manager, then visit",
    ),
    StopReason.UNKNOWN: Recovery(
        Method.HOME, (Method.HOME,), 7, False, "visit to learn why the customer stopped"
    ),
}

_OPEN_SQL = text(
    """
    INSERT INTO task (id, store_id, customer_id, kind, due_on, method, methods_allowed, purpose,
                      status, assignee_staff_id, recovery_reason, with_manager)
    SELECT m.id, m.store_id, m.customer_id, :kind, m.due_on, m.method,
           string_to_array(m.allowed, ','), m.purpose, 'open', m.owner, m.reason, m.with_manager
    FROM unnest(CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:customers AS text[]),
                CAST(:days AS date[]), CAST(:methods AS text[]), CAST(:allowed AS text[]),
                CAST(:purposes AS text[]), CAST(:owners AS text[]), CAST(:reasons AS text[]),
                CAST(:managers AS boolean[]))
         AS m(id, store_id, customer_id, due_on, method, allowed, purpose, owner, reason,
              with_manager)
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
    care = [(m, files[m.customer_id], RECOVERY[reasons[m.customer_id]]) for m in stopped]
    await session.execute(
        _OPEN_SQL,
        {
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
