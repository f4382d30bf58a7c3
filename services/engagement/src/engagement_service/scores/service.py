"""Keep the read copy of the scores at their newest version; say what each applied batch moved.

An event applies only if its version is newer than the copy's: a redelivery, a replay or an
event overtaken by a newer one changes nothing. The caller holds the stores' locks
(:func:`engagement_service.customers.service.lock_stores`).
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from engagement_service.scores.events import STOPPED, Absent, ScoreChangeSeen


@dataclass(frozen=True)
class ScoreMoved:
    """One customer's copy after the batch's events, and which of care's inputs they moved."""

    store_id: str
    customer_id: str
    lifecycle: str | None
    supply_runs_out_on: date | None
    expected_purchase_on: date | None
    refill_planned_for: date | None
    # An applied event carried the run-out (the refill is planned again when it differs from
    # refill_planned_for); an applied event carried a different expected purchase date.
    supply_carried: bool
    expected_moved: bool
    became_stopped: bool


_HELD_SQL = text(
    """
    SELECT customer_id, version, lifecycle, value_tier, supply_runs_out_on, expected_purchase_on,
           refill_planned_for
    FROM customer_score_seen WHERE customer_id = ANY(CAST(:ids AS text[]))
    FOR UPDATE
    """
)

_UPSERT_SQL = """
    INSERT INTO customer_score_seen
        (customer_id, store_id, version, lifecycle, supply_runs_out_on, expected_purchase_on,
         refill_planned_for, value_tier)
    SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::text[], $5::date[],
                         $6::date[], $7::date[], $8::text[])
    ON CONFLICT (customer_id) DO UPDATE SET
        store_id = excluded.store_id, version = excluded.version,
        lifecycle = excluded.lifecycle, value_tier = excluded.value_tier,
        supply_runs_out_on = excluded.supply_runs_out_on,
        expected_purchase_on = excluded.expected_purchase_on, updated_at = now()
    WHERE customer_score_seen.version < excluded.version
"""


@dataclass
class _Copy:
    """A customer's copy while the batch's events are applied."""

    store_id: str
    version: int
    lifecycle: str | None
    before_lifecycle: str | None
    supply: date | None
    expected: date | None
    before_expected: date | None
    refill: date | None
    tier: str | None = None
    supply_carried: bool = False
    expected_carried: bool = False


async def apply_score_changes(
    session: AsyncSession, *, changes: list[ScoreChangeSeen]
) -> list[ScoreMoved]:
    """Apply the batch's newer events to the copy, one customer's in version order."""
    if not changes:
        return []
    held = {
        r.customer_id: r
        for r in await session.execute(_HELD_SQL, {"ids": sorted({c.customer_id for c in changes})})
    }
    copies: dict[str, _Copy] = {}
    for change in sorted(changes, key=lambda c: c.version):
        c = change.customer_id
        if c not in copies:
            row = held.get(c)
            if row is None:
                # Never seen: its lifecycle before is the one the event says it had.
                previous = change.previous_lifecycle
                copies[c] = _Copy(
                    store_id=change.store_id,
                    version=0,
                    lifecycle=None,
                    before_lifecycle=None if isinstance(previous, Absent) else previous,
                    supply=None,
                    expected=None,
                    before_expected=None,
                    refill=None,
                )
            else:
                copies[c] = _Copy(
                    store_id=change.store_id,
                    version=row.version,
                    lifecycle=row.lifecycle,
                    before_lifecycle=row.lifecycle,
                    supply=row.supply_runs_out_on,
                    expected=row.expected_purchase_on,
                    before_expected=row.expected_purchase_on,
                    refill=row.refill_planned_for,
                    tier=row.value_tier,
                )
        copy = copies[c]
        if change.version <= copy.version:
            continue
        copy.version, copy.store_id = change.version, change.store_id
        if not isinstance(change.lifecycle, Absent):
            copy.lifecycle = change.lifecycle
        if not isinstance(change.value_tier, Absent):
            copy.tier = change.value_tier
        if not isinstance(change.supply_runs_out_on, Absent):
            copy.supply, copy.supply_carried = change.supply_runs_out_on, True
        if not isinstance(change.expected_purchase_on, Absent):
            copy.expected, copy.expected_carried = change.expected_purchase_on, True
    applied = {c: copy for c, copy in copies.items() if copy.version != _held_version(held, c)}
    if not applied:
        return []
    ids = list(applied)
    await (await driver_connection(session)).execute(
        _UPSERT_SQL,
        ids,
        [applied[c].store_id for c in ids],
        [applied[c].version for c in ids],
        [applied[c].lifecycle for c in ids],
        [applied[c].supply for c in ids],
        [applied[c].expected for c in ids],
        [applied[c].refill for c in ids],
        [applied[c].tier for c in ids],
    )
    return [
        ScoreMoved(
            store_id=copy.store_id,
            customer_id=c,
            lifecycle=copy.lifecycle,
            supply_runs_out_on=copy.supply,
            expected_purchase_on=copy.expected,
            refill_planned_for=copy.refill,
            supply_carried=copy.supply_carried,
            expected_moved=copy.expected_carried and copy.expected != copy.before_expected,
            became_stopped=copy.lifecycle == STOPPED and copy.before_lifecycle != STOPPED,
        )
        for c, copy in applied.items()
    ]


def _held_version(held: dict[str, Any], customer_id: str) -> int:
    row = held.get(customer_id)
    return 0 if row is None else int(row.version)


_MARK_REFILL_SQL = text(
    """
    UPDATE customer_score_seen AS s SET refill_planned_for = m.planned_for
    FROM unnest(CAST(:customers AS text[]), CAST(:days AS date[])) AS m(customer_id, planned_for)
    WHERE s.customer_id = m.customer_id
    """
)


async def mark_refill_planned(session: AsyncSession, *, planned: dict[str, date | None]) -> None:
    """Record the run-out each customer's refill reminder was planned for."""
    if planned:
        await session.execute(
            _MARK_REFILL_SQL, {"customers": list(planned), "days": list(planned.values())}
        )
