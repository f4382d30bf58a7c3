"""Family relations' functions that other parts of the customer file call (merge, erasure,
the customer events), on a real, migrated database; each test's work is rolled back."""

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.ids import new_id
from crm_libs.principal import Principal, Role
from crm_libs.problems import ProblemError
from customer_service.customers.models import Customer
from customer_service.relations import service
from customer_service.relations.models import CustomerRelation
from customer_service.relations.schemas import RelationCreate
from customer_service.stores.models import Store

HEAD_OFFICE = Principal(subject="test", role=Role.HQ_ADMIN)


async def _store(session: AsyncSession) -> str:
    store = Store(code=new_id(), name="Health store", timezone="Asia/Shanghai")
    session.add(store)
    await session.flush()
    return store.id


async def _files(session: AsyncSession, store_id: str, *names: str) -> list[str]:
    customers = [Customer(store_id=store_id, name=name) for name in names]
    session.add_all(customers)
    await session.flush()
    return [c.id for c in customers]


async def _relate(session: AsyncSession, customer_id: str, related_id: str, kind: str) -> None:
    relation_in = RelationCreate.model_validate({"related_customer_id": related_id, "kind": kind})
    await service.relate(
        session, principal=HEAD_OFFICE, customer_id=customer_id, relation_in=relation_in
    )


async def _family(session: AsyncSession, customer_id: str) -> dict[str, str]:
    return {
        r["customer_id"]: r["kind"]
        for r in await service.relations_of(session, customer_id=customer_id)
    }


async def _rows_naming(session: AsyncSession, customer_id: str) -> int:
    rows = await session.execute(
        select(CustomerRelation).where(
            (CustomerRelation.customer_id == customer_id)  # type: ignore[arg-type]
            | (CustomerRelation.related_customer_id == customer_id)  # type: ignore[arg-type]
        )
    )
    return len(rows.all())


async def test_relations_of_lists_each_side_with_its_own_kind(session: AsyncSession) -> None:
    store = await _store(session)
    mother, son, daughter = await _files(session, store, "王芳", "李明", "李丽")
    await _relate(session, son, mother, "parent")
    await _relate(session, mother, daughter, "child")
    assert await _family(session, mother) == {son: "child", daughter: "child"}
    assert await service.relations_of(session, customer_id=son) == [
        {"customer_id": mother, "kind": "parent"}
    ]
    assert await service.relations_of(session, customer_id=new_id()) == []


async def test_move_on_merge_hands_the_duplicates_family_to_the_survivor(
    session: AsyncSession,
) -> None:
    store = await _store(session)
    duplicate, survivor, mother, brother, cousin, her_husband, his_wife = await _files(
        session, store, "王芳", "王芳", "张兰", "王强", "刘涛", "李雷", "韩梅"
    )
    await _relate(session, duplicate, survivor, "sibling")  # a mistaken link between the two
    await _relate(session, duplicate, mother, "parent")  # only the duplicate knew her
    await _relate(session, duplicate, brother, "sibling")  # both files knew him, the same way
    await _relate(session, survivor, brother, "sibling")
    await _relate(session, duplicate, cousin, "child")  # both knew him, differently
    await _relate(session, survivor, cousin, "other")
    await _relate(session, duplicate, her_husband, "spouse")  # two spouses after the merge
    await _relate(session, survivor, his_wife, "spouse")
    since = (
        await session.execute(
            select(CustomerRelation.created_at).where(
                CustomerRelation.customer_id == duplicate,  # type: ignore[arg-type]
                CustomerRelation.related_customer_id == mother,  # type: ignore[arg-type]
            )
        )
    ).scalar_one()

    outcome = await service.move_on_merge(session, duplicate_id=duplicate, survivor_id=survivor)

    assert await _family(session, survivor) == {
        mother: "parent",
        brother: "sibling",
        cousin: "other",
        his_wife: "spouse",
    }
    assert await _family(session, mother) == {survivor: "child"}
    assert await _family(session, brother) == {survivor: "sibling"}
    assert await _family(session, cousin) == {survivor: "other"}
    assert await _family(session, her_husband) == {}
    assert await _rows_naming(session, duplicate) == 0
    assert outcome.moved == [mother]
    assert sorted(outcome.dropped) == sorted([survivor, brother, cousin, her_husband])
    conflicts = {(c.related_customer_id, c.reason) for c in outcome.conflicts}
    assert conflicts == {(cousin, "related_twice"), (her_husband, "second_spouse")}
    second_spouse = next(c for c in outcome.conflicts if c.reason == "second_spouse")
    assert (second_spouse.kept_customer_id, second_spouse.kept_kind) == (his_wife, "spouse")
    moved_since = (
        await session.execute(
            select(CustomerRelation.created_at).where(
                CustomerRelation.customer_id == survivor,  # type: ignore[arg-type]
                CustomerRelation.related_customer_id == mother,  # type: ignore[arg-type]
            )
        )
    ).scalar_one()
    assert moved_since == since


async def test_move_on_merge_gives_a_spouse_to_a_survivor_without_one(
    session: AsyncSession,
) -> None:
    store = await _store(session)
    duplicate, survivor, husband = await _files(session, store, "王芳", "王芳", "李雷")
    await _relate(session, duplicate, husband, "spouse")
    outcome = await service.move_on_merge(session, duplicate_id=duplicate, survivor_id=survivor)
    assert outcome.conflicts == []
    assert await _family(session, survivor) == {husband: "spouse"}
    assert await _family(session, husband) == {survivor: "spouse"}


async def test_move_on_merge_refuses_two_stores_or_one_file(session: AsyncSession) -> None:
    (here,) = await _files(session, await _store(session), "王芳")
    (there,) = await _files(session, await _store(session), "王芳")
    with pytest.raises(ValueError):
        await service.move_on_merge(session, duplicate_id=here, survivor_id=there)
    with pytest.raises(ValueError):
        await service.move_on_merge(session, duplicate_id=here, survivor_id=here)


async def test_drop_for_erasure_removes_both_directions_and_nothing_else(
    session: AsyncSession,
) -> None:
    store = await _store(session)
    erased, husband, son = await _files(session, store, "王芳", "李雷", "李明")
    await _relate(session, erased, husband, "spouse")
    await _relate(session, erased, son, "child")
    await _relate(session, husband, son, "child")
    touched = await service.drop_for_erasure(session, customer_id=erased)
    assert touched == sorted([husband, son])
    assert await _rows_naming(session, erased) == 0
    assert await _family(session, husband) == {son: "child"}
    assert await _family(session, son) == {husband: "parent"}


@pytest.mark.parametrize("status", ["archived", "merged", "erased"])
async def test_no_relation_is_recorded_with_a_file_that_is_not_active(
    session: AsyncSession, status: str
) -> None:
    store = await _store(session)
    active, other = await _files(session, store, "王芳", "李雷")
    customer = await session.get(Customer, other)
    assert customer is not None
    customer.status = status
    await session.flush()
    for path, body in ((active, other), (other, active)):
        with pytest.raises(ProblemError) as refused:
            await _relate(session, path, body, "spouse")
        assert refused.value.status == 409 and status in refused.value.detail
    assert await _family(session, active) == {}
