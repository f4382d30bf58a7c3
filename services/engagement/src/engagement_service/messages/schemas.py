from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from engagement_service.messages.categories import CarrierClass, Category

MessageStatus = Literal["queued", "held_quiet_hours", "sent", "delivered", "failed", "opted_out"]


class TemplateCreate(BaseModel):
    category: Category
    name: str = Field(min_length=1, max_length=100)
    body: str = Field(
        min_length=1,
        max_length=500,
        description="The text, with placeholders {customer_name}, {form_of_address}, "
        "{staff_name}, {store}",
    )
    store_id: str | None = Field(
        default=None,
        max_length=64,
        description="The store whose template it is; head office may leave it out for the brand",
    )


class TemplatePublic(BaseModel):
    id: str
    store_id: str | None
    category: Category
    carrier_class: CarrierClass
    name: str
    body: str
    placeholders: list[str]
    created_at: datetime | None


class MessageCreate(BaseModel):
    customer_id: str = Field(min_length=1, max_length=64)
    template_id: str = Field(min_length=1, max_length=64)
    staff_id: str | None = Field(
        default=None,
        max_length=64,
        description="Whose voice it is; the caller's staff member if absent (miss_you: always "
        "the customer's serving staff member when the file has one)",
    )


class MessageAccepted(BaseModel):
    id: str
    status: MessageStatus


class MessagePublic(BaseModel):
    id: str
    store_id: str
    customer_id: str
    template_id: str | None
    campaign_id: str | None
    category: Category
    carrier_class: CarrierClass
    staff_id: str | None
    signature: str
    body: str
    status: MessageStatus
    reason: str | None
    not_before: AwareDatetime
    attempts: int
    provider: str | None
    provider_message_id: str | None
    created_at: AwareDatetime | None
    sent_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    failed_at: AwareDatetime | None
