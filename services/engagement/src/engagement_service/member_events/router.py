from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.pagination import Page, PageParams, page_of, page_params
from crm_libs.problems import InvalidField, problem_responses
from engagement_service.deps import PrincipalDep, ReadSessionDep, SessionDep
from engagement_service.idempotency import IdempotentWrite, idempotent
from engagement_service.member_events import checkins, invitations, peers, service
from engagement_service.member_events.models import EventGuest, EventInvitation, StoreEvent
from engagement_service.member_events.schemas import (
    CheckInCreate,
    CheckInPublic,
    EventCreate,
    EventDetail,
    EventPublic,
    GuestPublic,
    InvitationPublic,
    InvitationsCreate,
    InvitationsResult,
    Reply,
    ReplyUpdate,
)
from engagement_service.peer_client import PeerUnavailable, caller_token

router = APIRouter(tags=["member events"])


def _public(event: StoreEvent) -> EventPublic:
    return EventPublic.model_validate(event, from_attributes=True)


async def _detail(session: AsyncSession, event: StoreEvent) -> EventDetail:
    counts = await service.counts(session, event=event)
    return EventDetail(**_public(event).model_dump(), counts=counts)


def _invitation(invitation: EventInvitation, *, checked_in: bool) -> InvitationPublic:
    shown = InvitationPublic.model_validate(invitation, from_attributes=True)
    shown.checked_in = checked_in
    return shown


@router.post(
    "/events",
    response_model=EventDetail,
    status_code=201,
    summary="Schedule a member event",
    description="Announced as `event.scheduled` on crm.engagement.v1 (scoring names the "
    "store's next event on a score). An unknown store is a 422 (head office), another store's "
    "a 404.",
    responses=problem_responses(400, 401, 404, 422, 503),
)
async def schedule_event(
    event_in: EventCreate, request: Request, session: SessionDep, principal: PrincipalDep
) -> EventDetail:
    principal.require_store(event_in.store_id, what="store")
    if principal.store_scope() is None:
        # Head office names any store: the customer service knows which exist.
        try:
            known = await peers.store_exists(
                request.app, token=caller_token(request), store_id=event_in.store_id
            )
        except PeerUnavailable as exc:
            raise invitations.unavailable("The customer service") from exc
        if not known:
            raise InvalidField("store_id", "unknown store")
    event = await service.schedule(
        session, principal=principal, event_in=event_in, now=datetime.now(UTC)
    )
    return await _detail(session, event)


@router.get(
    "/events",
    response_model=Page[EventPublic],
    summary="A store's member events, in pages",
    responses=problem_responses(400, 401, 404, 422),
)
async def list_events(
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    store_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["scheduled", "cancelled"] | None = None,
) -> Page[EventPublic]:
    rows = await service.list_events(
        session, principal=principal, page=page, store_id=store_id, status=status
    )
    return page_of([_public(e) for e in rows], page)


@router.get(
    "/events/{event_id}",
    response_model=EventDetail,
    summary="A member event with its counts",
    description="Counts: invited, replies (yes, no, maybe), checked in (walk-ins among them), "
    "guests, and places left (capacity less the customers and guests checked in).",
    responses=problem_responses(401, 404),
)
async def get_event(event_id: str, session: ReadSessionDep, principal: PrincipalDep) -> EventDetail:
    event = await service.get(session, principal=principal, event_id=event_id)
    return await _detail(session, event)


@router.delete(
    "/events/{event_id}",
    response_model=EventDetail,
    summary="Cancel a member event",
    description="For good: announced as `event.cancelled`; it takes no more invitations, "
    "replies or check-ins, and no purchase names it. Cancelling again changes nothing.",
    responses=problem_responses(401, 404),
)
async def cancel_event(event_id: str, session: SessionDep, principal: PrincipalDep) -> EventDetail:
    event = await service.cancel(
        session, principal=principal, event_id=event_id, now=datetime.now(UTC)
    )
    return await _detail(session, event)


@router.post(
    "/events/{event_id}/invitations",
    response_model=InvitationsResult,
    summary="Invite customers, one by one or a segment",
    description="`customer_ids` (active files of the event's store; unknown ones are named in "
    "a 422) or `segment` (scoring's filters: value_tier, lifecycle, ladder, loyalty, "
    "rfm_segment, combined). A customer already invited stays as they were.",
    responses=problem_responses(400, 401, 404, 409, 422, 503),
)
async def invite(
    event_id: str,
    invitations_in: InvitationsCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> InvitationsResult:
    event = await service.get_open(session, principal=principal, event_id=event_id)
    return await invitations.invite(
        session,
        app=request.app,
        token=caller_token(request),
        principal=principal,
        event=event,
        invitations_in=invitations_in,
    )


@router.get(
    "/events/{event_id}/invitations",
    response_model=Page[InvitationPublic],
    summary="The event's invitations and replies, in pages",
    responses=problem_responses(400, 401, 404, 422),
)
async def list_invitations(
    event_id: str,
    session: ReadSessionDep,
    principal: PrincipalDep,
    page: Annotated[PageParams, Depends(page_params)],
    reply: Reply | None = None,
) -> Page[InvitationPublic]:
    event = await service.get(session, principal=principal, event_id=event_id)
    rows = await invitations.list_invitations(session, event=event, page=page, reply=reply)
    inside = await invitations.checked_in(
        session, event_id=event.id, customer_ids=[i.customer_id for i in rows]
    )
    return page_of(
        [_invitation(i, checked_in=i.customer_id in inside) for i in rows],
        page,
        id_of="customer_id",
    )


@router.patch(
    "/events/{event_id}/invitations/{customer_id}",
    response_model=InvitationPublic,
    summary="Record an invited customer's reply",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def record_reply(
    event_id: str,
    customer_id: str,
    reply_in: ReplyUpdate,
    session: SessionDep,
    principal: PrincipalDep,
) -> InvitationPublic:
    event = await service.get_open(session, principal=principal, event_id=event_id)
    invitation = await invitations.record_reply(
        session, event=event, customer_id=customer_id, reply=reply_in.reply, now=datetime.now(UTC)
    )
    inside = await invitations.checked_in(session, event_id=event.id, customer_ids=[customer_id])
    return _invitation(invitation, checked_in=bool(inside))


def _guest(guest: EventGuest) -> GuestPublic:
    return GuestPublic(id=guest.id, customer_id=guest.guest_customer_id, file=guest.file)  # type: ignore[arg-type]


@router.post(
    "/events/{event_id}/checkins",
    response_model=CheckInPublic,
    status_code=201,
    summary="Check a customer in, with the guests they brought",
    description="Once per customer (a second check-in is a 409); customers and guests count "
    "against the capacity (over it, a 409 naming it); an uninvited customer is a 409 unless "
    "`walk_in` is true (then recorded as a walk-in). A guest whose phone is a file of the store "
    "is linked to it; another becomes a prospect file referred by the customer (`file`: "
    "`linked`, `created`, or `pending` while the customer service is down: opened later). "
    "Announces `event.attended` and one `event.guest_brought` per guest. Honours "
    "`Idempotency-Key`.",
    responses=problem_responses(400, 401, 404, 409, 422),
)
async def check_in(
    event_id: str,
    check_in_in: CheckInCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    once: Annotated[IdempotentWrite, Depends(idempotent("checkins:{event_id}"))],
) -> Response:
    async def write() -> CheckInPublic:
        event = await service.get_open(session, principal=principal, event_id=event_id)
        done = await checkins.check_in(
            session,
            app=request.app,
            token=caller_token(request),
            principal=principal,
            event=event,
            check_in_in=check_in_in,
            now=datetime.now(UTC),
        )
        return CheckInPublic(
            event_id=event.id,
            customer_id=done.check_in.customer_id,
            checked_in_at=done.check_in.checked_in_at,
            walk_in=done.check_in.walk_in,
            guests=[_guest(g) for g in done.guests],
        )

    return await once.respond(session, check_in_in, write, status_code=201)
