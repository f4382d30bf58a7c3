"""Customer files: registration, reading and changes, always inside the caller's store (the
search is customers/search.py)."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, ProblemError
from customer_service.customers import events
from customer_service.customers.fields import Protection, apply_fields
from customer_service.customers.models import Customer
from customer_service.customers.reads import CustomerRow, get, read, row_of
from customer_service.customers.schemas import CustomerCreate, CustomerUpdate
from customer_service.ownership import history as ownership
from customer_service.ownership import rules as ownership_rules
from customer_service.relations.service import relations_of
from customer_service.stores import service as stores
from customer_service.stores.models import Store

# Importable from here, where the routers and the other domains take them.
__all__ = [
    "ACTIVE",
    "ARCHIVED",
    "ERASED",
    "CustomerRow",
    "Protection",
    "archive",
    "get",
    "read",
    "refuse_if_erased",
    "register",
    "row_of",
    "update",
]

ACTIVE = "active"
ARCHIVED = "archived"
# Anonymised for good (customers/privacy.py): nothing is left to change on the file.
ERASED = "erased"


async def register(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_in: CustomerCreate,
    protection: Protection,
) -> Customer:
    """Open a customer file in a store and announce it (``customer.registered``).

    The owner is the one named, else the registering account's staff member; an account with
    none (head office, a partner's till) leaves the file unassigned until a manager names one.
    A new file has no purchase: it starts as a ``collected`` prospect unless told its stage.
    """
    store = await stores.get_for_write(session, principal=principal, store_id=customer_in.store_id)
    customer = Customer(store_id=store.id, name="", status=ACTIVE, prospect_stage="collected")
    values = customer_in.model_dump(exclude_unset=True, exclude={"store_id"})
    if "owner_staff_id" not in values and (staff_id := getattr(principal, "staff_id", None)):
        values["owner_staff_id"] = staff_id
    values.setdefault("birthday_calendar", "solar")
    await apply_fields(
        session,
        customer,
        customer_in,
        values,
        principal=principal,
        timezone=store.timezone,
        protection=protection,
        new=True,
    )
    session.add(customer)
    await session.flush()
    if customer.owner_staff_id is not None:
        await ownership.record(
            session,
            customer=customer,
            from_staff_id=None,
            kind=ownership_rules.REGISTERED,
            reason="the file's first owner, at registration",
            by=principal.subject,
            enforce_limit=False,
        )
    events.customer_registered(session, customer, timezone=store.timezone)
    return customer


async def update(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: str,
    customer_in: CustomerUpdate,
    expected_version: int | None,
    protection: Protection,
) -> tuple[Customer, list[str]]:
    """Change a file; with ``expected_version`` (If-Match) a stale write is refused (412).

    A change is announced (``customer.updated`` naming the changed fields) in its transaction.
    """
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    refuse_if_erased(customer)
    if expected_version is not None and expected_version != customer.version:
        raise ProblemError(
            "The file changed since it was read; read it again", status=412, title="Stale"
        )
    values = customer_in.model_dump(exclude_unset=True)
    if "name" in values and values["name"] is None:
        raise InvalidField("name", "may not be null")
    if "birthday_calendar" in values and values["birthday_calendar"] is None:
        raise InvalidField("birthday_calendar", "may not be null: solar or lunar")
    timezone = await _timezone_of(session, customer.store_id)
    previous_owner = customer.owner_staff_id
    changed = await apply_fields(
        session,
        customer,
        customer_in,
        values,
        principal=principal,
        timezone=timezone,
        protection=protection,
    )
    if "owner_staff_id" in changed:
        # Kept in the file's ownership history, and refused as any change of hands beyond the
        # 90-day limit (ownership/rules.py).
        await ownership.record(
            session,
            customer=customer,
            from_staff_id=previous_owner,
            kind=ownership_rules.OWNER_CHANGED,
            reason="changed on the file by a manager",
            by=principal.subject,
            enforce_limit=True,
        )
    if changed:
        customer.version += 1
        await session.flush()
        events.customer_updated(
            session,
            customer,
            timezone=timezone,
            relations=await relations_of(session, customer_id=customer.id),
            changed=changed,
        )
    return customer, changed


async def archive(session: AsyncSession, *, principal: Principal, customer_id: str) -> Customer:
    """Archive a file (nothing is destroyed; erasure is a separate, audited process)."""
    customer = await get(session, principal=principal, customer_id=customer_id, for_update=True)
    refuse_if_erased(customer)
    if customer.status != ARCHIVED:
        customer.status = ARCHIVED
        customer.version += 1
        await session.flush()
        events.customer_archived(
            session,
            customer,
            timezone=await _timezone_of(session, customer.store_id),
            relations=await relations_of(session, customer_id=customer.id),
        )
    return customer


def refuse_if_erased(customer: Customer) -> None:
    """An erased file stays erased: a change or an archive would bring a status back."""
    if customer.status == ERASED:
        raise Conflict("The file was erased (anonymised for good): there is nothing to change")


async def _timezone_of(session: AsyncSession, store_id: str) -> str:
    timezone: str = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == store_id))
    ).scalar_one()
    return timezone
