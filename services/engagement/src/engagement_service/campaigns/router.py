from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.principal import PRINCIPAL_HEADER
from crm_libs.problems import InvalidField, ProblemError, problem_responses
from engagement_service.campaigns import service
from engagement_service.campaigns.job import rules_of
from engagement_service.campaigns.kinds import Kind
from engagement_service.campaigns.schemas import (
    CampaignCreate,
    CampaignPreview,
    CampaignPublic,
    CampaignStatus,
    PreviewRequest,
)
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep, SettingsDep
from engagement_service.idempotency import IdempotentWrite, idempotent
from engagement_service.member_events import peers
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.peer_client import PeerUnavailable, Refused, pooled_client

router = APIRouter(tags=["campaigns"])

_UNAVAILABLE = "A service the campaign reads from did not answer; try again"


@router.post(
    "/campaigns",
    response_model=CampaignPublic,
    status_code=201,
    summary="Create a campaign (a draft to preview, then send)",
    description="`kind` chooses the customers: `birthday` (`date_from`, `date_to`: birthdays, "
    "solar or lunar, falling in those days), `festival` or `season` (`occasion`: its next date "
    "from the lunar calendar; every customer of the store), `miss_you` (`unseen_days`: no "
    "purchase and no visit in that many days), `manual` (`segment`: scoring's filters). The "
    "template's category must fit the kind (birthday, holiday, season, miss_you; manual: care "
    "or promotional): a 422 names it otherwise.",
    responses=problem_responses(400, 401, 403, 404, 422),
)
async def create_campaign(
    campaign_in: CampaignCreate,  # type: ignore[valid-type]
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> CampaignPublic:
    campaign = await service.create_campaign(
        session,
        principal=principal,
        campaign_in=campaign_in,
        default_timezone=settings.default_timezone,
    )
    return await service.public(session, campaign)


@router.get(
    "/campaigns",
    response_model=Page[CampaignPublic],
    summary="The store's campaigns, newest first, by status or kind",
    description="Each as `GET /campaigns/{campaign_id}` shows it, with its progress and its "
    "messages' counts by status. Head office names a store with `store_id` (or reads every "
    "store's); another store's is a 404, as an unknown one.",
    responses=problem_responses(400, 401, 404, 422),
)
async def list_campaigns(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    status: CampaignStatus | None = None,
    kind: Kind | None = None,
) -> Page[CampaignPublic]:
    rows = await service.list_campaigns(
        session,
        principal=principal,
        page=page,
        store_id=store_id,
        status=status,
        kind=kind.value if kind else None,
    )
    return page_of(await service.public_page(session, rows), page)


@router.get(
    "/campaigns/{campaign_id}",
    response_model=CampaignPublic,
    summary="A campaign with its progress and its messages' counts by status",
    responses=problem_responses(400, 401, 404),
)
async def get_campaign(
    campaign_id: str, session: SessionDep, principal: PrincipalDep
) -> CampaignPublic:
    campaign = await service.get_campaign(session, principal=principal, campaign_id=campaign_id)
    return await service.public(session, campaign)


@router.post(
    "/campaigns/{campaign_id}/preview",
    response_model=CampaignPreview,
    summary="Who the campaign would reach, a page of its texts, and who is left out and why",
    description="Nothing is queued. Every recipient is checked as the send would check them "
    "(opted out, no consent for an advert, the frequency cap, no phone number); `limit` "
    "rendered texts (and exclusions) from `cursor` on, in customer order.",
    responses=problem_responses(400, 401, 403, 404, 422, 503),
)
async def preview_campaign(
    campaign_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    preview_in: PreviewRequest | None = None,
) -> CampaignPreview:
    campaign = await service.get_campaign(session, principal=principal, campaign_id=campaign_id)
    token = request.headers.get(PRINCIPAL_HEADER, "")
    directory = CustomerDirectory(pooled_client(request.app), token)
    try:
        members = None
        if campaign.segment is not None:
            members = sorted(
                set(
                    await peers.segment_members(
                        request.app,
                        token=token,
                        store_id=campaign.store_id,
                        filters=dict(campaign.segment),
                    )
                )
            )
        return await service.preview(
            session,
            campaign,
            request=preview_in or PreviewRequest(),
            directory=directory,
            rules=rules_of(settings),
            members=members,
            now=datetime.now(UTC),
        )
    except PeerUnavailable as exc:
        raise ProblemError(_UNAVAILABLE, status=503, title="Service unavailable") from exc
    except Refused as refused:
        raise InvalidField("segment", refused.detail) from refused


@router.post(
    "/campaigns/{campaign_id}/send",
    response_model=CampaignPublic,
    status_code=202,
    summary="Send the campaign: rendered and queued by a job, its progress on GET",
    description="Answers at once (202); the send job renders and queues every recipient's "
    "message with the rules of a single message (opt-out, an advert's consent and 回TD退订, "
    "quiet hours held, the frequency cap, miss_you in the owner's voice). Sending a campaign "
    "again queues nothing twice; honours `Idempotency-Key`.",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)
async def send_campaign(
    campaign_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("campaigns/{campaign_id}/send"))],
) -> Response:
    async def write() -> CampaignPublic:
        campaign = await service.start_send(
            session, principal=principal, campaign_id=campaign_id, now=datetime.now(UTC)
        )
        return await service.public(session, campaign)

    return await once.respond(session, _NoBody(), write, status_code=202)


class _NoBody(BaseModel):
    """The send takes no body: the key alone names the write."""
