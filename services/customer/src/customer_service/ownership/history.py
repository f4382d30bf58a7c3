"""Every change of a file's owner goes through here: the 90-day rule checked, the change kept
with its reason and who made it, the pool's row kept in step, and ``customer.updated`` (with
``owner_staff_id``) staged in the change's own transaction, so engagement moves the open tasks
exactly when the change is committed."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.customers import events
from customer_service.customers.models import Customer
from customer_service.ownership import rules
from customer_service.ownership.models import OwnershipChange, PoolFile
from customer_service.relations.service import relations_of

_RECENT_CHANGES = text(
    """
    SELECT count(*) FROM ownership_change
    WHERE customer_id = :customer_id AND change_of_hands
      AND at > now() - make_interval(days => :days)
    """
)


async def record(
    session: AsyncSession,
    *,
    customer: Customer,
    from_staff_id: str | None,
    kind: str,
    reason: str,
    by: str,
    enforce_limit: bool,
    manager_approval: bool = False,
) -> OwnershipChange:
    """Keep a change already made on ``customer`` (its ``owner_staff_id`` is the new owner);
    with ``enforce_limit``, a third change of hands within 90 days is refused (409)."""
    to_staff_id = customer.owner_staff_id
    # A file just registered waits in no pool: no read on the registration's path.
    in_pool = kind != rules.REGISTERED and await session.get(PoolFile, customer.id) is not None
    counted = rules.counts_as_change_of_hands(
        from_staff_id=from_staff_id, to_staff_id=to_staff_id, in_pool=in_pool
    )
    if counted and enforce_limit:
        recent = (
            await session.execute(
                _RECENT_CHANGES,
                {"customer_id": customer.id, "days": rules.CHANGES_OF_HANDS_WINDOW.days},
            )
        ).scalar_one()
        if recent >= rules.CHANGES_OF_HANDS_LIMIT:
            raise rules.RuleRefused(
                rules.RULE_CHANGES_OF_HANDS,
                f"customer {customer.id} changed hands {recent} times in the last 90 days; "
                "a file changes hands at most twice in 90 days",
            )
    if to_staff_id is None:
        await session.execute(
            insert(PoolFile)
            .values(
                customer_id=customer.id, store_id=customer.store_id, from_staff_id=from_staff_id
            )
            .on_conflict_do_nothing()
        )
    elif in_pool:
        await session.execute(delete(PoolFile).where(col(PoolFile.customer_id) == customer.id))
    change = OwnershipChange(
        customer_id=customer.id,
        store_id=customer.store_id,
        from_staff_id=from_staff_id,
        to_staff_id=to_staff_id,
        kind=kind,
        reason=reason,
        by=by,
        change_of_hands=counted,
        manager_approval=manager_approval,
    )
    session.add(change)
    return change


async def move(
    session: AsyncSession,
    *,
    customer: Customer,
    to_staff_id: str | None,
    kind: str,
    reason: str,
    by: str,
    timezone: str,
    enforce_limit: bool,
    manager_approval: bool = False,
) -> OwnershipChange:
    """Give a locked file a new owner (None: the store's pool), keep the change and announce it
    (``customer.updated``). The caller checked the new owner and commits."""
    from_staff_id = customer.owner_staff_id
    customer.owner_staff_id = to_staff_id
    change = await record(
        session,
        customer=customer,
        from_staff_id=from_staff_id,
        kind=kind,
        reason=reason,
        by=by,
        enforce_limit=enforce_limit,
        manager_approval=manager_approval,
    )
    customer.version += 1
    await session.flush()
    events.customer_updated(
        session,
        customer,
        timezone=timezone,
        relations=await relations_of(session, customer_id=customer.id),
        changed=["owner_staff_id"],
    )
    return change


async def merged(
    session: AsyncSession,
    *,
    survivor: Customer,
    duplicate: Customer,
    survivor_owner_before: str | None,
    by: str,
) -> None:
    """Keep a merge on both files' trails (both locked; ``survivor.owner_staff_id`` is its owner
    after the merge: its own, or the duplicate's it took). Never refused by the 90-day rule and
    never counted by it (rules.py). The merge announces the survivor itself (``customer.updated``
    naming ``owner_staff_id`` when it took one): nothing is staged here.

    The pool follows: a merged-away file waits in no pool; a survivor that has an owner now
    leaves it; a survivor still without one waits there if either file did, since the earlier
    of the two (the customer was waiting for an owner, whichever file showed it)."""
    waiting = (
        await session.execute(
            delete(PoolFile)
            .where(col(PoolFile.customer_id).in_([survivor.id, duplicate.id]))
            .returning(col(PoolFile.in_pool_since), col(PoolFile.from_staff_id))
            .execution_options(synchronize_session=False)
        )
    ).all()
    if waiting and survivor.owner_staff_id is None:
        # in_pool_since is never null (server default, NOT NULL).
        since, from_staff_id = min(waiting, key=lambda w: w[0] or datetime.max.replace(tzinfo=UTC))
        session.add(
            PoolFile(
                customer_id=survivor.id,
                store_id=survivor.store_id,
                in_pool_since=since,
                from_staff_id=from_staff_id,
            )
        )
    took = survivor_owner_before is None and survivor.owner_staff_id is not None
    session.add_all(
        [
            OwnershipChange(
                customer_id=survivor.id,
                store_id=survivor.store_id,
                from_staff_id=survivor_owner_before,
                to_staff_id=survivor.owner_staff_id,
                kind=rules.MERGED,
                reason=f"merged with {duplicate.id}, whose owner was "
                f"{duplicate.owner_staff_id or 'nobody'}: "
                + ("took its owner" if took else "kept its own owner"),
                by=by,
                change_of_hands=False,
            ),
            OwnershipChange(
                customer_id=duplicate.id,
                store_id=duplicate.store_id,
                from_staff_id=duplicate.owner_staff_id,
                to_staff_id=survivor.owner_staff_id,
                kind=rules.MERGED,
                reason=f"merged into {survivor.id}: its customer is served on that file, by "
                f"{survivor.owner_staff_id or 'nobody yet'}",
                by=by,
                change_of_hands=False,
            ),
        ]
    )


async def history_of(session: AsyncSession, *, customer_id: str) -> list[dict[str, Any]]:
    """A file's changes of owner, oldest first."""
    rows = await session.execute(
        select(OwnershipChange)
        .where(col(OwnershipChange.customer_id) == customer_id)
        .order_by(col(OwnershipChange.at), col(OwnershipChange.id))
    )
    return [
        {
            "at": c.at,
            "from_staff_id": c.from_staff_id,
            "to_staff_id": c.to_staff_id,
            "kind": c.kind,
            "reason": c.reason,
            "by": c.by,
            "change_of_hands": c.change_of_hands,
            "manager_approval": c.manager_approval,
        }
        for c in rows.scalars()
    ]
