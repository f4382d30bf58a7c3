"""The customer's file that a write about them (a visit, a complaint) is recorded against."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound
from engagement_service.customers.models import CustomerFile


async def active_file(
    session: AsyncSession, *, principal: Principal, customer_id: str, instead: str
) -> CustomerFile:
    """The customer's file in the caller's store as engagement holds it; 404 if unknown there,
    409 if it is no longer a customer's (archived, erased, or merged into another file: then
    the answer names the survivor and ``instead``, what to do there)."""
    query = select(CustomerFile).where(col(CustomerFile.customer_id) == customer_id)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(CustomerFile.store_id) == scope)
    file = (await session.execute(query)).scalar_one_or_none()
    if file is None:
        raise NotFound("No such customer")
    if file.status == "merged":
        raise Conflict(f"The file was merged into {file.merged_into}: {instead}")
    if file.status != "active":
        raise Conflict(f"The file is {file.status}")
    return file
