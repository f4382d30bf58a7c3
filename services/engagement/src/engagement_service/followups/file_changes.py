"""Tasks follow their customer's file: to its new owner, closed with it, onto a merge's survivor.

Done and closed tasks keep their assignee: they are the history of who did the work.
Every statement is scoped by store as well as customer (the task index leads with the store;
a merge across stores is refused by the customer service).
"""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from engagement_service.complaints.file_changes import erase_complaints, move_complaints
from engagement_service.customers.service import (
    CLOSING_STATUSES,
    Closure,
    FileChanges,
    Merge,
    OwnerChange,
)

_REASSIGN_SQL = text(
    """
    UPDATE task AS t SET assignee_staff_id = m.owner_staff_id
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]), CAST(:owners AS text[]))
         AS m(store_id, customer_id, owner_staff_id)
    WHERE t.store_id = m.store_id AND t.customer_id = m.customer_id AND t.status = 'open'
      AND t.assignee_staff_id IS DISTINCT FROM m.owner_staff_id
    """
)

# A next step's task carries the staff's words as its purpose (it has no plan).
_ERASE_NEXT_STEPS_SQL = text(
    """
    UPDATE task AS t SET purpose = ''
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[])) AS m(store_id, customer_id)
    WHERE t.store_id = m.store_id AND t.customer_id = m.customer_id AND t.plan_id IS NULL
      AND t.kind = 'follow_up'
    """
)

_CLOSE_SQL = text(
    """
    UPDATE task AS t SET status = 'closed', closed_reason = m.reason
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]), CAST(:reasons AS text[]))
         AS m(store_id, customer_id, reason)
    WHERE t.store_id = m.store_id AND t.customer_id = m.customer_id AND t.status = 'open'
    """
)

# Before the merged-away files' tasks move: of the open tasks that would land on one survivor
# as doubles, the survivor's own stays open (it is the one on someone's list already), then the
# earliest due; the others are closed as merged. Doubles are plan tasks of the same product and
# phase, special-day tasks of the same occasion and day, routine tasks of the same day and
# method, and any two refill reminders or recovery tasks (one open per customer: a unique
# index). A next step's task (no plan) is the staff's own and is never a double.
_CLOSE_DOUBLES_SQL = text(
    """
    WITH moving (store_id, customer_id, survivor_id) AS (
        SELECT * FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]),
                             CAST(:survivors AS text[]))
    ), landing (store_id, customer_id, survivor_id) AS (
        SELECT store_id, customer_id, survivor_id FROM moving
        UNION
        SELECT store_id, survivor_id, survivor_id FROM moving
    ), ranked AS (
        SELECT t.id, row_number() OVER (
            PARTITION BY l.survivor_id, t.kind, t.sku, t.phase, t.occasion, t.occasion_on,
                         CASE WHEN t.kind = 'routine' THEN t.due_on END,
                         CASE WHEN t.kind = 'routine' THEN t.method END
            ORDER BY t.customer_id = l.survivor_id DESC, t.due_on, t.id
        ) AS n
        FROM landing AS l
        JOIN task AS t ON t.store_id = l.store_id AND t.customer_id = l.customer_id
        WHERE t.status = 'open'
          AND (t.plan_id IS NOT NULL
               OR t.kind IN ('special_day', 'refill', 'recovery', 'routine'))
    )
    UPDATE task SET status = 'closed', closed_reason = 'merged'
    FROM ranked WHERE task.id = ranked.id AND ranked.n > 1
    """
)

# Every task moves (the history follows the survivor); the open ones go to the survivor's owner
# when engagement knows one.
_REKEY_TASKS_SQL = text(
    """
    UPDATE task AS t SET
        customer_id = m.survivor_id,
        assignee_staff_id = CASE WHEN t.status = 'open'
                                 THEN COALESCE(m.owner_staff_id, t.assignee_staff_id)
                                 ELSE t.assignee_staff_id END
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]), CAST(:survivors AS text[]),
                CAST(:owners AS text[])) AS m(store_id, customer_id, survivor_id, owner_staff_id)
    WHERE t.store_id = m.store_id AND t.customer_id = m.customer_id
    """
)

_REKEY_PLANS_SQL = text(
    """
    UPDATE follow_up_plan AS p SET customer_id = m.survivor_id
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]), CAST(:survivors AS text[]))
         AS m(store_id, customer_id, survivor_id)
    WHERE p.store_id = m.store_id AND p.customer_id = m.customer_id
    """
)

# The survivor has bought what either file bought: a later purchase of it starts no new plan.
_REKEY_PRODUCTS_SQL = text(
    """
    WITH moved AS (
        DELETE FROM product_bought AS pb
        USING unnest(CAST(:customers AS text[]), CAST(:survivors AS text[]))
              AS m(customer_id, survivor_id)
        WHERE pb.customer_id = m.customer_id
        RETURNING m.survivor_id, pb.sku, pb.store_id, pb.first_purchase_id
    )
    INSERT INTO product_bought (customer_id, sku, store_id, first_purchase_id)
    SELECT survivor_id, sku, store_id, first_purchase_id FROM moved
    ON CONFLICT DO NOTHING
    """
)


# The visits are the survivor's history now.
_REKEY_VISITS_SQL = text(
    """
    UPDATE visit AS v SET customer_id = m.survivor_id
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[]), CAST(:survivors AS text[]))
         AS m(store_id, customer_id, survivor_id)
    WHERE v.store_id = m.store_id AND v.customer_id = m.customer_id
    """
)

# Either file in routine care puts the survivor there, since the earlier of the two days.
_REKEY_ROUTINE_CARE_SQL = text(
    """
    WITH moved AS (
        DELETE FROM customer_care AS c
        USING unnest(CAST(:customers AS text[]), CAST(:survivors AS text[]))
              AS m(customer_id, survivor_id)
        WHERE c.customer_id = m.customer_id
        RETURNING m.survivor_id, c.store_id, c.routine_since, c.plan_id
    )
    INSERT INTO customer_care (customer_id, store_id, routine_since, plan_id)
    SELECT DISTINCT ON (survivor_id) survivor_id, store_id, routine_since, plan_id
    FROM moved ORDER BY survivor_id, routine_since
    ON CONFLICT (customer_id) DO UPDATE
    SET routine_since = LEAST(customer_care.routine_since, excluded.routine_since)
    """
)


async def follow_file_changes(session: AsyncSession, *, changes: FileChanges) -> None:
    """Carry out what the applied customer events ask of the tasks: owners, closures, merges."""
    await reassign_open_tasks(session, owners=changes.owners)
    await close_open_tasks(session, closures=changes.closures)
    await move_to_survivors(session, merges=changes.merges)


async def reassign_open_tasks(session: AsyncSession, *, owners: list[OwnerChange]) -> None:
    """A file's open tasks go to its new owner."""
    if owners:
        await session.execute(
            _REASSIGN_SQL,
            {
                "stores": [o.store_id for o in owners],
                "customers": [o.customer_id for o in owners],
                "owners": [o.owner_staff_id for o in owners],
            },
        )


# What a visit's staff wrote about the customer, and what they collected for the file: gone with
# an erased file (who visited, when and how stay, as the counts of the staff's work).
_ERASE_VISITS_SQL = text(
    """
    UPDATE visit AS v SET outcome = '', notes = '', collected = '{}'::jsonb, next_step = NULL
    FROM unnest(CAST(:stores AS text[]), CAST(:customers AS text[])) AS m(store_id, customer_id)
    WHERE v.store_id = m.store_id AND v.customer_id = m.customer_id
    """
)


async def close_open_tasks(session: AsyncSession, *, closures: list[Closure]) -> None:
    """An archived or erased file's open tasks are closed with that reason; an erased file's
    visits and complaints lose their free text.

    A phase task's method and purpose are its phase's, the same for every customer; a next
    step's purpose is the staff's words and goes with the visits' notes.
    """
    if not closures:
        return
    await session.execute(
        _CLOSE_SQL,
        {
            "stores": [c.store_id for c in closures],
            "customers": [c.customer_id for c in closures],
            "reasons": [c.reason for c in closures],
        },
    )
    erased = [c for c in closures if c.reason == "erased"]
    if erased:
        params = {
            "stores": [c.store_id for c in erased],
            "customers": [c.customer_id for c in erased],
        }
        await session.execute(_ERASE_VISITS_SQL, params)
        await session.execute(_ERASE_NEXT_STEPS_SQL, params)
        await erase_complaints(session, **params)


async def move_to_survivors(session: AsyncSession, *, merges: list[Merge]) -> None:
    """A merged-away file's plans, tasks, products bought, visits, routine care and complaints
    move to the survivor."""
    if not merges:
        return
    params = {
        "stores": [m.store_id for m in merges],
        "customers": [m.customer_id for m in merges],
        "survivors": [m.survivor.customer_id for m in merges],
    }
    await session.execute(_CLOSE_DOUBLES_SQL, params)
    await session.execute(
        _REKEY_TASKS_SQL, params | {"owners": [m.survivor.owner_staff_id for m in merges]}
    )
    await session.execute(_REKEY_PLANS_SQL, params)
    pairs = {"customers": params["customers"], "survivors": params["survivors"]}
    await session.execute(_REKEY_PRODUCTS_SQL, pairs)
    await session.execute(_REKEY_VISITS_SQL, params)
    await session.execute(_REKEY_ROUTINE_CARE_SQL, pairs)
    await move_complaints(session, **params)
    # Merged into a file that is itself archived: what moved in closes with it.
    await close_open_tasks(
        session,
        closures=[
            Closure(m.store_id, m.survivor.customer_id, status)
            for m in merges
            if (status := m.survivor.status) is not None and status in CLOSING_STATUSES
        ],
    )
