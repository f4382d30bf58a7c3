"""Templates saved and listed; a message rendered and queued in the caller's transaction."""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, InvalidField, NotFound
from engagement_service.customers.models import CustomerFile
from engagement_service.messages.categories import CARRIER_CLASS, Category, forbidden_words
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.messages.models import MessageTemplate, SmsMessage
from engagement_service.messages.opt_outs import REASONS, consent_of, refusal
from engagement_service.messages.quiet_hours import is_quiet, quiet_ends_at
from engagement_service.messages.rendering import (
    check_words,
    form_of_address,
    placeholders_in,
    render,
    with_unsubscribe,
)
from engagement_service.messages.schemas import MessageCreate, TemplateCreate
from engagement_service.peer_client import PeerUnavailable

log = logging.getLogger(__name__)

# The worker LISTENs here: a queued message is sent as soon as its transaction commits.
QUEUED_CHANNEL = "crm_sms_queued"


class NotSendable(Conflict):
    """409: the customer may not be sent this message now; ``reason`` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(
            f"{detail} (reason: {reason})",
            errors=[{"field": "customer_id", "message": reason}],
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SendingRules:
    """The brand's settings a message is queued under (Settings.sms_*)."""

    forbidden_overrides: dict[str, list[str]]
    unsubscribe_suffix: str
    cap_messages: int
    cap_days: int
    signature: str | None
    default_timezone: str


async def create_template(
    session: AsyncSession,
    *,
    principal: Principal,
    template_in: TemplateCreate,
    forbidden_overrides: dict[str, list[str]],
) -> MessageTemplate:
    """Save a template: its placeholders known and none of its category's forbidden words."""
    store_id = template_in.store_id
    if store_id is None and not principal.sees_all_stores:
        store_id = principal.store_id
    elif store_id is not None:
        principal.require_store(store_id, what="store")
    placeholders_in(template_in.body)
    category = template_in.category
    check_words(
        template_in.name + "\n" + template_in.body,
        forbidden_words(category, forbidden_overrides),
        field="body",
        category=category.value,
    )
    template = MessageTemplate(
        store_id=store_id,
        category=category.value,
        name=template_in.name,
        body=template_in.body,
        created_by=principal.subject,
    )
    session.add(template)
    await session.flush()
    return template


def _visible(principal: Principal):  # type: ignore[no-untyped-def]
    scope = principal.store_scope()
    if scope is None:
        return True
    return or_(col(MessageTemplate.store_id).is_(None), col(MessageTemplate.store_id) == scope)


async def list_templates(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    category: Category | None = None,
) -> list[MessageTemplate]:
    """A page of the templates the caller's store may use (its own and the brand's)."""
    query = keyset(select(MessageTemplate), col(MessageTemplate.id), page).where(
        _visible(principal)
    )
    if category is not None:
        query = query.where(col(MessageTemplate.category) == category.value)
    return list((await session.execute(query)).scalars())


async def get_template(
    session: AsyncSession, *, principal: Principal, template_id: str
) -> MessageTemplate:
    found = (
        await session.execute(
            select(MessageTemplate).where(
                col(MessageTemplate.id) == template_id, _visible(principal)
            )
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound("No such template")
    return found


_LOCK_CUSTOMER = text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))")


async def _recent_count(
    session: AsyncSession, *, store_id: str, customer_id: str, since: datetime
) -> int:
    query = select(func.count()).where(
        col(SmsMessage.store_id) == store_id,
        col(SmsMessage.customer_id) == customer_id,
        col(SmsMessage.category) != Category.TRANSACTIONAL.value,
        col(SmsMessage.status).not_in(("failed", "opted_out")),
        col(SmsMessage.created_at) > since,
    )
    return int((await session.execute(query)).scalar_one())


async def queue_message(
    session: AsyncSession,
    *,
    principal: Principal,
    message_in: MessageCreate,
    directory: CustomerDirectory,
    rules: SendingRules,
    now: datetime,
    campaign_id: str | None = None,
) -> SmsMessage:
    """Render the template for the customer and queue it (held until 08:00 in quiet hours).

    404 for a template or customer the caller cannot see; 409 (with the reason) when the file is
    not active, the customer opted out or gave no consent to adverts, or the frequency cap is
    reached; 422 naming the forbidden words the rendered text holds.
    """
    template = await get_template(session, principal=principal, template_id=message_in.template_id)
    file = await session.get(CustomerFile, message_in.customer_id)
    if file is None:
        raise NotFound("No such customer")
    principal.require_store(file.store_id, what="customer")
    if template.store_id is not None and template.store_id != file.store_id:
        raise InvalidField("template_id", "the template is another store's")
    if file.status != "active":
        raise Conflict(f"The customer's file is {file.status}")
    category = Category(template.category)

    # The voice: miss_you speaks as the staff member closest to the customer, their owner.
    staff_id = message_in.staff_id or principal.staff_id
    if category is Category.MISS_YOU and file.owner_staff_id:
        staff_id = file.owner_staff_id
    used = set(placeholders_in(template.body))
    if "staff_name" in used and not staff_id:
        raise InvalidField("staff_id", "the template speaks as a staff member: name one")

    recipient = await directory.recipient(file.customer_id)
    if recipient is None:
        raise NotFound("No such customer")
    store_name = await directory.store_name(file.store_id)
    signature = rules.signature or store_name
    if not signature:
        raise PeerUnavailable("the store's name could not be read")
    staff_name = (await directory.staff_name(staff_id) if staff_id else None) or ""
    if "staff_name" in used and not staff_name:
        raise InvalidField("staff_id", "no such staff member in the customer's store")
    values = {
        "customer_name": recipient.name or "",
        "form_of_address": form_of_address(recipient.name, recipient.gender),
        "staff_name": staff_name,
        "store": store_name or "",
    }
    body = render(template.body, values)
    check_words(
        body,
        forbidden_words(category, rules.forbidden_overrides),
        field="template_id",
        category=category.value,
    )
    if category is Category.PROMOTIONAL:
        body = with_unsubscribe(body, rules.unsubscribe_suffix)

    # One customer's sends one at a time: two at once must not both pass the cap.
    await session.execute(_LOCK_CUSTOMER, {"lock": f"sms\n{file.customer_id}"})
    reason = refusal(
        category, await consent_of(session, customer_id=file.customer_id, signature=signature)
    )
    if reason is not None:
        raise NotSendable(reason, REASONS[reason])
    if category is not Category.TRANSACTIONAL:
        since = now - timedelta(days=rules.cap_days)
        sent = await _recent_count(
            session, store_id=file.store_id, customer_id=file.customer_id, since=since
        )
        if sent >= rules.cap_messages:
            raise NotSendable(
                "frequency_cap",
                f"The customer was sent {sent} messages in the last {rules.cap_days} days, "
                f"the most allowed",
            )

    zone = ZoneInfo(file.timezone or rules.default_timezone)
    held = is_quiet(now, zone)
    message = SmsMessage(
        store_id=file.store_id,
        customer_id=file.customer_id,
        template_id=template.id,
        campaign_id=campaign_id,
        category=category.value,
        carrier_class=CARRIER_CLASS[category],
        staff_id=staff_id,
        signature=signature,
        body=body,
        parameters={k: v for k, v in values.items() if k in used},
        status="held_quiet_hours" if held else "queued",
        not_before=quiet_ends_at(now, zone) if held else now,
        created_by=principal.subject,
    )
    session.add(message)
    await session.flush()
    await session.execute(text(f"NOTIFY {QUEUED_CHANNEL}"))
    return message


async def list_messages(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    customer_id: str | None = None,
    campaign_id: str | None = None,
    status: str | None = None,
) -> list[SmsMessage]:
    """A page of the caller's store's messages, oldest first."""
    query = keyset(select(SmsMessage), col(SmsMessage.id), page)
    if (scope := principal.store_scope()) is not None:
        query = query.where(col(SmsMessage.store_id) == scope)
    if customer_id:
        query = query.where(col(SmsMessage.customer_id) == customer_id)
    if campaign_id:
        query = query.where(col(SmsMessage.campaign_id) == campaign_id)
    if status:
        query = query.where(col(SmsMessage.status) == status)
    return list((await session.execute(query)).scalars())
