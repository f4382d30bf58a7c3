from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from engagement_service.complaints.steps import Step

# Money as the API writes it (API.md): yuan, two places, a decimal string in answers.
Money = Annotated[
    Decimal,
    Field(ge=0, max_digits=10, decimal_places=2),
    PlainSerializer(
        lambda v: f"{v.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}",
        return_type=str,
        when_used="json",
    ),
]
# Free text that must say something: blank after trimming is refused.
Words = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)]


class Category(StrEnum):
    PRODUCT_EFFECT = "product_effect"
    QUALITY = "quality"
    SERVICE = "service"
    PRICE = "price"
    OTHER = "other"


class ComplaintStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ComplaintCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64)
    points: Words = Field(description="Every point of the complaint as the customer made it")
    category: Category


class _StepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: Note = ""


class ListenStep(_StepBody):
    step: Literal[Step.LISTEN]


class ApologiseStep(_StepBody):
    step: Literal[Step.APOLOGISE]


class ResolveStep(_StepBody):
    step: Literal[Step.RESOLVE]
    cause: Note | None = Field(default=None, description="What the analysis found")
    solution: Words = Field(description="The solution agreed with the customer")
    compensation: Money = Field(
        description="What was given, in yuan (a gift at its value); 0.00 for none"
    )
    compensation_note: Note | None = Field(
        default=None, description="What the compensation was (a small gift: which)"
    )


class FeedbackStep(_StepBody):
    step: Literal[Step.FEEDBACK]
    satisfied: bool


StepTaken = Annotated[
    ListenStep | ApologiseStep | ResolveStep | FeedbackStep, Field(discriminator="step")
]


class StepPublic(BaseModel):
    step: Step
    round: int
    taken_at: AwareDatetime
    taken_by: str
    staff_id: str | None
    notes: str
    cause: str | None = None
    solution: str | None = None
    compensation: Money | None = None
    compensation_note: str | None = None
    satisfied: bool | None = None


class ComplaintPublic(BaseModel):
    id: str
    store_id: str
    customer_id: str
    category: Category
    points: str
    status: ComplaintStatus
    next_step: Step | None = Field(description="The step the complaint waits for; null if closed")
    round: int = Field(description="1, then one more for each unsatisfied feedback")
    opened_at: datetime
    opened_by: str
    opened_by_staff_id: str | None
    closed_at: datetime | None
    resolution_minutes: float | None = Field(description="Opened to closed; null while open")
    resolved_on_the_spot: bool | None = Field(
        description="Closed satisfied in the first round, on the store-local day it was opened"
    )
    follow_up_task_id: str | None = Field(
        description="The task of the latest follow-up after an unsatisfied feedback"
    )
    steps: list[StepPublic]
