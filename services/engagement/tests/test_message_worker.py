"""Care messages on a real, migrated PostgreSQL: queued by the service as POST /messages queues
them (names and numbers read from the stack's real customer service), sent by the worker as it
runs (leased claims, one outcome at a time) through a provider class implementing the Protocol,
with the clock given. The rules at send time, retries, a permanent failure and a restart mid-batch.
"""

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_devstack.stack import LocalStack
from crm_libs.principal import Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from engagement_service.messages.categories import Category
from engagement_service.messages.directory import CustomerDirectory, sender_directory
from engagement_service.messages.opt_outs import phone_hash, record_inbound
from engagement_service.messages.providers.base import (
    CallbackSink,
    OutgoingMessage,
    SendAccepted,
    SendOutcome,
    SendRejected,
    SendRetryable,
    SmsProvider,
)
from engagement_service.messages.quiet_hours import is_quiet
from engagement_service.messages.schemas import MessageCreate
from engagement_service.messages.service import NotSendable, SendingRules, queue_message
from engagement_service.messages.worker import MessageSender, SenderSettings
from tests.builders import create_customer, create_staff, create_store

ZONE = ZoneInfo("Asia/Shanghai")
RULES = SendingRules(
    forbidden_overrides={},
    unsubscribe_suffix="回TD退订",
    cap_messages=50,
    cap_days=7,
    signature=None,
    default_timezone="Asia/Shanghai",
)
BASE = 30.0
SENDER = SenderSettings(
    batch=50,
    lease_seconds=120,
    retry_base_seconds=BASE,
    retry_max_seconds=3600,
    max_attempts=4,
    default_timezone="Asia/Shanghai",
    secret=DEV_PRINCIPAL_SECRET,
)
_phones = itertools.count(1)


@pytest.fixture
async def sessions(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """The conftest's sessions, over no other test's messages: the module's database is shared
    and each test's worker must see only the test's own."""
    async with sessions() as session:
        await session.execute(text("TRUNCATE sms_message, sms_opt_out"))
        await session.commit()
    return sessions


@pytest.fixture
async def customers(stack: LocalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url("customer"), timeout=30) as client:
        yield client


def local(day: date, at: time) -> datetime:
    """A store-local wall time in UTC (tests never use the real clock's time of day)."""
    return datetime.combine(day, at, ZONE).astimezone(UTC)


DAY = date(2031, 3, 12)
NOON = local(DAY, time(12, 0))


@dataclass
class Store:
    """A test's store and the handles its messages go through: the gateway (its customers are
    registered there), engagement's database and the customer service (the directory)."""

    id: str
    staff_id: str
    manager: Principal
    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    customers: httpx.AsyncClient

    def directory(self) -> CustomerDirectory:
        secret = DEV_PRINCIPAL_SECRET
        return CustomerDirectory(self.customers, sign_principal(self.manager, secret=secret))

    async def customer(self, *, consent: bool | None = True, phone: str | None = None) -> str:
        """A customer in the customer service (name, number) and in engagement's copy
        (consent)."""
        number = phone or f"139{next(_phones):08d}"
        created = await create_customer(self.api, store_id=self.id, phone=number, gender="female")
        await self.execute(
            """
            INSERT INTO customer_file (customer_id, store_id, status, timezone,
                owner_staff_id, sms_consent_granted, sms_consent_at, version)
            VALUES (:id, :store, 'active', 'Asia/Shanghai', :owner, :granted, :at, 1)
            """,
            id=created["id"],
            store=self.id,
            owner=self.staff_id,
            granted=bool(consent),
            at=None if consent is None else NOON - timedelta(days=30),
        )
        return str(created["id"])

    async def template(self, category: Category) -> str:
        async with self.sessions() as session:
            template_id = (
                await session.execute(
                    text(
                        """
                        INSERT INTO message_template (id, store_id, category, name, body,
                            created_by)
                        VALUES (gen_random_uuid()::text, :store, :category, 'care',
                                '{form_of_address}，天凉了，记得添衣。{staff_name}', 'test')
                        RETURNING id
                        """
                    ),
                    {"store": self.id, "category": category.value},
                )
            ).scalar_one()
            await session.commit()
        return str(template_id)

    async def queue(
        self,
        *,
        template_id: str,
        customer_id: str | None = None,
        now: datetime = NOON,
        rules: SendingRules = RULES,
    ) -> dict[str, Any]:
        """A message queued as POST /messages queues it (to a new customer unless one is
        named)."""
        async with self.sessions() as session:
            message = await queue_message(
                session,
                principal=self.manager,
                message_in=MessageCreate(
                    customer_id=customer_id or await self.customer(),
                    template_id=template_id,
                    staff_id=self.staff_id,
                ),
                directory=self.directory(),
                rules=rules,
                now=now,
            )
            await session.commit()
            return {"id": message.id, "status": message.status, "not_before": message.not_before}

    async def message(self, message_id: str) -> Any:
        async with self.sessions() as session:
            return (
                await session.execute(
                    text("SELECT * FROM sms_message WHERE id = :id"), {"id": message_id}
                )
            ).one()

    async def execute(self, statement: str, **params: Any) -> None:
        async with self.sessions() as session:
            await session.execute(text(statement), params)
            await session.commit()

    def sender(self, provider: SmsProvider, clock: list[datetime]) -> MessageSender:
        """A worker sending through ``provider`` at the time ``clock[0]`` says."""
        return MessageSender(
            sessionmaker=self.sessions,
            provider=provider,
            directory_for=lambda store_id: sender_directory(
                self.customers, store_id=store_id, secret=DEV_PRINCIPAL_SECRET
            ),
            settings=SENDER,
            clock=lambda: clock[0],
        )


@pytest.fixture
async def store(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    customers: httpx.AsyncClient,
) -> Store:
    created = await create_store(api)
    staff = await create_staff(api, store_id=created["id"])
    manager = Principal(subject="manager", role=Role.STORE_MANAGER, store_id=created["id"])
    return Store(
        id=created["id"],
        staff_id=staff["id"],
        manager=manager,
        api=api,
        sessions=sessions,
        customers=customers,
    )


@dataclass
class ScriptedProvider:
    """A provider class implementing the Protocol whose answers the test scripts per call."""

    answers: list[SendOutcome | None] = field(default_factory=list)
    name: str = "scripted"
    calls: list[OutgoingMessage] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    # Set to make the next call hang (a worker killed while the provider has the message).
    hang_on_call: int | None = None
    hanging: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, message: OutgoingMessage) -> SendOutcome:
        self.calls.append(message)
        if self.hang_on_call == len(self.calls):
            self.hanging.set()
            await asyncio.Event().wait()
        answer = self.answers.pop(0) if self.answers else None
        if answer is None:
            answer = SendAccepted(provider_message_id=f"p-{message.out_id}")
        if isinstance(answer, SendAccepted):
            self.accepted.append(message.out_id)
        return answer

    def callback_routes(self, sink: CallbackSink) -> None:
        return None

    async def aclose(self) -> None:
        return None


def test_the_quiet_hours_bounds_are_exact() -> None:
    assert not is_quiet(local(DAY, time(20, 59, 59)), ZONE)
    assert is_quiet(local(DAY, time(21, 0)), ZONE)
    assert is_quiet(local(DAY, time(7, 59, 59)), ZONE)
    assert not is_quiet(local(DAY, time(8, 0)), ZONE)


async def test_queued_at_20_59_and_08_00_goes_held_at_21_00_and_07_59_until_08_00(
    store: Store,
) -> None:
    template = await store.template(Category.CARE)
    cases = {
        time(20, 59): ("queued", local(DAY, time(20, 59))),
        time(21, 0): ("held_quiet_hours", local(DAY + timedelta(days=1), time(8, 0))),
        time(7, 59): ("held_quiet_hours", local(DAY, time(8, 0))),
        time(8, 0): ("queued", local(DAY, time(8, 0))),
    }
    for at, (status, not_before) in cases.items():
        queued = await store.queue(template_id=template, now=local(DAY, at))
        assert (queued["status"], queued["not_before"]) == (status, not_before), at


async def test_a_held_message_goes_at_08_00_and_one_due_at_21_00_is_held(store: Store) -> None:
    template = await store.template(Category.CARE)
    held = await store.queue(template_id=template, now=local(DAY, time(22, 30)))
    late = await store.queue(template_id=template, now=local(DAY, time(20, 59, 59)))
    provider = ScriptedProvider()
    clock = [local(DAY, time(21, 0))]
    worker = store.sender(provider, clock)
    # Due at 20:59:59, picked up at 21:00: held, not sent.
    await worker.send_due()
    assert provider.calls == []
    row = await store.message(late["id"])
    assert row.status == "held_quiet_hours"
    assert row.not_before == local(DAY + timedelta(days=1), time(8, 0))
    clock[0] = local(DAY + timedelta(days=1), time(7, 59, 59))
    assert await worker.send_due() == 0
    clock[0] = local(DAY + timedelta(days=1), time(8, 0))
    assert await worker.send_due() == 2
    assert sorted(provider.accepted) == sorted([held["id"], late["id"]])
    for sent in (held, late):
        row = await store.message(sent["id"])
        assert row.status == "sent"
        assert row.provider_message_id == f"p-{sent['id']}"
    # The text as rendered: the form of address from the customer service's file, the voice.
    assert provider.calls[0].text.startswith("王女士，天凉了")
    assert provider.calls[0].text.endswith("李娜")


async def test_a_failing_provider_is_retried_with_backoff_then_sent(store: Store) -> None:
    queued = await store.queue(template_id=await store.template(Category.CARE))
    provider = ScriptedProvider(
        answers=[SendRetryable(reason="timeout"), SendRetryable(reason="throttled")]
    )
    clock = [NOON]
    worker = store.sender(provider, clock)
    await worker.send_due()
    row = await store.message(queued["id"])
    assert (row.status, row.attempts) == ("queued", 1)
    assert row.not_before == NOON + timedelta(seconds=BASE)
    # Not before its time; then the second wait is twice the first.
    clock[0] = NOON + timedelta(seconds=BASE - 1)
    assert await worker.send_due() == 0
    clock[0] = NOON + timedelta(seconds=BASE)
    await worker.send_due()
    row = await store.message(queued["id"])
    assert (row.status, row.attempts) == ("queued", 2)
    assert row.not_before == NOON + timedelta(seconds=BASE + 2 * BASE)
    clock[0] = row.not_before
    await worker.send_due()
    row = await store.message(queued["id"])
    assert (row.status, row.attempts, row.provider_message_id) == ("sent", 3, f"p-{queued['id']}")
    # Every attempt carried the same out-id: the provider can match a retry to the first.
    assert {c.out_id for c in provider.calls} == {queued["id"]}
    assert [c.attempt for c in provider.calls] == [0, 1, 2]


async def test_an_invalid_number_fails_for_good(store: Store) -> None:
    queued = await store.queue(template_id=await store.template(Category.CARE))
    provider = ScriptedProvider(
        answers=[SendRejected(reason="invalid number", code="isv.MOBILE_NUMBER_ILLEGAL")]
    )
    clock = [NOON]
    worker = store.sender(provider, clock)
    await worker.send_due()
    row = await store.message(queued["id"])
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.reason.startswith("isv.MOBILE_NUMBER_ILLEGAL")
    clock[0] = NOON + timedelta(days=1)
    assert await worker.send_due() == 0
    assert len(provider.calls) == 1


async def test_a_worker_killed_mid_batch_sends_nothing_twice(store: Store) -> None:
    template = await store.template(Category.CARE)
    ids = [(await store.queue(template_id=template))["id"] for _ in range(5)]
    provider = ScriptedProvider(hang_on_call=3)
    clock = [NOON]
    first = store.sender(provider, clock)
    batch = asyncio.create_task(first.send_due())
    await asyncio.wait_for(provider.hanging.wait(), timeout=30)
    batch.cancel()  # killed while the provider holds the third message
    with pytest.raises(asyncio.CancelledError):
        await batch
    assert len(provider.accepted) == 2
    provider.hang_on_call = None
    second = store.sender(provider, clock)
    # The dead worker's lease still holds its batch.
    assert await second.send_due() == 0
    clock[0] = NOON + timedelta(seconds=SENDER.lease_seconds)
    assert await second.send_due() == 3
    assert sorted(provider.accepted) == sorted(ids)
    for message_id in ids:
        assert (await store.message(message_id)).status == "sent"


async def test_opt_out_by_reply_stops_queued_and_new_messages_and_resubscribe_restores(
    store: Store,
) -> None:
    template = await store.template(Category.CARE)
    transactional = await store.template(Category.TRANSACTIONAL)
    number = f"137{next(_phones):08d}"
    customer = await store.customer(phone=number)
    first = await store.queue(customer_id=customer, template_id=template)
    waiting = await store.queue(customer_id=customer, template_id=template)
    provider = ScriptedProvider()
    clock = [NOON]
    worker = store.sender(provider, clock)
    await store.execute(
        "UPDATE sms_message SET not_before = :later WHERE id = :id",
        later=NOON + timedelta(hours=1),
        id=waiting["id"],
    )
    await worker.send_due()
    signature = (await store.message(first["id"])).signature
    assert signature == "Health store"

    async def reply(words: str) -> str | None:
        async with store.sessions() as session:
            action = await record_inbound(
                session,
                signature=signature,
                phone_hash_or_customer=phone_hash(f"+86 {number}", secret=DEV_PRINCIPAL_SECRET),
                text=words,
                received_at=NOON + timedelta(minutes=5),
                opt_out_keywords=["TD", "T", "N", "退订"],
                resubscribe_keywords=["DY"],
            )
            await session.commit()
            return action

    assert await reply("谢谢") is None
    assert await reply(" td ") == "opted_out"
    with pytest.raises(NotSendable) as refused:
        await store.queue(customer_id=customer, template_id=template)
    assert refused.value.reason == "opted_out_by_reply"
    # A transactional message still goes; the one queued before the reply does not.
    await store.queue(customer_id=customer, template_id=transactional)
    clock[0] = NOON + timedelta(hours=1)
    await worker.send_due()
    row = await store.message(waiting["id"])
    assert (row.status, row.reason) == ("opted_out", "opted_out_by_reply")
    assert waiting["id"] not in provider.accepted
    assert await reply("DY") == "resubscribed"
    again = await store.queue(customer_id=customer, template_id=template)
    assert again["status"] == "queued"


async def test_consent_withdrawn_in_the_file_stops_a_queued_message(store: Store) -> None:
    customer = await store.customer()
    queued = await store.queue(
        customer_id=customer, template_id=await store.template(Category.CARE)
    )
    await store.execute(
        "UPDATE customer_file SET sms_consent_granted = false, sms_consent_at = :at "
        "WHERE customer_id = :id",
        at=NOON,
        id=customer,
    )
    provider = ScriptedProvider()
    await store.sender(provider, [NOON]).send_due()
    row = await store.message(queued["id"])
    assert (row.status, row.reason) == ("opted_out", "consent_withdrawn")
    assert provider.calls == []


async def test_the_frequency_cap_counts_all_but_transactional_messages(store: Store) -> None:
    care = await store.template(Category.CARE)
    notice = await store.template(Category.TRANSACTIONAL)
    customer = await store.customer()
    rules = dataclasses.replace(RULES, cap_messages=2)

    async def queue_capped(template_id: str) -> None:
        await store.queue(
            customer_id=customer, template_id=template_id, rules=rules, now=datetime.now(UTC)
        )

    await queue_capped(care)
    await queue_capped(notice)
    await queue_capped(care)
    with pytest.raises(NotSendable) as refused:
        await queue_capped(care)
    assert refused.value.reason == "frequency_cap"
    await queue_capped(notice)
