"""The rules a merge keeps (customers/merge.py): the two files found and locked, and the
refusals, each naming its rule."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound, ProblemError
from customer_service.customers import service as customers
from customer_service.customers.models import Customer

MERGED = "merged"


async def locked_pair(
    session: AsyncSession, *, principal: Principal, survivor_id: str, duplicate_id: str
) -> tuple[Customer, Customer]:
    """Both files, locked in id order. ``FOR UPDATE`` (not ``NO KEY``): a purchase being
    recorded for either (its foreign key's key-share lock) waits for the merge, so none is left
    behind on the duplicate."""
    query = (
        select(Customer)
        .where(col(Customer.id).in_([survivor_id, duplicate_id]))
        .order_by(col(Customer.id))
        .with_for_update()
    )
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Customer.store_id) == scope)
    found = {c.id: c for c in (await session.execute(query)).scalars()}
    if survivor_id not in found:
        raise NotFound("No such customer")
    if duplicate_id not in found:
        raise NotFound(f"No such customer: {duplicate_id} (duplicate_id)")
    return found[survivor_id], found[duplicate_id]


def refuse(survivor: Customer, duplicate: Customer, expected_version: int | None) -> None:
    """The rules a merge must keep, each named in its refusal."""
    if survivor.store_id != duplicate.store_id:
        # Only head office sees both: for a store's roles the other store's file is not found.
        raise InvalidField(
            "duplicate_id", "belongs to another store: files merge within one store only"
        )
    for role, file in (("duplicate", duplicate), ("survivor", survivor)):
        if file.status == MERGED:
            raise Conflict(
                f"The {role} {file.id} was already merged into {file.merged_into}: "
                f"merge into or from {file.merged_into} instead",
                errors=[{"field": role, "message": f"merged_into {file.merged_into}"}],
            )
        if file.status in (customers.ARCHIVED, customers.ERASED):
            raise Conflict(
                f"The {role} {file.id} is {file.status}: only active files merge",
                errors=[{"field": role, "message": file.status}],
            )
    if expected_version is not None and expected_version != survivor.version:
        raise ProblemError(
            "The file changed since it was read; read it again", status=412, title="Stale"
        )
