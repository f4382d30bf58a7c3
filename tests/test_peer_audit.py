"""What the customer service discloses to engagement is on the gateway's audit trail too (the
work list's names, read sparse as the caller, disclose nothing and are not on it): the numbers
the SMS worker reads under its own principal (handed to the gateway before the message goes, or the
message waits while the gateway is away); not a campaign's recipients, read sparse by the send
job (names, gender, whether there is a number), which queues with the gateway away; and a
guest's lookup and file at check-in (the caller's request) or by the guest-file job later,
under the job's actor for the account it read as."""

import os
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from crm_devstack.fixtures import eventually
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.ids import new_id
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from engagement_service.messages.service import QUEUED_CHANNEL
from tests.builders import client_as, create_account, create_customer, create_staff, create_store
from tests.builders import sign_in as sign_in_account
from tests.test_care_messages import CONSENTED, a_mobile, daytime_zone, send, template
from tests.test_member_events import check_in, invited, schedule

SENDER = "engagement:messages"


@pytest.fixture
async def engagement_db(stack: LocalStack) -> AsyncIterator[asyncpg.Connection]:
    db = await asyncpg.connect(asyncpg_dsn(stack.database_url("engagement")))
    try:
        yield db
    finally:
        await db.close()


async def _audit(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    response = await api.get("/audit", params={**params, "limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _file_copied(db: asyncpg.Connection, customer_id: str) -> None:
    async def copied() -> bool:
        found = await db.fetchval(
            "SELECT count(*) FROM customer_file WHERE customer_id = $1", customer_id
        )
        return bool(found)

    await eventually(copied, timeout=60)


async def test_the_work_lists_names_read_discloses_nothing_for_the_callers_request(
    api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    store = (await create_store(api, timezone=daytime_zone()))["id"]
    # A manager with a roster entry: a whole file's read would show the numbers to that role;
    # the names' read asks for the names alone (fields=id,name).
    me = (await create_staff(api, store_id=store))["id"]
    customer = (await create_customer(api, store_id=store, name="赵敏", phone=a_mobile()))["id"]
    await _file_copied(engagement_db, customer)
    await engagement_db.execute(
        """
        INSERT INTO task (id, store_id, customer_id, kind, due_on, method, purpose, status,
                          assignee_staff_id)
        VALUES ($1, $2, $3, 'routine', $4, 'phone', '问候', 'open', $5)
        """,
        new_id(),
        store,
        customer,
        date.today() - timedelta(days=1),  # overdue: on today's list in any store's zone
        me,
    )
    account = await create_account(api, role="store_manager", store_id=store, staff_id=me)
    async with client_as(
        api, token=(await sign_in_account(api, account))["access_token"]
    ) as manager:
        response = await manager.get(
            "/tasks",
            params={"assignee": "me", "due": "today"},
            headers={"X-Request-ID": "work-list-names-1"},
        )
    assert response.status_code == 200, response.text
    assert [t["customer_name"] for t in response.json()["items"]] == ["赵敏"]
    assert "x-crm-audit" not in response.headers  # the gateway keeps it to itself
    entries = await _audit(api, actor=account["id"])
    assert [e for e in entries if e["request_id"] == "work-list-names-1"] == [], str(entries)


async def test_a_care_message_sent_by_the_worker_audits_the_number_it_read(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    customer = await create_customer(api, store_id=store["id"], phone=a_mobile(), **CONSENTED)
    care = await template(api, store["id"], "care", "{form_of_address}，天凉了，记得添衣。")
    queued = await send(api, {"customer_id": customer["id"], "template_id": care})
    assert queued.status_code == 202, queued.text

    async def sender_read() -> list[dict[str, Any]] | None:
        found = [e for e in await _audit(api, customer_id=customer["id"]) if e["actor"] == SENDER]
        return found or None

    entries = await eventually(sender_read)
    assert [
        (e["action"], e["resource"], e["fields"], e["role"], e["store_id"]) for e in entries
    ] == [("read", f"customer/{customer['id']}", ["phone"], "store_manager", store["id"])]

    async def sent() -> bool:
        page = await api.get("/messages", params={"customer_id": customer["id"]})
        return page.json()["items"][0]["status"] in ("sent", "delivered")

    await eventually(sent)


async def test_with_the_gateway_down_the_message_waits_until_its_read_is_recorded(
    stack: LocalStack, api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    customer = await create_customer(api, store_id=store["id"], phone=a_mobile(), **CONSENTED)
    care = await template(api, store["id"], "care", "{form_of_address}，注意休息。")
    await _file_copied(engagement_db, customer["id"])
    stack.stop_service("gateway")
    try:
        # Queued straight at engagement as head office, as the gateway would have forwarded it.
        token = sign_principal(
            Principal(subject="audit-test", role=Role.HQ_ADMIN),
            secret=os.environ.get("CRM_PRINCIPAL_SECRET", DEV_PRINCIPAL_SECRET),
        )
        async with httpx.AsyncClient(
            base_url=stack.url("engagement"), headers={PRINCIPAL_HEADER: token}
        ) as engagement:
            queued = await engagement.post(
                "/messages", json={"customer_id": customer["id"], "template_id": care}
            )
        assert queued.status_code == 202, queued.text
        message_id = queued.json()["id"]

        async def put_back() -> bool:
            # The worker read the number, could not record the read and released the message
            # for later (its not_before pushed past its creation), unsent.
            row = await engagement_db.fetchrow(
                "SELECT status, not_before > created_at + interval '5 seconds' AS later"
                " FROM sms_message WHERE id = $1",
                message_id,
            )
            return bool(row["later"]) and row["status"] == "queued"

        await eventually(put_back, timeout=30)
    finally:
        stack.start_service("gateway")
        stack.wait_healthy("gateway")
    row = await engagement_db.fetchrow(
        "SELECT status, provider_message_id FROM sms_message WHERE id = $1", message_id
    )
    assert (row["status"], row["provider_message_id"]) == ("queued", None)
    # Due again now rather than after the retry wait, and the worker woken.
    await engagement_db.execute(
        "UPDATE sms_message SET not_before = now() WHERE id = $1", message_id
    )
    await engagement_db.execute("SELECT pg_notify($1, $2)", QUEUED_CHANNEL, message_id)

    async def sent() -> bool:
        status = await engagement_db.fetchval(
            "SELECT status FROM sms_message WHERE id = $1", message_id
        )
        return status in ("sent", "delivered")

    await eventually(sent, timeout=30)
    entries = [e for e in await _audit(api, customer_id=customer["id"]) if e["actor"] == SENDER]
    assert [(e["action"], e["fields"]) for e in entries] == [("read", ["phone"])]


async def _signed_in(api: httpx.AsyncClient, role: str, store_id: str) -> tuple[str, str]:
    """A new account of ``role`` in the store: its id (the trail's subject) and its token."""
    account = await create_account(api, role=role, store_id=store_id)
    return account["id"], (await sign_in_account(api, account))["access_token"]


async def test_a_campaign_reads_its_recipients_sparse_and_only_the_sender_reads_a_number(
    api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    today = datetime.now(ZoneInfo(store["timezone"])).date()
    customer = await create_customer(
        api,
        store_id=store["id"],
        name="孙悦",
        phone=a_mobile(),
        birthday=today.replace(year=1980).isoformat(),
        birthday_calendar="solar",
        **CONSENTED,
    )
    await _file_copied(engagement_db, customer["id"])
    birthday = await template(api, store["id"], "birthday", "{form_of_address}，生日快乐！")
    account, token = await _signed_in(api, "store_manager", store["id"])
    async with client_as(api, token=token) as manager:
        made = await manager.post(
            "/campaigns",
            json={"kind": "birthday", "template_id": birthday, "date_from": today.isoformat()},
        )
        assert made.status_code == 201, made.text
        campaign_id = made.json()["id"]
        sent = await manager.post(f"/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text

    async def queued() -> bool:
        found = (await api.get(f"/campaigns/{campaign_id}")).json()
        return bool(found["status"] == "sent" and found["recipients"] == 1)

    await eventually(queued, timeout=60)

    # The message's number, read by the worker that sends it, is on the trail; the campaign's
    # job read the name, gender and whether there is a number (a manager's whole read would
    # have shown the number): nothing disclosed, nothing recorded for it.
    async def sender_read() -> list[dict[str, Any]] | None:
        found = [e for e in await _audit(api, customer_id=customer["id"]) if e["actor"] == SENDER]
        return found or None

    assert [(e["action"], e["fields"]) for e in await eventually(sender_read, timeout=60)] == [
        ("read", ["phone"])
    ]
    actor = f"engagement:campaigns for {account}"
    entries = await _audit(api, customer_id=customer["id"])
    assert [e for e in entries if e["actor"] == actor] == []


async def test_a_check_in_audits_the_guests_lookup_and_new_file_for_the_callers_request(
    api: httpx.AsyncClient,
) -> None:
    store = await create_store(api)
    inviter = await create_customer(api, store_id=store["id"])
    known_phone = a_mobile()
    known_guest = await create_customer(api, store_id=store["id"], phone=known_phone)
    event = await schedule(api, store["id"])
    await invited(api, event["id"], [inviter["id"]])
    account, token = await _signed_in(api, "store_manager", store["id"])
    async with client_as(api, token=token) as manager:
        done = await manager.post(
            f"/events/{event['id']}/checkins",
            json={
                "customer_id": inviter["id"],
                "guests": [
                    {"name": "周芳", "phone": a_mobile()},
                    {"name": "吴刚", "phone": known_phone},
                ],
            },
            headers={"X-Request-ID": "check-in-guests-1"},
        )
    assert done.status_code == 201, done.text
    created, linked = done.json()["guests"]
    assert (created["file"], linked["customer_id"]) == ("created", known_guest["id"])
    entries = [
        e for e in await _audit(api, actor=account) if e["request_id"] == "check-in-guests-1"
    ]
    new_file = f"customer/{created['customer_id']}"
    assert sorted((e["action"], e["resource"], e["fields"]) for e in entries) == sorted(
        [
            # The known guest's lookup disclosed the number it found; the new guest's found none.
            ("search", f"customers?store_id={store['id']}&q={known_phone}", ["phone"]),
            (
                "create",
                new_file,
                ["name", "phone", "prospect", "referrer_id", "source", "store_id"],
            ),
            ("read", new_file, ["phone"]),
        ]
    )


async def test_the_guest_file_job_audits_the_file_it_opened_for_the_account(
    api: httpx.AsyncClient, stack: LocalStack
) -> None:
    store = await create_store(api)
    inviter = await create_customer(api, store_id=store["id"])
    event = await schedule(api, store["id"])
    await invited(api, event["id"], [inviter["id"]])
    account, token = await _signed_in(api, "store_manager", store["id"])
    guest_phone = a_mobile()
    stack.stop_service("customer")
    try:
        async with client_as(api, token=token) as manager:
            response = await check_in(
                manager, event["id"], inviter["id"], guests=[{"name": "郑洁", "phone": guest_phone}]
            )
        assert response.status_code == 201, response.text
        assert response.json()["guests"][0]["file"] == "pending"
    finally:
        stack.start_service("customer")
        stack.wait_healthy("customer")

    actor = f"engagement:guests for {account}"

    async def job_entries() -> list[dict[str, Any]] | None:
        found = [e for e in await _audit(api, actor=actor) if e["action"] == "create"]
        return found or None

    (created,) = await eventually(job_entries, timeout=90)
    entries = await _audit(api, actor=actor)
    assert sorted((e["action"], e["resource"], e["role"], e["store_id"]) for e in entries) == [
        ("create", created["resource"], "store_manager", store["id"]),
        ("read", created["resource"], "store_manager", store["id"]),
    ]


async def test_with_the_gateway_down_a_campaign_is_queued_and_its_messages_wait(
    stack: LocalStack, api: httpx.AsyncClient, engagement_db: asyncpg.Connection
) -> None:
    store = await create_store(api, timezone=daytime_zone())
    today = datetime.now(ZoneInfo(store["timezone"])).date()
    customer = await create_customer(
        api,
        store_id=store["id"],
        phone=a_mobile(),
        birthday=today.replace(year=1981).isoformat(),
        **CONSENTED,
    )
    await _file_copied(engagement_db, customer["id"])
    birthday = await template(api, store["id"], "birthday", "生日快乐！")
    account, token = await _signed_in(api, "store_manager", store["id"])
    async with client_as(api, token=token) as manager:
        made = await manager.post(
            "/campaigns",
            json={"kind": "birthday", "template_id": birthday, "date_from": today.isoformat()},
        )
    assert made.status_code == 201, made.text
    campaign_id = made.json()["id"]
    stack.stop_service("gateway")
    try:
        # Sent straight at engagement as the manager, as the gateway would have forwarded it.
        signed = sign_principal(
            Principal(subject=account, role=Role.STORE_MANAGER, store_id=store["id"]),
            secret=os.environ.get("CRM_PRINCIPAL_SECRET", DEV_PRINCIPAL_SECRET),
        )
        async with httpx.AsyncClient(
            base_url=stack.url("engagement"), headers={PRINCIPAL_HEADER: signed}
        ) as engagement:
            sent = await engagement.post(f"/campaigns/{campaign_id}/send")
        assert sent.status_code == 202, sent.text

        async def held() -> asyncpg.Record | None:
            # The job's reads disclosed nothing, so it needed no trail to queue the campaign's
            # message; the message waits for one (the sender reads the number).
            row = await engagement_db.fetchrow(
                "SELECT c.status AS campaign, m.id, m.status,"
                " m.not_before > m.created_at + interval '5 seconds' AS later"
                " FROM campaign c JOIN sms_message m ON m.campaign_id = c.id WHERE c.id = $1",
                campaign_id,
            )
            ready = row is not None and row["campaign"] == "sent" and row["later"]
            return row if ready else None

        message = await eventually(held, timeout=60)
        assert message["status"] == "queued"
    finally:
        stack.start_service("gateway")
        stack.wait_healthy("gateway")
    # Due again now rather than after the retry wait, and the worker woken.
    await engagement_db.execute(
        "UPDATE sms_message SET not_before = now() WHERE id = $1", message["id"]
    )
    await engagement_db.execute("SELECT pg_notify($1, $2)", QUEUED_CHANNEL, message["id"])

    async def delivered() -> bool:
        status = await engagement_db.fetchval(
            "SELECT status FROM sms_message WHERE id = $1", message["id"]
        )
        return status in ("sent", "delivered")

    await eventually(delivered, timeout=30)
    entries = await _audit(api, customer_id=customer["id"])
    assert [(e["action"], e["fields"]) for e in entries if e["actor"] == SENDER] == [
        ("read", ["phone"])
    ]
    assert [e for e in entries if e["actor"] == f"engagement:campaigns for {account}"] == []
