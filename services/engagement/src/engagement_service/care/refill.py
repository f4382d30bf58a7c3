"""The refill reminder (补货提醒, DOMAIN.md §4): a ``refill`` task due three days before the
customer's supply runs out, from ``supply_runs_out_on`` of ``score.changed``.

One open reminder per customer (a partial unique index on ``task``): a new run-out date (a
purchase extends it, a refund takes days back) moves the open reminder rather than adding one;
a run-out that is gone (null: nothing in supply) or already past closes it as ``no_supply``.
Each run-out date is planned once (``customer_score_seen.refill_planned_for``): the same date
again, from any later event, plans nothing, even after its reminder was done. A reminder whose
day has already come (a run-out less than three days away) is due today. It goes to the file's
owner when planned; an owner change moves it as any open task.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.ids import new_id
from engagement_service.care.files import CareFile
from engagement_service.followups.methods import Method
from engagement_service.scores.service import ScoreMoved, mark_refill_planned

REFILL = "refill"
NO_SUPPLY = "no_supply"


@dataclass(frozen=True, slots=True)
class Reminder:
    lead_days: int
    method: Method
    purpose: str


REMINDER = Reminder(
    lead_days=3,
    method=Method.PHONE,
    purpose="supply runs out soon: ask how the product is going and offer a refill",
)

# The open reminder is moved (its owner kept: a manager may have reassigned it); a new one
# takes the partial unique index's place.
_PLAN_SQL = text(
    """
    INSERT INTO task (id, store_id, customer_id, kind, due_on, method, purpose, status,
                      assignee_staff_id)
    SELECT m.id, m.store_id, m.customer_id, :kind, m.due_on, :method, :purpose, 'open', m.owner
    FROM unnest(CAST(:ids AS text[]), CAST(:stores AS text[]), CAST(:customers AS text[]),
                CAST(:days AS date[]), CAST(:owners AS text[]))
         AS m(id, store_id, customer_id, due_on, owner)
    ON CONFLICT (customer_id) WHERE kind = 'refill' AND status = 'open'
    DO UPDATE SET due_on = excluded.due_on
    """
)

_CLOSE_SQL = text(
    """
    UPDATE task AS t SET status = 'closed', closed_reason = :reason
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[])) AS m(store_id, customer_id)
    WHERE t.store_id = m.store_id AND t.customer_id = m.customer_id AND t.kind = :kind
      AND t.status = 'open'
    """
)


def reminder_due(runs_out_on: date | None, *, today: date) -> date | None:
    """The day a run-out's reminder is due, or None when there is nothing to remind of."""
    if runs_out_on is None or runs_out_on < today:
        return None
    return max(today, runs_out_on - timedelta(days=REMINDER.lead_days))


async def plan_refills(
    session: AsyncSession, *, moved: list[ScoreMoved], files: dict[str, CareFile]
) -> None:
    """Plan, move or close the reminders of the customers whose run-out the batch changed."""
    changed = [
        m
        for m in moved
        if m.supply_carried
        and m.supply_runs_out_on != m.refill_planned_for
        and files[m.customer_id].active
    ]
    due = {
        m.customer_id: reminder_due(m.supply_runs_out_on, today=files[m.customer_id].today)
        for m in changed
    }
    planned = [m for m in changed if due[m.customer_id] is not None]
    closed = [m for m in changed if due[m.customer_id] is None]
    if planned:
        await session.execute(
            _PLAN_SQL,
            {
                "ids": [new_id() for _ in planned],
                "stores": [files[m.customer_id].store_id for m in planned],
                "customers": [m.customer_id for m in planned],
                "days": [due[m.customer_id] for m in planned],
                "owners": [files[m.customer_id].owner_staff_id for m in planned],
                "kind": REFILL,
                "method": REMINDER.method.value,
                "purpose": REMINDER.purpose,
            },
        )
    if closed:
        await session.execute(
            _CLOSE_SQL,
            {
                "stores": [files[m.customer_id].store_id for m in closed],
                "customers": [m.customer_id for m in closed],
                "kind": REFILL,
                "reason": NO_SUPPLY,
            },
        )
    await mark_refill_planned(
        session, planned={m.customer_id: m.supply_runs_out_on for m in changed}
    )
