from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DepartureReason(StrEnum):
    LEFT = "left"
    MOVED = "moved"
    INACTIVE = "inactive"


class DepartureCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: DepartureReason
    # Free words kept with each change (where they went, why).
    note: str | None = Field(default=None, max_length=500)


class DeparturePublic(BaseModel):
    reassigned: int
    to_pool: int


class TransferCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to_staff_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


class OwnershipChangePublic(BaseModel):
    at: datetime
    from_staff_id: str | None
    # Null: the file went to the store's pool.
    to_staff_id: str | None
    kind: str
    reason: str
    by: str
    # Counted by the rule of at most two changes of hands in 90 days.
    change_of_hands: bool
    manager_approval: bool


class OwnershipPublic(BaseModel):
    owner_staff_id: str | None
    in_pool_since: datetime | None
    history: list[OwnershipChangePublic]


class PoolFilePublic(BaseModel):
    customer_id: str
    name: str
    in_pool_since: datetime
    from_staff_id: str | None


class PoolAssignmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=64)
    customer_ids: list[str] = Field(min_length=1, max_length=500)
    # Needed, and recorded, when last month's completion was between 50 % and 80 %.
    manager_approval: bool = False


class PoolAssignmentPublic(BaseModel):
    staff_id: str
    assigned: list[str]


class TakeBackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    staff_id: str = Field(min_length=1, max_length=64)


class TakeBackPublic(BaseModel):
    staff_id: str
    # Pool files received a year ago, and how many of them bought again since.
    received: int
    bought_again: int
    # The files gone back to the pool.
    taken_back: list[str]
