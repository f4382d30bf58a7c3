"""Campaigns created, read with their counts, previewed, and handed to the send job."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField, NotFound
from engagement_service.campaigns.audience import next_chunk
from engagement_service.campaigns.evaluation import Voice, counted, evaluate
from engagement_service.campaigns.kinds import CATEGORIES, Kind, occasion_on
from engagement_service.campaigns.models import Campaign, CampaignCount
from engagement_service.campaigns.schemas import (
    AnyCampaign,
    BirthdayCampaign,
    CampaignCounts,
    CampaignPreview,
    CampaignPublic,
    FestivalCampaign,
    ManualCampaign,
    MissYouCampaign,
    PreviewExclusion,
    PreviewMessage,
    PreviewRequest,
    SeasonCampaign,
)
from engagement_service.care.special_days import Occasion
from engagement_service.messages.categories import Category
from engagement_service.messages.directory import CustomerDirectory
from engagement_service.messages.models import MessageTemplate
from engagement_service.messages.service import SendingRules, get_template
from engagement_service.peer_client import PeerUnavailable

# The send job LISTENs here: a campaign handed over is started as soon as its commit lands.
SEND_CHANNEL = "crm_campaign_send"
# Files scanned per chunk: one transaction, one COPY, one or two requests for names.
CHUNK = 1000

_STATUS_COUNTS = {
    "queued": "queued",
    "held_quiet_hours": "held",
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "opted_out": "opted_out",
}


async def store_today(session: AsyncSession, *, store_id: str, default_timezone: str) -> date:
    """The store's day now: its files' time zone (the store's, copied onto each file)."""
    zone = (
        await session.execute(
            text(
                "SELECT timezone FROM customer_file WHERE store_id = :s AND timezone IS NOT NULL "
                "LIMIT 1"
            ),
            {"s": store_id},
        )
    ).scalar_one_or_none()
    return datetime.now(UTC).astimezone(ZoneInfo(zone or default_timezone)).date()


async def create_campaign(
    session: AsyncSession,
    *,
    principal: Principal,
    campaign_in: AnyCampaign,
    default_timezone: str,
) -> Campaign:
    """A draft campaign; 422 naming the template's category when it does not fit the kind."""
    store_id = campaign_in.store_id or principal.store_id
    if store_id is None:
        raise InvalidField("store_id", "head office names the store")
    principal.require_store(store_id, what="store")
    template = await get_template(session, principal=principal, template_id=campaign_in.template_id)
    if template.store_id is not None and template.store_id != store_id:
        raise InvalidField("template_id", "the template is another store's")
    kind = Kind(campaign_in.kind)
    category = Category(template.category)
    if category not in CATEGORIES[kind]:
        fits = " or ".join(sorted(c.value for c in CATEGORIES[kind]))
        raise InvalidField(
            "template_id",
            f"a {kind} campaign sends a {fits} template; this one is {category.value}",
        )
    today = await store_today(session, store_id=store_id, default_timezone=default_timezone)
    occasion = getattr(campaign_in, "occasion", None)
    on = occasion_on(Occasion(occasion), on_or_after=today) if occasion else None
    date_from = getattr(campaign_in, "date_from", None)
    segment = getattr(campaign_in, "segment", None)
    campaign = Campaign(
        store_id=store_id,
        kind=kind.value,
        name=campaign_in.name or _default_name(campaign_in, on),
        template_id=template.id,
        date_from=date_from,
        date_to=getattr(campaign_in, "date_to", None) or date_from,
        occasion=occasion,
        occasion_on=on,
        unseen_days=getattr(campaign_in, "unseen_days", None),
        segment=segment.filters() if segment else None,
        staff_id=campaign_in.staff_id or principal.staff_id,
        send_at=campaign_in.send_at,
        created_by=principal.subject,
    )
    session.add(campaign)
    await session.flush()
    return campaign


def _default_name(campaign_in: AnyCampaign, on: date | None) -> str:
    match campaign_in:
        case BirthdayCampaign():
            return f"birthday {campaign_in.date_from}"
        case FestivalCampaign() | SeasonCampaign():
            return f"{campaign_in.occasion} {on}"
        case MissYouCampaign():
            return f"miss_you {campaign_in.unseen_days} days"
        case ManualCampaign():
            return "manual " + ", ".join(
                f"{k}={v}" for k, v in campaign_in.segment.filters().items()
            )


async def get_campaign(
    session: AsyncSession, *, principal: Principal, campaign_id: str, for_update: bool = False
) -> Campaign:
    query = select(Campaign).where(col(Campaign.id) == campaign_id)
    if for_update:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("No such campaign")
    principal.require_store(found.store_id, what="campaign")
    return found


async def list_campaigns(
    session: AsyncSession,
    *,
    principal: Principal,
    page: PageParams,
    store_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
) -> list[Campaign]:
    """A page of a store's campaigns, newest first (head office: any store's, or every store's).

    Ids are time-ordered, so newest first is the id descending and the cursor the last id shown:
    the store's page reads ``ix_campaign_store`` backwards."""
    if store_id is not None:
        principal.require_store(store_id, what="store")
    scope = principal.store_scope() or store_id
    query = select(Campaign).order_by(col(Campaign.id).desc()).limit(page.limit + 1)
    if page.after:
        query = query.where(col(Campaign.id) < page.after)
    if scope is not None:
        query = query.where(col(Campaign.store_id) == scope)
    if status is not None:
        query = query.where(col(Campaign.status) == status)
    if kind is not None:
        query = query.where(col(Campaign.kind) == kind)
    return list((await session.execute(query)).scalars())


async def public(session: AsyncSession, campaign: Campaign) -> CampaignPublic:
    [shown] = await public_page(session, [campaign])
    return shown


async def public_page(session: AsyncSession, campaigns: list[Campaign]) -> list[CampaignPublic]:
    """The campaigns with their counts by status, read for the whole page in one statement."""
    if not campaigns:
        return []
    rows = await session.execute(
        select(
            col(CampaignCount.campaign_id), col(CampaignCount.status), col(CampaignCount.n)
        ).where(col(CampaignCount.campaign_id).in_([c.id for c in campaigns]))
    )
    counts: dict[str, dict[str, int]] = {}
    for campaign_id, status, n in rows:
        if status in _STATUS_COUNTS:
            counts.setdefault(campaign_id, {})[_STATUS_COUNTS[status]] = int(n)
    return [
        CampaignPublic.model_validate(
            {**c.model_dump(), "counts": CampaignCounts(**counts.get(c.id, {}))}
        )
        for c in campaigns
    ]


async def voice_of(
    session: AsyncSession,
    campaign: Campaign,
    *,
    directory: CustomerDirectory,
    rules: SendingRules,
    now: datetime,
) -> Voice:
    template = await session.get(MessageTemplate, campaign.template_id)
    if template is None:
        raise NotFound("No such template")
    store_name = await directory.store_name(campaign.store_id)
    signature = rules.signature or store_name
    if not signature:
        raise PeerUnavailable("the store's name could not be read")
    return Voice(
        store_id=campaign.store_id,
        category=Category(template.category),
        body=template.body,
        signature=signature,
        store_name=store_name or "",
        staff_id=campaign.staff_id,
        due=max(now, campaign.send_at) if campaign.send_at else now,
    )


async def preview(
    session: AsyncSession,
    campaign: Campaign,
    *,
    request: PreviewRequest,
    directory: CustomerDirectory,
    rules: SendingRules,
    members: list[str] | None,
    now: datetime,
) -> CampaignPreview:
    """Every recipient counted and checked; a page of texts and exclusions; nothing queued."""
    voice = await voice_of(session, campaign, directory=directory, rules=rules, now=now)
    today = await store_today(
        session, store_id=campaign.store_id, default_timezone=rules.default_timezone
    )
    recipients, would_queue = 0, 0
    excluded: dict[str, int] = {}
    page: list[tuple[str, PreviewMessage | PreviewExclusion]] = []
    more = False
    after: str | None = None
    while True:
        chunk = await next_chunk(
            session,
            campaign,
            after=after,
            limit=CHUNK,
            today=today,
            default_timezone=rules.default_timezone,
            members=members,
        )
        if chunk.last is None:
            break
        after = chunk.last
        found = await evaluate(
            session, voice, chunk.recipients, directory=directory, rules=rules, now=now, lock=False
        )
        recipients += len(chunk.recipients)
        would_queue += len(found.messages)
        for reason, n in counted(found.excluded).items():
            excluded[reason] = excluded.get(reason, 0) + n
        entries: list[tuple[str, PreviewMessage | PreviewExclusion]] = [
            (m.customer_id, PreviewMessage(customer_id=m.customer_id, text=m.body, status=m.status))  # type: ignore[arg-type]
            for m in found.messages
        ] + [(c, PreviewExclusion(customer_id=c, reason=r)) for c, r in found.excluded]
        for customer_id, entry in sorted(entries, key=lambda e: e[0]):
            if request.cursor is not None and customer_id <= request.cursor:
                continue
            if len(page) < request.limit:
                page.append((customer_id, entry))
            else:
                more = True
    return CampaignPreview(
        recipients=recipients,
        would_queue=would_queue,
        excluded=excluded,
        messages=[e for _, e in page if isinstance(e, PreviewMessage)],
        exclusions=[e for _, e in page if isinstance(e, PreviewExclusion)],
        next_cursor=page[-1][0] if more and page else None,
    )


async def start_send(
    session: AsyncSession, *, principal: Principal, campaign_id: str, now: datetime
) -> Campaign:
    """Hand a draft campaign to the send job, once: a campaign already handed over (or sent)
    is answered as it stands and nothing is queued twice."""
    campaign = await get_campaign(
        session, principal=principal, campaign_id=campaign_id, for_update=True
    )
    if campaign.status != "draft":
        return campaign
    campaign.status = "sending"
    campaign.started_at = now
    campaign.sent_by = principal.model_dump(mode="json")
    session.add(campaign)
    await session.flush()
    await session.execute(text(f"NOTIFY {SEND_CHANNEL}"))
    return campaign
