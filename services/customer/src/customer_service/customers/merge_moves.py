"""What a merge moves besides the files' fields (customers/merge.py): the duplicate's
purchases, refunds and referrals repointed to the survivor, and a ``customer.updated`` for each
file that names the survivor now."""

from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from customer_service.customers import events
from customer_service.customers.models import Customer
from customer_service.relations.service import relations_of


async def repoint(
    session: AsyncSession, model: Any, store_id: str, duplicate_id: str, survivor_id: str
) -> int:
    """Move the duplicate's rows of ``model`` to the survivor; how many moved."""
    result = await session.execute(
        update(model)
        .where(col(model.store_id) == store_id, col(model.customer_id) == duplicate_id)
        .values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def move_referrals(
    session: AsyncSession, store_id: str, *, duplicate: Customer, survivor: Customer
) -> list[str]:
    """Files the duplicate referred are the survivor's referrals now. The survivor itself, if
    the duplicate referred it, would refer itself: its referrer becomes the duplicate's."""
    if survivor.referrer_id == duplicate.id:
        survivor.referrer_id = (
            duplicate.referrer_id if duplicate.referrer_id != survivor.id else None
        )
    result = await session.execute(
        update(Customer)
        .where(
            col(Customer.store_id) == store_id,
            col(Customer.referrer_id) == duplicate.id,
            col(Customer.id).not_in([survivor.id, duplicate.id]),
        )
        .values(referrer_id=survivor.id, version=col(Customer.version) + 1)
        .returning(col(Customer.id))
        .execution_options(synchronize_session=False)
    )
    return sorted(result.scalars())


# Whether the survivor is up its own referrer's chain (a loop, once the referrals moved).
_LOOP = text(
    """
    WITH RECURSIVE up(id) AS (
        SELECT referrer_id FROM customer WHERE id = :referrer_id
        UNION
        SELECT c.referrer_id FROM customer c JOIN up ON c.id = up.id
    )
    SELECT :referrer_id = :customer_id OR EXISTS (SELECT 1 FROM up WHERE id = :customer_id)
    """
)


async def would_loop(session: AsyncSession, survivor: Customer) -> bool:
    """Whether the survivor's new referrer leads back to it (``_LOOP``)."""
    await session.flush()
    params = {"referrer_id": survivor.referrer_id, "customer_id": survivor.id}
    return bool((await session.execute(_LOOP, params)).scalar_one())


async def announce_repointed(
    session: AsyncSession,
    *,
    relatives: list[str],
    referred: list[str],
    survivor_id: str,
    timezone: str,
) -> None:
    """``customer.updated`` for each file whose relations or referrer now name the survivor
    (the referred files' versions were bumped by their update; the relatives' are here)."""
    relatives = sorted(set(relatives) - {survivor_id})
    if relatives:
        await session.execute(
            update(Customer)
            .where(col(Customer.id).in_(relatives))
            .values(version=col(Customer.version) + 1)
            .execution_options(synchronize_session=False)
        )
    touched = sorted({*relatives, *referred})
    if not touched:
        return
    files = (
        await session.execute(
            select(Customer)
            .where(col(Customer.id).in_(touched))
            .execution_options(populate_existing=True)
        )
    ).scalars()
    for file in files:
        changed = [
            *(["relations"] if file.id in relatives else []),
            *(["referrer_id"] if file.id in referred else []),
        ]
        events.customer_updated(
            session,
            file,
            timezone=timezone,
            relations=await relations_of(session, customer_id=file.id),
            changed=changed,
        )
