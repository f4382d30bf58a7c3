from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class CustomerCreate(BaseModel):
    store_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    gender: Gender | None = None
    birthday: date | None = None


class CustomerUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    gender: Gender | None = None
    birthday: date | None = None


class CustomerPublic(BaseModel):
    id: str
    store_id: str
    name: str
    phone: str | None
    gender: Gender | None
    birthday: date | None
    status: str
    version: int
    created_at: datetime | None
