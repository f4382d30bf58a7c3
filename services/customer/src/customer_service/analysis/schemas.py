from datetime import date

from pydantic import BaseModel, Field

from customer_service.money import Money


class SourceConversion(BaseModel):
    channel: str | None = Field(description="收档渠道; null for files that name no source")
    files: int = Field(description="Files opened in the period from this channel")
    converted: int = Field(description="Those of them with a first purchase (at any time)")
    conversion_rate: float = Field(ge=0, le=1, description="converted / files")
    cost: Money = Field(description="Their acquisition costs added up")
    cost_per_converted: Money | None = Field(description="cost / converted; null with none")


class SourceAnalysis(BaseModel):
    store_id: str
    from_: date | None = Field(alias="from", serialization_alias="from")
    to: date | None
    items: list[SourceConversion]
