"""A merge on the ownership trail (DOMAIN.md §9's "every change is kept") through the gateway:
both files' ``GET /customers/{id}/ownership`` show it, naming the other file; a survivor without
an owner takes the duplicate's and leaves the pool; a merged-away file waits in no pool; and a
merge is no change of hands for the 90-day rule."""

from typing import Any

import httpx

from tests.builders import create_customer, create_store
from tests.test_ownership import depart, owned_file, ownership, pool_ids, staff_member


async def merge(api: httpx.AsyncClient, survivor: str, duplicate: str) -> None:
    response = await api.post(f"/customers/{survivor}/merge", json={"duplicate_id": duplicate})
    assert response.status_code == 200, response.text


def last(trail: dict[str, Any]) -> dict[str, Any]:
    change: dict[str, Any] = trail["history"][-1]
    return change


async def test_a_survivor_without_an_owner_takes_the_duplicates_and_leaves_the_pool(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    leaving = await staff_member(api, store["id"])
    serving = await staff_member(api, store["id"])
    survivor = await owned_file(api, store["id"], leaving)
    await depart(api, leaving)  # no recent seller: the survivor waits in the pool
    assert survivor in await pool_ids(api, store["id"])
    duplicate = await owned_file(api, store["id"], serving)

    await merge(api, survivor, duplicate)

    kept = await ownership(api, survivor)
    assert (kept["owner_staff_id"], kept["in_pool_since"]) == (serving, None)
    change = last(kept)
    assert (change["kind"], change["from_staff_id"], change["to_staff_id"]) == (
        "merged",
        None,
        serving,
    )
    assert duplicate in change["reason"] and change["change_of_hands"] is False
    gone = await ownership(api, duplicate)
    change = last(gone)
    assert (change["kind"], change["from_staff_id"], change["to_staff_id"]) == (
        "merged",
        serving,
        serving,
    )
    assert survivor in change["reason"] and change["change_of_hands"] is False
    assert gone["in_pool_since"] is None
    assert survivor not in await pool_ids(api, store["id"])

    # Not counted by the 90-day rule: two changes of hands are still the survivor's to make.
    third = await staff_member(api, store["id"])
    for to in (third, serving):
        response = await api.post(
            f"/customers/{survivor}/transfer", json={"to_staff_id": to, "reason": "asked"}
        )
        assert response.status_code == 200, response.text


async def test_a_merge_of_two_owned_files_changes_no_owner_and_is_kept_on_both(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    owner, other = await staff_member(api, store["id"]), await staff_member(api, store["id"])
    survivor = await owned_file(api, store["id"], owner)
    duplicate = await owned_file(api, store["id"], other)

    await merge(api, survivor, duplicate)

    kept = await ownership(api, survivor)
    assert kept["owner_staff_id"] == owner
    assert [c["kind"] for c in kept["history"]] == ["registered", "merged"]
    change = last(kept)
    assert (change["from_staff_id"], change["to_staff_id"], change["change_of_hands"]) == (
        owner,
        owner,
        False,
    )
    assert duplicate in change["reason"] and other in change["reason"]
    gone = await ownership(api, duplicate)
    assert [c["kind"] for c in gone["history"]] == ["registered", "merged"]
    change = last(gone)
    assert (change["from_staff_id"], change["to_staff_id"]) == (other, owner)
    assert survivor in change["reason"]


async def test_a_merged_away_orphan_leaves_the_pool_and_its_customer_waits_on_the_survivor(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    leaving = await staff_member(api, store["id"])
    survivor = (await create_customer(api, store_id=store["id"]))["id"]  # nobody's, not pooled
    duplicate = await owned_file(api, store["id"], leaving)
    await depart(api, leaving)
    waiting_since = (await ownership(api, duplicate))["in_pool_since"]
    assert waiting_since is not None

    await merge(api, survivor, duplicate)

    assert (await ownership(api, duplicate))["in_pool_since"] is None
    kept = await ownership(api, survivor)
    assert (kept["owner_staff_id"], kept["in_pool_since"]) == (None, waiting_since)
    assert [(c["kind"], c["to_staff_id"]) for c in kept["history"]] == [("merged", None)]
    assert await pool_ids(api, store["id"]) == {survivor}
