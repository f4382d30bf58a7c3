"""The shapes of member events, invitations and check-ins on the API (API.md: ``POST /events``,
``/events/{id}/invitations``, ``/events/{id}/checkins``)."""

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class EventKind(StrEnum):
    """DOMAIN.md §6: 联谊会, 科普讲座, health checks (ECG, bone density), 订货会, parties."""

    GATHERING = "gathering"
    LECTURE = "lecture"
    HEALTH_CHECK = "health_check"
    ORDER_MEETING = "order_meeting"
    PARTY = "party"


Reply = Literal["yes", "no", "maybe"]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventCreate(_Write):
    store_id: str = Field(min_length=1, max_length=64)
    kind: EventKind
    title: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime
    place: str = Field(min_length=1, max_length=500)
    capacity: int = Field(ge=1, le=100_000, description="People at most: customers and guests")


class EventCounts(BaseModel):
    invited: int
    replied_yes: int
    replied_no: int
    replied_maybe: int
    checked_in: int
    walk_ins: int
    guests: int
    places_left: int


class EventPublic(BaseModel):
    id: str
    store_id: str
    kind: EventKind
    title: str
    starts_at: AwareDatetime
    place: str
    capacity: int
    status: Literal["scheduled", "cancelled"]
    cancelled_at: AwareDatetime | None


class EventDetail(EventPublic):
    counts: EventCounts


class Segment(_Write):
    """Scoring's segment filters (``GET /scores``): they combine, at least one."""

    value_tier: str | None = Field(default=None, max_length=40)
    lifecycle: str | None = Field(default=None, max_length=40)
    ladder: str | None = Field(default=None, max_length=40)
    loyalty: str | None = Field(default=None, max_length=40)
    rfm_segment: str | None = Field(default=None, max_length=40)

    @model_validator(mode="after")
    def _some_filter(self) -> "Segment":
        if not self.filters():
            raise ValueError(
                "name at least one of value_tier, lifecycle, ladder, loyalty, rfm_segment"
            )
        return self

    def filters(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class InvitationsCreate(_Write):
    """Customers one by one (``customer_ids``) or a segment of the store (``segment``)."""

    customer_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    segment: Segment | None = None


class InvitationsResult(BaseModel):
    invited: int = Field(description="Newly invited")
    already_invited: int
    left_out: int = Field(
        default=0, description="Segment members engagement does not hold as active files yet"
    )
    customer_ids: list[str] = Field(description="The newly invited customers")


class ReplyUpdate(_Write):
    reply: Reply


class InvitationPublic(BaseModel):
    event_id: str
    customer_id: str
    reply: Reply | None
    replied_at: AwareDatetime | None
    walk_in: bool
    invited_at: AwareDatetime | None
    checked_in: bool = False


class GuestIn(_Write):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=1, max_length=32)


class CheckInCreate(_Write):
    customer_id: str = Field(min_length=1, max_length=64)
    guests: list[GuestIn] = Field(default_factory=list, max_length=20)
    walk_in: bool = Field(
        default=False,
        description="Let a customer who was not invited in, recorded as a walk-in; without it "
        "an uninvited customer is refused (409)",
    )


class GuestPublic(BaseModel):
    id: str
    customer_id: str | None = Field(description="The guest's file; null while it is pending")
    file: Literal["linked", "created", "pending", "refused"]


class CheckInPublic(BaseModel):
    event_id: str
    customer_id: str
    checked_in_at: AwareDatetime
    walk_in: bool
    guests: list[GuestPublic]
