"""Merging a duplicate file into the one that stays (DOMAIN.md §1, Hygiene).

``merge`` keeps the survivor with the union of the two files' facts and leaves the duplicate as
a pointer; ``UNION`` (customers/merge_union.py) says, field by field, which value the survivor
ends with and why. Both files are locked in id order (a concurrent merge of the same pair the
other way round waits, it does not deadlock), and everything moves in one transaction with
``customer.merged``, ``customer.updated`` and a ``customer_merge`` row (``GET
/customers/{id}/merges``).

The duplicate keeps its own personal fields: nothing is destroyed by a merge, the pointer is
read as a pointer only (``GET /customers/{id}`` answers ``id, store_id, status, merged_into,
version``), and erasing the survivor anonymises the files merged into it
(customers/privacy.py). Its relations, referrals, purchases and refunds are the survivor's now,
and so are its points (membership/merging.py). Both files' ownership trails keep the merge
(``merged``, ownership/history.py): the duplicate leaves its owner and any pool.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, ForeignKey, Index, Text, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from crm_libs.events.driver import driver_connection
from crm_libs.field_crypto import FieldCipher
from crm_libs.ids import new_id
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.customers import events
from customer_service.customers import service as customers
from customer_service.customers.merge_moves import (
    announce_repointed,
    move_referrals,
    repoint,
    would_loop,
)
from customer_service.customers.merge_rules import MERGED, locked_pair, refuse
from customer_service.customers.merge_union import unite
from customer_service.customers.models import Customer
from customer_service.membership import merging as membership_merging
from customer_service.ownership import history as ownership
from customer_service.purchases.models import Purchase, PurchaseRefund
from customer_service.relations.service import move_on_merge, relations_of
from customer_service.stores.models import Store


class CustomerMerge(SQLModel, table=True):
    """One merge: who, when, the fields the survivor took and what moved, with counts."""

    __tablename__ = "customer_merge"
    __table_args__ = (Index("ix_customer_merge_store_survivor", "store_id", "survivor_id", "id"),)

    id: str = Field(default_factory=new_id, sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, ForeignKey("store.id"), nullable=False))
    survivor_id: str = Field(sa_column=Column(Text, ForeignKey("customer.id"), nullable=False))
    duplicate_id: str = Field(
        sa_column=Column(Text, ForeignKey("customer.id"), nullable=False, unique=True)
    )
    merged_by: str = Field(sa_column=Column(Text, nullable=False))
    merged_at: datetime | None = Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=text("now()")),
    )
    taken: list[str] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False))
    moved: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSONB, nullable=False))


@dataclass
class Merge:
    survivor: Customer
    duplicate: Customer
    record: CustomerMerge
    changed: list[str] = field(default_factory=list)


async def merge(
    session: AsyncSession,
    *,
    principal: Principal,
    survivor_id: str,
    duplicate_id: str,
    expected_version: int | None,
    cipher: FieldCipher,
) -> Merge:
    """Merge ``duplicate_id`` into ``survivor_id`` (both of one store, both active)."""
    if survivor_id == duplicate_id:
        raise InvalidField("duplicate_id", "is the file itself: a file does not merge into itself")
    survivor, duplicate = await locked_pair(
        session, principal=principal, survivor_id=survivor_id, duplicate_id=duplicate_id
    )
    refuse(survivor, duplicate, expected_version)
    store_id = survivor.store_id
    owner_before = survivor.owner_staff_id
    taken = unite(survivor, duplicate, cipher)

    moved: dict[str, Any] = {}
    moved["purchases"] = await repoint(session, Purchase, store_id, duplicate.id, survivor.id)
    moved["refunds"] = await repoint(session, PurchaseRefund, store_id, duplicate.id, survivor.id)
    # The duplicate's points, and the survivor's level on the spend it now holds.
    moved["membership"] = await membership_merging.move_on_merge(
        await driver_connection(session),
        store_id=store_id,
        duplicate_id=duplicate.id,
        survivor_id=survivor.id,
    )
    relations = await move_on_merge(session, duplicate_id=duplicate.id, survivor_id=survivor.id)
    moved["relations"] = {
        "moved": relations.moved,
        "dropped": relations.dropped,
        "conflicts": [asdict(c) for c in relations.conflicts],
    }
    referred = await move_referrals(session, store_id, duplicate=duplicate, survivor=survivor)
    moved["referrals"] = referred
    if "referrer_id" in taken and await would_loop(session, survivor):
        survivor.referrer_id = None
        taken.remove("referrer_id")
    moved["counts"] = {
        "purchases": moved["purchases"],
        "refunds": moved["refunds"],
        "relations": len(relations.moved),
        "referrals": len(referred),
    }

    duplicate.status = MERGED
    duplicate.merged_into = survivor.id
    # The referral chain follows the survivor now: the pointer refers nobody and is referred
    # by nobody (its referrer is the survivor's, if the survivor had none).
    duplicate.referrer_id = None
    duplicate.version += 1
    survivor.version += 1
    record = CustomerMerge(
        store_id=store_id,
        survivor_id=survivor.id,
        duplicate_id=duplicate.id,
        merged_by=principal.subject,
        taken=sorted(taken),
        moved=moved,
    )
    session.add(record)
    # On both files' ownership trails, the pool kept in step (no event: customer.updated below
    # names owner_staff_id when the survivor took the duplicate's).
    await ownership.merged(
        session,
        survivor=survivor,
        duplicate=duplicate,
        survivor_owner_before=owner_before,
        by=principal.subject,
    )
    await session.flush()

    timezone: str = (
        await session.execute(select(col(Store.timezone)).where(col(Store.id) == store_id))
    ).scalar_one()
    events.customer_merged(session, duplicate, timezone=timezone, merged_into=survivor.id)
    changed = sorted({*taken, "relations"} if relations.moved or relations.dropped else taken)
    events.customer_updated(
        session,
        survivor,
        timezone=timezone,
        relations=await relations_of(session, customer_id=survivor.id),
        changed=changed,
    )
    # The relatives and the referred files now name the survivor: their copies elsewhere too.
    await announce_repointed(
        session,
        relatives=[*relations.moved, *relations.dropped],
        referred=referred,
        survivor_id=survivor.id,
        timezone=timezone,
    )
    await session.refresh(record)
    return Merge(survivor=survivor, duplicate=duplicate, record=record, changed=changed)


async def merges_of(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> list[CustomerMerge]:
    """The merges a file took part in, as survivor or as duplicate, oldest first."""
    file = await customers.get(session, principal=principal, customer_id=customer_id)
    query = (
        select(CustomerMerge)
        .where(
            col(CustomerMerge.store_id) == file.store_id,
            (col(CustomerMerge.survivor_id) == file.id)
            | (col(CustomerMerge.duplicate_id) == file.id),
        )
        .order_by(col(CustomerMerge.merged_at), col(CustomerMerge.id))
    )
    return list((await session.execute(query)).scalars())
