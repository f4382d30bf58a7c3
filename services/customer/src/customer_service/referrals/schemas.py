from pydantic import BaseModel, Field


class Referral(BaseModel):
    customer_id: str
    depth: int = Field(ge=1, description="1: referred by the customer; 2: by one of those…")
    referred_by: str = Field(description="The file that referred this one")


class Referrals(BaseModel):
    items: list[Referral]
    next_cursor: str | None = None
