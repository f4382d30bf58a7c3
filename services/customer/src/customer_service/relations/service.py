"""Family relations: recorded both ways in one transaction, always inside the caller's store.

Besides the routes' functions, three are called by other parts of the customer file:
``relations_of`` (what ``crm.customers.v1`` carries), ``move_on_merge`` and ``drop_for_erasure``.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound
from customer_service.customers.models import Customer
from customer_service.relations.kinds import INVERSE, RelationKind
from customer_service.relations.models import CustomerRelation
from customer_service.relations.schemas import RelationCreate

ACTIVE = "active"
_REL = CustomerRelation.metadata.tables["customer_relation"]  # for statements without the ORM


@dataclass(frozen=True)
class Relation:
    """One relation as one side reads it, with what the list shows of the other side."""

    related_customer_id: str
    kind: str
    name: str
    since: datetime
    related_status: str


@dataclass(frozen=True)
class MergeConflict:
    """A relation of the merged-away file that the survivor could not take over."""

    related_customer_id: str
    kind: str  # what the related customer was to the duplicate
    kept_kind: str  # what the survivor keeps: its own relation to the same or another customer
    kept_customer_id: str
    reason: str  # "second_spouse" or "related_twice"


@dataclass
class MergedRelations:
    """What ``move_on_merge`` did, for the merge's trail and its events."""

    moved: list[str] = field(default_factory=list)  # related customers now linked to the survivor
    dropped: list[str] = field(default_factory=list)  # related customers whose link went away
    conflicts: list[MergeConflict] = field(default_factory=list)


async def _visible_pair(
    session: AsyncSession, *, principal: Principal, customer_id: str, related_customer_id: str
) -> tuple[Customer, Customer]:
    """Both files, locked in id order; either one unknown or another store's is a 404.

    ``FOR NO KEY UPDATE``: concurrent writes on the same files (a second spouse, the same pair
    with two kinds) wait for each other and then see what the first committed, while purchases
    (whose foreign key takes a key-share lock on the file) go on unhindered.
    """
    query = (
        select(Customer)
        .where(col(Customer.id).in_([customer_id, related_customer_id]))
        .order_by(col(Customer.id))
        .with_for_update(key_share=True)
    )
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Customer.store_id) == scope)
    found = {c.id: c for c in (await session.execute(query)).scalars()}
    if customer_id not in found:
        raise NotFound("No such customer")
    if related_customer_id not in found:
        raise NotFound(f"No such customer: {related_customer_id} (related_customer_id)")
    customer, related = found[customer_id], found[related_customer_id]
    if customer.store_id != related.store_id:
        # Only head office gets here: for everyone else another store's file was not found.
        raise InvalidField("related_customer_id", "belongs to another store than this customer")
    return customer, related


async def visible_file(
    session: AsyncSession, *, principal: Principal, customer_id: str
) -> Customer:
    """A file of the caller's store; another store's is as unknown as a missing one."""
    query = select(Customer).where(col(Customer.id) == customer_id)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(Customer.store_id) == scope)
    customer = (await session.execute(query)).scalar_one_or_none()
    if customer is None:
        raise NotFound("No such customer")
    return customer


async def relate(
    session: AsyncSession, *, principal: Principal, customer_id: str, relation_in: RelationCreate
) -> tuple[Relation, bool]:
    """Record that the related customer is this customer's ``kind``, and the inverse for them.

    Returns the relation and whether it is new: the same pair with the same kind again is the
    relation already recorded (idempotent), with another kind a 409 naming the one recorded.
    """
    related_id, kind = relation_in.related_customer_id, relation_in.kind
    if related_id == customer_id:
        raise InvalidField("related_customer_id", "a customer cannot be related to themselves")
    customer, related = await _visible_pair(
        session, principal=principal, customer_id=customer_id, related_customer_id=related_id
    )
    for file in (customer, related):
        if file.status != ACTIVE:
            raise Conflict(
                f"Customer {file.id} is {file.status}: relations are recorded between active files"
            )
    store_id = customer.store_id
    existing = (
        await session.execute(
            select(CustomerRelation).where(
                col(CustomerRelation.store_id) == store_id,
                col(CustomerRelation.customer_id) == customer_id,
                col(CustomerRelation.related_customer_id) == related_id,
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.kind == kind:
            assert existing.created_at is not None  # server default
            return _as_seen(existing.kind, existing.created_at, related), False
        raise Conflict(
            f"Customer {related_id} is already recorded as this customer's {existing.kind}; "
            f"remove that relation (DELETE /customers/{customer_id}/relations/{related_id}) "
            "before recording another"
        )
    if kind == RelationKind.SPOUSE:
        await _refuse_second_spouse(session, store_id=store_id, customer=customer, related=related)
    since = (
        (
            await session.execute(
                insert(_REL)
                .values(
                    [
                        {
                            "store_id": store_id,
                            "customer_id": customer_id,
                            "related_customer_id": related_id,
                            "kind": kind.value,
                        },
                        {
                            "store_id": store_id,
                            "customer_id": related_id,
                            "related_customer_id": customer_id,
                            "kind": INVERSE[kind].value,
                        },
                    ]
                )
                .returning(_REL.c.created_at)
            )
        )
        .scalars()
        .first()
    )
    assert since is not None
    return _as_seen(kind.value, since, related), True


async def _refuse_second_spouse(
    session: AsyncSession, *, store_id: str, customer: Customer, related: Customer
) -> None:
    spouse = (
        await session.execute(
            select(col(CustomerRelation.customer_id), col(CustomerRelation.related_customer_id))
            .where(
                col(CustomerRelation.store_id) == store_id,
                col(CustomerRelation.customer_id).in_([customer.id, related.id]),
                col(CustomerRelation.kind) == RelationKind.SPOUSE.value,
            )
            .order_by(col(CustomerRelation.customer_id) != customer.id)  # this customer's first
        )
    ).first()
    if spouse is not None:
        raise Conflict(f"Customer {spouse[0]} already has a spouse: customer {spouse[1]}")


def _as_seen(kind: str, since: datetime, related: Customer) -> Relation:
    return Relation(
        related_customer_id=related.id,
        kind=kind,
        name=related.name,
        since=since,
        related_status=related.status,
    )


async def unrelate(
    session: AsyncSession, *, principal: Principal, customer_id: str, related_customer_id: str
) -> bool:
    """Remove the relation both ways; whether there was one (removing is idempotent).

    Allowed whatever the files' status: a wrong link must stay correctable on an archived file.
    """
    customer, _ = await _visible_pair(
        session,
        principal=principal,
        customer_id=customer_id,
        related_customer_id=related_customer_id,
    )
    removed = await session.execute(
        delete(_REL).where(
            _REL.c.store_id == customer.store_id,
            or_(
                and_(
                    _REL.c.customer_id == customer_id,
                    _REL.c.related_customer_id == related_customer_id,
                ),
                and_(
                    _REL.c.customer_id == related_customer_id,
                    _REL.c.related_customer_id == customer_id,
                ),
            ),
        )
    )
    return bool(removed.rowcount)  # type: ignore[attr-defined]  # a CursorResult for a DELETE


async def list_for_customer(
    session: AsyncSession, *, principal: Principal, customer_id: str, page: PageParams
) -> list[Relation]:
    """One page of a visible file's relations, in related-customer id order."""
    customer = await visible_file(session, principal=principal, customer_id=customer_id)
    query = (
        select(
            _REL.c.related_customer_id,
            _REL.c.kind,
            col(Customer.name),
            _REL.c.created_at,
            col(Customer.status),
        )
        .join(Customer, col(Customer.id) == _REL.c.related_customer_id)
        .where(
            _REL.c.store_id == customer.store_id,
            _REL.c.customer_id == customer.id,
            col(Customer.store_id) == customer.store_id,
        )
        .order_by(_REL.c.related_customer_id)
        .limit(page.limit + 1)  # one more tells page_of that another page follows
    )
    if page.after:
        query = query.where(_REL.c.related_customer_id > page.after)
    return [Relation(*row) for row in (await session.execute(query)).all()]


def _store_of(customer_id: str) -> Any:
    """The file's store as a scalar subquery: the relation index leads with the store."""
    return select(col(Customer.store_id)).where(col(Customer.id) == customer_id).scalar_subquery()


async def relations_of(session: AsyncSession, *, customer_id: str) -> list[dict[str, str]]:
    """``[{customer_id, kind}]`` of a file's relations (for ``crm.customers.v1``), in id order.

    No caller scope: for the service's own events, on a file it already holds.
    """
    rows = await session.execute(
        select(col(CustomerRelation.related_customer_id), col(CustomerRelation.kind))
        .where(
            col(CustomerRelation.store_id) == _store_of(customer_id),
            col(CustomerRelation.customer_id) == customer_id,
        )
        .order_by(col(CustomerRelation.related_customer_id))
    )
    return [{"customer_id": related, "kind": kind} for related, kind in rows.all()]


async def move_on_merge(
    session: AsyncSession, *, duplicate_id: str, survivor_id: str
) -> MergedRelations:
    """Give the survivor the duplicate's relations, inside the merge's transaction.

    The caller has checked and locked both files (same store, not the same file). A relation
    between the two disappears; a customer related to both keeps the survivor's relation; a
    second spouse is not taken over. Both are reported in ``conflicts`` for the merge's trail.
    """
    stores = dict(
        (
            await session.execute(
                select(col(Customer.id), col(Customer.store_id)).where(
                    col(Customer.id).in_([duplicate_id, survivor_id])
                )
            )
        ).all()
    )
    if duplicate_id == survivor_id or len(set(stores.values())) != 1 or len(stores) != 2:
        raise ValueError("a merge moves relations between two files of one store")
    store_id = stores[survivor_id]
    # Plain rows, not ORM objects: the duplicate's rows are deleted below by a statement.
    links = (
        await session.execute(
            select(_REL.c.customer_id, _REL.c.related_customer_id, _REL.c.kind, _REL.c.created_at)
            .where(
                _REL.c.store_id == store_id,
                _REL.c.customer_id.in_([duplicate_id, survivor_id]),
            )
            .order_by(_REL.c.related_customer_id)
        )
    ).all()
    survivors = {r.related_customer_id: r.kind for r in links if r.customer_id == survivor_id}
    spouse = next((r for r, k in survivors.items() if k == RelationKind.SPOUSE), None)
    outcome = MergedRelations()
    moving: list[dict[str, Any]] = []
    for row in (r for r in links if r.customer_id == duplicate_id):
        other = row.related_customer_id
        if other == survivor_id:
            outcome.dropped.append(other)
        elif other in survivors:
            outcome.dropped.append(other)
            if survivors[other] != row.kind:
                outcome.conflicts.append(
                    MergeConflict(other, row.kind, survivors[other], other, "related_twice")
                )
        elif row.kind == RelationKind.SPOUSE and spouse is not None:
            outcome.dropped.append(other)
            outcome.conflicts.append(
                MergeConflict(other, row.kind, RelationKind.SPOUSE, spouse, "second_spouse")
            )
        else:
            outcome.moved.append(other)
            inverse = INVERSE[RelationKind(row.kind)].value
            # Each keeps its date: the family was known since then, whichever file held it.
            for customer_id, related_id, kind in (
                (survivor_id, other, row.kind),
                (other, survivor_id, inverse),
            ):
                moving.append(
                    {
                        "store_id": store_id,
                        "customer_id": customer_id,
                        "related_customer_id": related_id,
                        "kind": kind,
                        "created_at": row.created_at,
                    }
                )
    await session.execute(
        delete(_REL).where(
            _REL.c.store_id == store_id,
            or_(_REL.c.customer_id == duplicate_id, _REL.c.related_customer_id == duplicate_id),
        )
    )
    if moving:
        await session.execute(insert(_REL).values(moving))
    return outcome


async def drop_for_erasure(session: AsyncSession, *, customer_id: str) -> list[str]:
    """Remove a file's relations both ways; the customers whose list lost an entry.

    An erased file is anonymised: keeping who its family is would undo that.
    """
    removed = await session.execute(
        delete(_REL)
        .where(
            _REL.c.store_id == _store_of(customer_id),
            or_(_REL.c.customer_id == customer_id, _REL.c.related_customer_id == customer_id),
        )
        .returning(_REL.c.customer_id)
    )
    return sorted(other for (other,) in removed.all() if other != customer_id)
