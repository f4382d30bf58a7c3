from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import PRINCIPAL_HEADER
from crm_libs.problems import ProblemError, problem_responses
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.idempotency import IdempotentWrite, idempotent
from engagement_service.messages import service
from engagement_service.messages.categories import CARRIER_CLASS, Category
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.messages.models import MessageTemplate, SmsMessage
from engagement_service.messages.rendering import placeholders_in
from engagement_service.messages.schemas import (
    MessageAccepted,
    MessageCreate,
    MessagePublic,
    MessageStatus,
    TemplateCreate,
    TemplatePublic,
)
from engagement_service.peer_client import PeerUnavailable, pooled_client

router = APIRouter(tags=["messages"])


def _template(template: MessageTemplate) -> TemplatePublic:
    category = Category(template.category)
    return TemplatePublic(
        id=template.id,
        store_id=template.store_id,
        category=category,
        carrier_class=CARRIER_CLASS[category],
        name=template.name,
        body=template.body,
        placeholders=sorted(set(placeholders_in(template.body))),
        created_at=template.created_at,
    )


def _message(message: SmsMessage) -> MessagePublic:
    return MessagePublic.model_validate(message, from_attributes=True)


@router.post(
    "/templates",
    response_model=TemplatePublic,
    status_code=201,
    summary="Save a care-message template",
    description="Placeholders: {customer_name}, {form_of_address}, {staff_name}, {store}; an "
    "unknown one is a 422 naming it. A word the category forbids (DOMAIN.md §5: no promotion in "
    "a care message, no new products in a season message, no medical claims) is a 422 naming "
    "the words. Head office may save a brand template (no store) every store uses.",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def create_template(
    template_in: TemplateCreate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> TemplatePublic:
    template = await service.create_template(
        session,
        principal=principal,
        template_in=template_in,
        forbidden_overrides=settings.sms_forbidden_words,
    )
    return _template(template)


@router.get(
    "/templates",
    response_model=Page[TemplatePublic],
    summary="The templates the caller's store may use: its own and the brand's",
    responses=problem_responses(400, 401, 422),
)
async def list_templates(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    category: Category | None = None,
) -> Page[TemplatePublic]:
    rows = await service.list_templates(session, principal=principal, page=page, category=category)
    return page_of([_template(t) for t in rows], page)


@router.post(
    "/messages",
    response_model=MessageAccepted,
    status_code=202,
    summary="Send a care message to a customer",
    description="Renders the template for the customer and queues it; the worker sends it "
    "through the SMS provider. In the store's quiet hours (21:00-08:00) it is "
    "`held_quiet_hours` until 08:00. Honours `Idempotency-Key`. 409 with the reason when the "
    "customer opted out (consent withdrawn, or a TD reply), a promotional message goes to a "
    "customer who did not opt in, or the frequency cap is reached; 422 naming the forbidden "
    "words the rendered text holds; 503 when the customer service cannot be asked.",
    responses=problem_responses(400, 401, 403, 404, 409, 422, 503),
)
async def send_message(
    message_in: MessageCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("messages"))],
) -> Response:
    directory = CustomerDirectory(
        pooled_client(request.app), request.headers.get(PRINCIPAL_HEADER, "")
    )
    rules = service.SendingRules(
        forbidden_overrides=settings.sms_forbidden_words,
        unsubscribe_suffix=settings.sms_unsubscribe_suffix,
        cap_messages=settings.sms_frequency_cap_messages,
        cap_days=settings.sms_frequency_cap_days,
        signature=settings.sms_signature,
        default_timezone=settings.default_timezone,
    )

    async def write() -> MessageAccepted:
        try:
            message = await service.queue_message(
                session,
                principal=principal,
                message_in=message_in,
                directory=directory,
                rules=rules,
                now=datetime.now(UTC),
            )
        except PeerUnavailable as exc:
            raise ProblemError(
                "The customer service did not answer; try again",
                status=503,
                title="Service unavailable",
            ) from exc
        return MessageAccepted(id=message.id, status=message.status)  # type: ignore[arg-type]

    return await once.respond(session, message_in, write, status_code=202)


@router.get(
    "/messages",
    response_model=Page[MessagePublic],
    summary="Messages of the caller's store, by customer, campaign or status",
    responses=problem_responses(400, 401, 422),
)
async def list_messages(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    customer_id: Annotated[str | None, Query(max_length=64)] = None,
    campaign_id: Annotated[str | None, Query(max_length=64)] = None,
    status: MessageStatus | None = None,
) -> Page[MessagePublic]:
    rows = await service.list_messages(
        session,
        principal=principal,
        page=page,
        customer_id=customer_id,
        campaign_id=campaign_id,
        status=status,
    )
    return page_of([_message(m) for m in rows], page)
