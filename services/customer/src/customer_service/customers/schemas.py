"""The customer file's fields as API.md names them ("The customer file's field names").

Every write model refuses unknown fields (``extra="forbid"``): a partner's typo must not vanish
silently. Values that need the store (its time zone, its staff, its customers) are checked by
``customers/profile.py`` once the store is known.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from customer_service.customers.calendars import BirthdayCalendar
from customer_service.customers.emails import check_email
from customer_service.customers.id_numbers import check_id_number
from customer_service.customers.phones import PhoneKind
from customer_service.imports.codes import SOURCE_CHANNELS


def _valid_id_number(value: str | None) -> str | None:
    return None if value is None else check_id_number(value)


def _valid_email(value: str | None) -> str | None:
    return None if value is None else check_email(value)


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


# The pipeline of a file without purchases (DOMAIN.md §1 "Prospects"), in its order.
PROSPECT_STAGES = ("collected", "contacted", "invited", "attended", "bought")
ProspectStage = Literal["collected", "contacted", "invited", "attended", "bought"]
ProspectGrade = Literal["A", "B", "C"]
ServicePreference = Literal["phone", "home_visit", "in_store", "messaging"]
# Where a consent was given (or withdrawn): the time is the server's.
ConsentChannel = Literal["in_store", "paper_form", "phone", "sms", "app", "import", "other"]
# The codes imports read spreadsheets into (imports/codes.py), so both paths agree.
SourceChannel = Literal[SOURCE_CHANNELS]  # type: ignore[valid-type]

_Item = Annotated[str, Field(min_length=1, max_length=200)]
_Text = Annotated[str, Field(min_length=1, max_length=200)]
_Long = Annotated[str, Field(min_length=1, max_length=1000)]


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HealthRecord(_Write):
    """健康: what the store must know to avoid conflicts and to serve well (sensitive)."""

    chronic_conditions: list[_Item] = Field(default_factory=list, max_length=50)
    medical_history: list[_Item] = Field(default_factory=list, max_length=50)
    allergies: list[_Item] = Field(default_factory=list, max_length=50)
    current_medicines: list[_Item] = Field(default_factory=list, max_length=50)
    other_health_products: list[_Item] = Field(default_factory=list, max_length=50)


class PhoneIn(_Write):
    number: str = Field(min_length=1, max_length=32)
    # Checked against what the numbering plan says the number is; the plan's kind when absent.
    kind: PhoneKind | None = None
    primary: bool = False


class Phone(BaseModel):
    number: str
    kind: PhoneKind
    primary: bool


class Address(_Write):
    province: _Text | None = None
    city: _Text | None = None
    district: _Text | None = None
    street: _Long | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class Deep(_Write):
    """深入信息: what staff learn over later visits."""

    occupation: _Text | None = None
    position: _Text | None = None
    family_situation: _Long | None = None
    housing: _Long | None = None
    personality: _Long | None = None
    habits: _Long | None = None
    favourite_colours: list[_Item] | None = Field(default=None, max_length=20)
    hobbies: list[_Item] | None = Field(default=None, max_length=50)
    lifestyle: _Long | None = None
    service_preference: ServicePreference | None = None
    promotion_attitude: _Long | None = None
    education: _Text | None = None
    income_band: _Text | None = None
    contact_time: _Text | None = None


class Source(_Write):
    """收档渠道: how the file was obtained, and what it cost."""

    channel: SourceChannel
    method: _Text | None = None
    activity_id: str | None = Field(default=None, min_length=1, max_length=64)
    cost: Decimal = Field(default=Decimal("0.00"), ge=0, le=Decimal("1000000"), decimal_places=2)


class Prospect(_Write):
    stage: ProspectStage | None = None
    grade: ProspectGrade | None = None


class SmsConsentIn(_Write):
    granted: bool
    channel: ConsentChannel


class ConsentsIn(_Write):
    sms: SmsConsentIn | None = None


class SmsConsent(BaseModel):
    granted: bool = False
    at: datetime | None = None
    channel: str | None = None


class Consents(BaseModel):
    sms: SmsConsent = SmsConsent()


class _ProfileWrite(_Write):
    """The fields a registration and a change share."""

    gender: Gender | None = None
    ethnicity: _Text | None = None
    approximate_age: int | None = Field(default=None, ge=0, le=130)
    # In the customer's calendar (``birthday_calendar``): a lunar one as YYYY-MM-DD of the lunar
    # year, a leap month as YYYY-LMM-DD. Checked against the store's today in profile.py.
    birthday: str | None = Field(default=None, max_length=16)
    birthday_calendar: BirthdayCalendar | None = None
    wedding_anniversary: date | None = None
    phones: list[PhoneIn] | None = Field(default=None, max_length=10)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    address: Address | None = None
    id_number: str | None = Field(default=None, max_length=18)
    owner_staff_id: str | None = Field(default=None, min_length=1, max_length=64)
    deep: Deep | None = None
    health: HealthRecord | None = None
    health_consent: bool | None = Field(
        default=None, description="The customer's separate consent to keeping health data"
    )
    source: Source | None = None
    referrer_id: str | None = Field(default=None, min_length=1, max_length=64)
    prospect: Prospect | None = None
    consents: ConsentsIn | None = None

    _id_number = field_validator("id_number")(_valid_id_number)
    _email = field_validator("email")(_valid_email)


class CustomerCreate(_ProfileWrite):
    store_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)


class CustomerUpdate(_ProfileWrite):
    name: str | None = Field(default=None, min_length=1, max_length=100)


class CustomerPublic(BaseModel):
    id: str
    store_id: str
    name: str
    phone: str | None
    phones: list[Phone] = []
    gender: Gender | None
    ethnicity: str | None = None
    approximate_age: int | None = None
    birthday: str | None
    birthday_calendar: BirthdayCalendar = "solar"
    wedding_anniversary: date | None = None
    email: str | None = None
    address: Address | None = None
    id_number: str | None = None
    owner_staff_id: str | None = None
    deep: Deep | None = None
    health: HealthRecord | None = None
    health_consent_at: datetime | None = None
    source: Source | None = None
    referrer_id: str | None = None
    prospect: Prospect | None = None
    consents: Consents = Consents()
    status: str
    merged_into: str | None = None
    version: int
    created_at: datetime | None


class CustomerName(BaseModel):
    """A file as a sparse read gives it (``GET /customers?fields=id,name,gender,has_phone``):
    whose, and only the fields asked for."""

    id: str
    name: str | None = None
    gender: str | None = None
    has_phone: bool | None = None
