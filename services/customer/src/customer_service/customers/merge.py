"""Merging a duplicate file into the one that stays (DOMAIN.md §1, Hygiene).

``merge`` keeps the survivor with the union of the two files' facts and leaves the duplicate as
a pointer; ``UNION`` says, field by field, which value the survivor ends with and why. Both
files are locked in id order (a concurrent merge of the same pair the other way round waits, it
does not deadlock), and everything moves in one transaction with ``customer.merged``,
``customer.updated`` and a ``customer_merge`` row (``GET /customers/{id}/merges``).

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

import orjson
from sqlalchemy import Column, DateTime, ForeignKey, Index, Text, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from crm_libs.events.driver import driver_connection
from crm_libs.field_crypto import FieldCipher
from crm_libs.ids import new_id
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound, ProblemError
from customer_service.customers import events, profile
from customer_service.customers import service as customers
from customer_service.customers.models import Customer
from customer_service.customers.schemas import PROSPECT_STAGES
from customer_service.membership import merging as membership_merging
from customer_service.ownership import history as ownership
from customer_service.purchases.models import Purchase, PurchaseRefund
from customer_service.relations.service import move_on_merge, relations_of
from customer_service.stores.models import Store

MERGED = "merged"

# What the survivor ends with, field by field (the rule of each, for the reader and the trail).
UNION = {
    "name": "the survivor's: the file staff chose to keep",
    **dict.fromkeys(
        ("gender", "ethnicity", "approximate_age", "email", "address", "id_number", "source"),
        "the survivor's; the duplicate's where the survivor has none",
    ),
    "wedding_anniversary": "the survivor's, else the duplicate's (dropped if before the birthday)",
    "birthday": "the survivor's with its calendar; the duplicate's (with its calendar) if none",
    "phones": "both files' numbers, each once, the survivor's primary staying primary",
    "deep": "both, key by key; the survivor's answer where both have one (lists: both's items)",
    "consents": "per channel, the more recent answer (the customer's latest word)",
    "health": "only if the survivor has the customer's health consent: then both records' "
    "items, each once; without it the duplicate's health data is not copied (consent is given "
    "to a file, and the survivor's is what staff read)",
    "referrer_id": "the survivor's; the duplicate's if none and no loop follows",
    "owner_staff_id": "the survivor's; the duplicate's if none",
    "prospect": "the further stage of the two, the survivor's grade else the duplicate's",
}
_PLAIN = ("gender", "ethnicity", "approximate_age", "email", "wedding_anniversary")
_MAX_PHONES = 10


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


async def _locked_pair(
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


def _refuse(survivor: Customer, duplicate: Customer, expected_version: int | None) -> None:
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
    survivor, duplicate = await _locked_pair(
        session, principal=principal, survivor_id=survivor_id, duplicate_id=duplicate_id
    )
    _refuse(survivor, duplicate, expected_version)
    store_id = survivor.store_id
    owner_before = survivor.owner_staff_id
    taken = _unite(survivor, duplicate, cipher)

    moved: dict[str, Any] = {}
    moved["purchases"] = await _repoint(session, Purchase, store_id, duplicate.id, survivor.id)
    moved["refunds"] = await _repoint(session, PurchaseRefund, store_id, duplicate.id, survivor.id)
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
    referred = await _move_referrals(session, store_id, duplicate=duplicate, survivor=survivor)
    moved["referrals"] = referred
    if "referrer_id" in taken and await _would_loop(session, survivor):
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
    await _announce_repointed(
        session,
        relatives=[*relations.moved, *relations.dropped],
        referred=referred,
        survivor_id=survivor.id,
        timezone=timezone,
    )
    await session.refresh(record)
    return Merge(survivor=survivor, duplicate=duplicate, record=record, changed=changed)


def _unite(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    """Give the survivor what it lacks of the duplicate (``UNION``); the API fields taken."""
    taken: list[str] = []

    def take(api_field: str, column: str) -> None:
        if getattr(survivor, column) is None and getattr(duplicate, column) is not None:
            setattr(survivor, column, getattr(duplicate, column))
            taken.append(api_field)

    for name in _PLAIN:
        take(name, name)
    take("address", "address")
    take("id_number", "id_number_encrypted")
    take("source", "source")
    take("owner_staff_id", "owner_staff_id")
    if survivor.birthday is None and duplicate.birthday is not None:
        survivor.birthday = duplicate.birthday
        survivor.birthday_calendar = duplicate.birthday_calendar
        taken.append("birthday")
        if survivor.wedding_anniversary and survivor.wedding_anniversary <= survivor.birthday:
            survivor.wedding_anniversary = None  # the check registration makes
    if (
        survivor.referrer_id is None
        and duplicate.referrer_id is not None
        and duplicate.referrer_id != survivor.id
    ):
        survivor.referrer_id = duplicate.referrer_id
        taken.append("referrer_id")
    if duplicate.deep:
        ours = survivor.deep or {}
        deep = {**duplicate.deep, **ours}
        for key, value in duplicate.deep.items():
            if isinstance(value, list) and isinstance(ours.get(key), list):
                # Hobbies, favourite colours: both files' items, each once.
                deep[key] = list(dict.fromkeys([*ours[key], *value]))
        if deep != survivor.deep:
            survivor.deep = deep
            taken.append("deep")
    taken += _unite_phones(survivor, duplicate, cipher)
    taken += _unite_consents(survivor, duplicate)
    taken += _unite_health(survivor, duplicate, cipher)
    stages = [s for s in (survivor.prospect_stage, duplicate.prospect_stage) if s]
    if stages:
        further = max(stages, key=PROSPECT_STAGES.index)
        if further != survivor.prospect_stage:
            survivor.prospect_stage = further
            taken.append("prospect")
    if survivor.prospect_grade is None and duplicate.prospect_grade is not None:
        survivor.prospect_grade = duplicate.prospect_grade
        taken.append("prospect")
    return sorted(set(taken))


def _unite_phones(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    theirs = profile.opened_phones(duplicate.phones_encrypted, cipher)
    if not theirs:
        return []
    ours = profile.opened_phones(survivor.phones_encrypted, cipher)
    known = {p["number"] for p in ours}
    added = [{**p, "primary": False} for p in theirs if p["number"] not in known]
    if not added:
        return []
    phones = [*ours, *added][:_MAX_PHONES]
    if not any(p["primary"] for p in phones):
        phones[0]["primary"] = True
    # Each number keeps the hash and tail its file stored beside it (no hash key needed here).
    by_number = {
        p["number"]: (h, t)
        for src in (survivor, duplicate)
        for p, h, t in zip(
            profile.opened_phones(src.phones_encrypted, cipher),
            src.phone_hashes,
            src.phone_tails,
            strict=False,
        )
    }
    survivor.phones_encrypted = cipher.encrypt(orjson.dumps(phones).decode())
    survivor.phone_hashes = [by_number[p["number"]][0] for p in phones]
    survivor.phone_tails = [by_number[p["number"]][1] for p in phones]
    return ["phones"] if ours else ["phone", "phones"]


def _unite_consents(survivor: Customer, duplicate: Customer) -> list[str]:
    if not duplicate.consents:
        return []
    united = dict(survivor.consents or profile.NO_CONSENTS)
    for channel, answer in duplicate.consents.items():
        ours = united.get(channel)
        # ISO times in UTC ("…Z") compare as text; an answer without a time is the oldest.
        if ours is None or (answer.get("at") or "") > (ours.get("at") or ""):
            united[channel] = answer
    if united == (survivor.consents or profile.NO_CONSENTS):
        return []
    survivor.consents = united
    return ["consents"]


def _unite_health(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    if survivor.health_consent_at is None or not duplicate.health_encrypted:
        return []
    theirs: dict[str, list[str]] = orjson.loads(cipher.decrypt(duplicate.health_encrypted))
    ours: dict[str, list[str]] = (
        orjson.loads(cipher.decrypt(survivor.health_encrypted)) if survivor.health_encrypted else {}
    )
    united = {
        key: list(dict.fromkeys([*ours.get(key, []), *theirs.get(key, [])]))
        for key in {*ours, *theirs}
    }
    if united == ours:
        return []
    survivor.health_encrypted = cipher.encrypt(orjson.dumps(united).decode())
    survivor.uses_competitor_products = bool(united.get("other_health_products"))
    return ["health"]


async def _repoint(
    session: AsyncSession, model: Any, store_id: str, duplicate_id: str, survivor_id: str
) -> int:
    result = await session.execute(
        update(model)
        .where(col(model.store_id) == store_id, col(model.customer_id) == duplicate_id)
        .values(customer_id=survivor_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def _move_referrals(
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


async def _would_loop(session: AsyncSession, survivor: Customer) -> bool:
    await session.flush()
    params = {"referrer_id": survivor.referrer_id, "customer_id": survivor.id}
    return bool((await session.execute(_LOOP, params)).scalar_one())


async def _announce_repointed(
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
