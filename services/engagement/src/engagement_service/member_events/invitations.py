"""Invitations to a member event: customers one by one or a segment of scoring's, each invited
once (inviting again changes nothing), and their replies.

A segment is resolved by scoring itself (``GET /scores`` with its filters, as the caller, every
page): engagement's read copy of the scores keeps the value tier and the lifecycle only, not the
ladder, loyalty or RFM segment a store invites by, and a second copy of those would be one more
thing to keep in step with scoring's classifications. Of the segment, only the files engagement
holds as active in the event's store are invited (a file scoring knows and engagement has not
yet seen is left out and counted).
"""

from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, NotFound, ProblemError
from engagement_service.customers.models import CustomerFile
from engagement_service.member_events import peers
from engagement_service.member_events.models import EventCheckIn, EventInvitation, StoreEvent
from engagement_service.member_events.schemas import InvitationsCreate, InvitationsResult
from engagement_service.peer_client import PeerUnavailable, Refused


def invalid(errors: list[dict[str, str]], detail: str) -> ProblemError:
    return ProblemError(detail, status=422, title="Invalid field value", errors=errors)


def unavailable(what: str) -> ProblemError:
    return ProblemError(f"{what} did not answer: try again", status=503, title="Unavailable")


async def active_files(
    session: AsyncSession, *, store_id: str, customer_ids: list[str]
) -> set[str]:
    """Which of ``customer_ids`` are active files of the store, as engagement holds them."""
    if not customer_ids:
        return set()
    found = await session.execute(
        select(col(CustomerFile.customer_id)).where(
            col(CustomerFile.store_id) == store_id,
            col(CustomerFile.customer_id).in_(customer_ids),
            col(CustomerFile.status) == "active",
        )
    )
    return set(found.scalars())


async def invite(
    session: AsyncSession,
    *,
    app: FastAPI,
    token: str,
    principal: Principal,
    event: StoreEvent,
    invitations_in: InvitationsCreate,
) -> InvitationsResult:
    """Invite the customers named, or the segment's, to an open event (locked by the caller)."""
    if (invitations_in.customer_ids is None) == (invitations_in.segment is None):
        raise invalid(
            [{"field": "customer_ids", "message": "give customer_ids or segment, one of them"}],
            "customer_ids or segment: one of them",
        )
    left_out = 0
    if invitations_in.customer_ids is not None:
        wanted = list(dict.fromkeys(invitations_in.customer_ids))
        known = await active_files(session, store_id=event.store_id, customer_ids=wanted)
        unknown = [
            {"field": f"customer_ids.{i}", "message": f"no active customer {c!r} in the store"}
            for i, c in enumerate(invitations_in.customer_ids)
            if c not in known
        ]
        if unknown:
            raise invalid(unknown, "unknown customers: " + ", ".join(e["field"] for e in unknown))
    else:
        assert invitations_in.segment is not None
        try:
            members = await peers.segment_members(
                app,
                token=token,
                store_id=event.store_id,
                filters=invitations_in.segment.filters(),
            )
        except PeerUnavailable as exc:
            raise unavailable("The scoring service") from exc
        except Refused as refused:
            raise invalid(
                [
                    {"field": f"segment.{e.get('field')}", "message": str(e.get("message"))}
                    for e in refused.errors
                ]
                or [{"field": "segment", "message": refused.detail}],
                refused.detail,
            ) from refused
        wanted = list(dict.fromkeys(members))
        known = await active_files(session, store_id=event.store_id, customer_ids=wanted)
        left_out = len(wanted) - len(known)
        wanted = [c for c in wanted if c in known]
    added: list[str] = []
    # In pieces: a statement's parameters are limited, and a segment may be a store's thousands.
    for start in range(0, len(wanted), 1000):
        piece = wanted[start : start + 1000]
        rows = await session.execute(
            insert(EventInvitation)
            .values(
                [
                    {
                        "event_id": event.id,
                        "customer_id": c,
                        "store_id": event.store_id,
                        "invited_by": principal.subject,
                    }
                    for c in piece
                ]
            )
            .on_conflict_do_nothing()
            .returning(col(EventInvitation.customer_id))
        )
        added.extend(rows.scalars())
    return InvitationsResult(
        invited=len(added),
        already_invited=len(wanted) - len(added),
        left_out=left_out,
        customer_ids=sorted(added),
    )


async def record_reply(
    session: AsyncSession, *, event: StoreEvent, customer_id: str, reply: str, now: datetime
) -> EventInvitation:
    """The invited customer's answer (a later one replaces it)."""
    invitation = await _invitation(session, event=event, customer_id=customer_id)
    if invitation is None:
        raise NotFound("This customer was not invited to the event")
    invitation.reply = reply
    invitation.replied_at = now
    session.add(invitation)
    await session.flush()
    return invitation


async def _invitation(
    session: AsyncSession, *, event: StoreEvent, customer_id: str
) -> EventInvitation | None:
    return (
        await session.execute(
            select(EventInvitation).where(
                col(EventInvitation.event_id) == event.id,
                col(EventInvitation.customer_id) == customer_id,
            )
        )
    ).scalar_one_or_none()


async def checked_in(session: AsyncSession, *, event_id: str, customer_ids: list[str]) -> set[str]:
    if not customer_ids:
        return set()
    rows = await session.execute(
        select(col(EventCheckIn.customer_id)).where(
            col(EventCheckIn.event_id) == event_id, col(EventCheckIn.customer_id).in_(customer_ids)
        )
    )
    return set(rows.scalars())


async def list_invitations(
    session: AsyncSession, *, event: StoreEvent, page: PageParams, reply: str | None = None
) -> list[EventInvitation]:
    """A page of the event's invitations in customer id order."""
    query = keyset(
        select(EventInvitation).where(col(EventInvitation.event_id) == event.id),
        col(EventInvitation.customer_id),
        page,
    )
    if reply is not None:
        query = query.where(col(EventInvitation.reply) == reply)
    return list((await session.execute(query)).scalars())


def refuse_if_cancelled(event: StoreEvent) -> None:
    if event.status == "cancelled":
        raise Conflict("The event was cancelled")
