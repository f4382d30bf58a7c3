from datetime import date
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from engagement_service.campaigns.kinds import FESTIVAL_OCCASIONS, SEASON_OCCASIONS, Kind
from engagement_service.care.special_days import Occasion
from engagement_service.member_events.schemas import Segment

CampaignStatus = Literal["draft", "sending", "sent", "failed"]


class _CampaignBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template_id: str = Field(min_length=1, max_length=64)
    store_id: str | None = Field(
        default=None,
        max_length=64,
        description="The caller's store if absent (head office names one)",
    )
    name: str | None = Field(default=None, max_length=100)
    staff_id: str | None = Field(
        default=None,
        max_length=64,
        description="Whose voice; the caller's staff member if absent (miss_you: each "
        "customer's serving staff member when the file has one)",
    )
    send_at: AwareDatetime | None = Field(
        default=None, description="Not before this time (quiet hours still hold it); now if absent"
    )


class BirthdayCampaign(_CampaignBase):
    """The customers whose birthday, solar or lunar, falls in the days."""

    kind: Literal["birthday"]
    date_from: date = Field(description="The first day of the birthdays it greets")
    date_to: date | None = Field(
        default=None, description="The last day (date_from if absent); at most 31 days"
    )

    @model_validator(mode="after")
    def _days(self) -> "BirthdayCampaign":
        if self.date_to is not None:
            if self.date_to < self.date_from:
                raise ValueError("date_to is before date_from")
            if (self.date_to - self.date_from).days > 30:
                raise ValueError("a birthday campaign spans at most 31 days")
        return self


FestivalOccasion = Literal["spring_festival", "dragon_boat", "mid_autumn", "double_ninth"]
SeasonOccasion = Literal["lichun", "lixia", "liqiu", "lidong"]


class FestivalCampaign(_CampaignBase):
    """Every customer of the store, for a festival (its next date from the lunar calendar)."""

    kind: Literal["festival"]
    occasion: FestivalOccasion


class SeasonCampaign(_CampaignBase):
    """Every customer of the store, for the solar term that starts a season."""

    kind: Literal["season"]
    occasion: SeasonOccasion


class MissYouCampaign(_CampaignBase):
    """The customers with no purchase and no visit in ``unseen_days`` days (seen once at least)."""

    kind: Literal["miss_you"]
    unseen_days: int = Field(ge=1, le=3650)


class ManualCampaign(_CampaignBase):
    """The members of scoring's segment."""

    kind: Literal["manual"]
    segment: Segment


CampaignCreate = Annotated[
    BirthdayCampaign | FestivalCampaign | SeasonCampaign | MissYouCampaign | ManualCampaign,
    Field(discriminator="kind"),
]
AnyCampaign = (
    BirthdayCampaign | FestivalCampaign | SeasonCampaign | MissYouCampaign | ManualCampaign
)
# The kinds' occasions are care/special_days.py's festivals and season changes, no others.
assert set(get_args(FestivalOccasion)) == {o.value for o in FESTIVAL_OCCASIONS}
assert set(get_args(SeasonOccasion)) == {o.value for o in SEASON_OCCASIONS}


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
