from datetime import date
from enum import StrEnum

from pydantic import BaseModel, Field


class StaffRole(StrEnum):
    """Positions on a store's roster (服务代表/导购, 店长, 售后医生)."""

    STAFF = "staff"
    STORE_MANAGER = "store_manager"
    EXPERT = "expert"


class StaffStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    LEFT = "left"


class StaffCreate(BaseModel):
    store_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    role: StaffRole = StaffRole.STAFF
    phone: str | None = Field(default=None, max_length=32)
    hired_on: date | None = None
    status: StaffStatus = StaffStatus.ACTIVE


class StaffUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: StaffRole | None = None
    phone: str | None = Field(default=None, max_length=32)
    hired_on: date | None = None
    status: StaffStatus | None = None


class StaffPublic(BaseModel):
    id: str
    store_id: str
    name: str
    role: StaffRole
    phone: str | None
    hired_on: date | None
    status: StaffStatus
