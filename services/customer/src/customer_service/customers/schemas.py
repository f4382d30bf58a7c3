from datetime import date, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from customer_service.customers.id_numbers import check_id_number


def _valid_id_number(value: str | None) -> str | None:
    return None if value is None else check_id_number(value)


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


_Item = Annotated[str, Field(min_length=1, max_length=200)]


class HealthRecord(BaseModel):
    """健康: what the store must know to avoid conflicts and to serve well (sensitive)."""

    chronic_conditions: list[_Item] = Field(default_factory=list, max_length=50)
    medical_history: list[_Item] = Field(default_factory=list, max_length=50)
    allergies: list[_Item] = Field(default_factory=list, max_length=50)
    current_medicines: list[_Item] = Field(default_factory=list, max_length=50)
    other_health_products: list[_Item] = Field(default_factory=list, max_length=50)


class CustomerCreate(BaseModel):
    store_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    gender: Gender | None = None
    birthday: date | None = None
    id_number: str | None = Field(default=None, max_length=18)
    health: HealthRecord | None = None
    health_consent: bool | None = Field(
        default=None, description="The customer's separate consent to keeping health data"
    )

    _id_number = field_validator("id_number")(_valid_id_number)


class CustomerUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=32)
    gender: Gender | None = None
    birthday: date | None = None
    id_number: str | None = Field(default=None, max_length=18)
    health: HealthRecord | None = None
    health_consent: bool | None = None

    _id_number = field_validator("id_number")(_valid_id_number)


class CustomerPublic(BaseModel):
    id: str
    store_id: str
    name: str
    phone: str | None
    gender: Gender | None
    birthday: date | None
    id_number: str | None = None
    health: HealthRecord | None = None
    health_consent_at: datetime | None = None
    status: str
    version: int
    created_at: datetime | None
