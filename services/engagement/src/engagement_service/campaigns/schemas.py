from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engagement_service.campaigns.kinds import FESTIVAL_OCCASIONS, SEASON_OCCASIONS, Kind
from engagement_service.care.special_days import Occasion
from engagement_service.member_events.schemas import Segment

CampaignStatus = Literal["draft", "sending", "sent", "failed"]

# What each kind reads from the request; any other of these fields is refused with the kind's.
_FIELDS: dict[Kind, frozenset[str]] = {
    Kind.BIRTHDAY: frozenset({"date_from"}),
    Kind.FESTIVAL: frozenset({"occasion"}),
    Kind.SEASON: frozenset({"occasion"}),
    Kind.MISS_YOU: frozenset({"unseen_days"}),
    Kind.MANUAL: frozenset({"segment"}),
}
_OPTIONAL = {Kind.BIRTHDAY: frozenset({"date_to"})}
_CHOICE = ("date_from", "date_to", "occasion", "unseen_days", "segment")


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    template_id: str = Field(min_length=1, max_length=64)
    store_id: str | None = Field(
        default=None,
        max_length=64,
        description="The caller's store if absent (head office names one)",
    )
    name: str | None = Field(default=None, max_length=100)
    date_from: date | None = Field(
        default=None,
        description="birthday: the first day of the birthdays (solar or lunar) it greets",
    )
    date_to: date | None = Field(
        default=None, description="birthday: the last day (date_from if absent); at most 31 days"
    )
    occasion: Occasion | None = Field(
        default=None,
        description="festival: spring_festival, dragon_boat, mid_autumn, double_ninth; season: "
        "lichun, lixia, liqiu, lidong (its next date from the lunar calendar)",
    )
    unseen_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="miss_you: customers with no purchase and no visit in this many days",
    )
    segment: Segment | None = Field(default=None, description="manual: scoring's segment")
    staff_id: str | None = Field(
        default=None,
        max_length=64,
        description="Whose voice; the caller's staff member if absent (miss_you: each "
        "customer's serving staff member when the file has one)",
    )
    send_at: AwareDatetime | None = Field(
        default=None, description="Not before this time (quiet hours still hold it); now if absent"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> "CampaignCreate":
        needed = _FIELDS[self.kind]
        allowed = needed | _OPTIONAL.get(self.kind, frozenset())
        given = {f for f in _CHOICE if getattr(self, f) is not None}
        if missing := sorted(needed - given):
            raise ValueError(f"a {self.kind} campaign needs {', '.join(missing)}")
        if extra := sorted(given - allowed):
            raise ValueError(f"a {self.kind} campaign takes no {', '.join(extra)}")
        if self.kind is Kind.FESTIVAL and self.occasion not in FESTIVAL_OCCASIONS:
            raise ValueError(
                "occasion: a festival is one of " + ", ".join(sorted(FESTIVAL_OCCASIONS))
            )
        if self.kind is Kind.SEASON and self.occasion not in SEASON_OCCASIONS:
            raise ValueError("occasion: a season is one of " + ", ".join(sorted(SEASON_OCCASIONS)))
        if self.date_from and self.date_to:
            if self.date_to < self.date_from:
                raise ValueError("date_to is before date_from")
            if (self.date_to - self.date_from).days > 30:
                raise ValueError("a birthday campaign spans at most 31 days")
        return self


class CampaignCounts(BaseModel):
    """The campaign's messages by status (the worker moves them) and its recipients not
    queued, by reason."""

    queued: int = 0
    held: int = Field(default=0, description="Held in the store's quiet hours until 08:00")
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opted_out: int = Field(
        default=0, description="Opted out after it was queued (the worker checks again)"
    )


class CampaignPublic(BaseModel):
    id: str
    store_id: str
    kind: Kind
    name: str
    template_id: str
    date_from: date | None
    date_to: date | None
    occasion: Occasion | None
    occasion_on: date | None
    unseen_days: int | None
    segment: dict[str, str] | None
    staff_id: str | None
    send_at: AwareDatetime | None
    status: CampaignStatus
    recipients: int = Field(description="Recipients found so far (all of them once sent)")
    processed: int = Field(description="Customer files the send job has gone through")
    excluded: dict[str, int]
    counts: CampaignCounts
    error: str | None
    created_at: AwareDatetime | None
    started_at: AwareDatetime | None
    finished_at: AwareDatetime | None


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=200, description="Rendered texts per page")
    cursor: str | None = Field(
        default=None, max_length=64, description="The last customer of the previous page"
    )


class PreviewMessage(BaseModel):
    customer_id: str
    text: str
    status: Literal["queued", "held_quiet_hours"]


class PreviewExclusion(BaseModel):
    customer_id: str
    reason: str


class CampaignPreview(BaseModel):
    recipients: int = Field(description="Customers the campaign chooses")
    would_queue: int = Field(description="Of them, messages that would be queued or held")
    excluded: dict[str, int] = Field(description="Recipients left out, by reason")
    messages: list[PreviewMessage] = Field(description="A page of rendered texts")
    exclusions: list[PreviewExclusion] = Field(description="Who is left out on this page, and why")
    next_cursor: str | None
