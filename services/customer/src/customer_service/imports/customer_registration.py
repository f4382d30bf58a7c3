"""A sheet row as the registration ``POST /customers`` would read from it: the write schema's
fields, read plainly where the schema would take every field as it is (most rows), else by the
schema itself (``CustomerCreate``), whose refusals become the row's errors under the sheet's
field names. customer_checks.py applies the profile's rules to what comes out.
"""

from datetime import date
from typing import TYPE_CHECKING, Any, NamedTuple

from customer_service.customers.calendars import BIRTHDAY_CALENDARS
from customer_service.customers.emails import check_email
from customer_service.customers.id_numbers import check_id_number
from customer_service.customers.phones import PHONE_KINDS
from customer_service.imports.codes import GENDERS, SOURCE_CHANNELS
from customer_service.imports.customer_rows import CustomerCandidate
from customer_service.imports.rows import RowError

# The write schema (pydantic's models) only for a row the plain reading does not take: a
# check process reads most sheets without loading pydantic (a third of its start).
if TYPE_CHECKING:
    from customer_service.customers.schemas import CustomerCreate

IMPORT_CHANNEL = "import"


class PhoneEntry(NamedTuple):
    """A phone of a registration as ``profile.parse_phones`` reads a ``PhoneIn``."""

    number: str
    kind: str | None
    primary: bool


class Registration(NamedTuple):
    """What a file is made of once the write schema accepted the row (``CustomerCreate``'s
    fields as the file stores them: the gender's value, not the enum, as the file travels
    pickled; the address and the source as their stored JSON objects)."""

    name: str
    phones: list[PhoneEntry] | None
    gender: str | None
    ethnicity: str | None
    approximate_age: int | None
    birthday: str | None
    birthday_calendar: str | None
    wedding_anniversary: date | None
    email: str | None
    address: dict[str, Any] | None
    source: dict[str, Any] | None
    id_number: str | None


def registration_of(customer_in: "CustomerCreate") -> Registration:
    """The fields of a registration the write schema read."""
    source = customer_in.source
    return Registration(
        name=customer_in.name,
        phones=(
            [PhoneEntry(p.number, p.kind, p.primary) for p in customer_in.phones]
            if customer_in.phones is not None
            else None
        ),
        gender=customer_in.gender.value if customer_in.gender else None,
        ethnicity=customer_in.ethnicity,
        approximate_age=customer_in.approximate_age,
        birthday=customer_in.birthday,
        birthday_calendar=customer_in.birthday_calendar,
        wedding_anniversary=customer_in.wedding_anniversary,
        email=customer_in.email,
        address=customer_in.address.model_dump(exclude_none=True) if customer_in.address else None,
        source=(
            {**source.model_dump(exclude_none=True), "cost": f"{source.cost:.2f}"}
            if source
            else None
        ),
        id_number=customer_in.id_number,
    )


# The schema's genders (its Gender, which test_customer_checks.py compares).
_GENDERS = frozenset(GENDERS)
_CALENDARS = frozenset(BIRTHDAY_CALENDARS)
_PHONE_KINDS = frozenset(PHONE_KINDS)
_CHANNELS = frozenset(SOURCE_CHANNELS)


def _text_within(value: str | None, longest: int) -> bool:
    return value is None or 0 < len(value) <= longest


def plain_registration(
    c: CustomerCandidate, owner_staff_id: str | None, referrer_id: str | None
) -> Registration | None:
    """``registration_of`` the write schema's reading of the row's registration (``_body``),
    without building the schema's models (a fifth of a row's checks): for a row whose every
    field the schema would take as it is, else None (the schema then reads the row, and names
    what it refuses). The schema's limits are repeated here; test_customer_checks.py proves
    both readings equal, and this one None wherever the schema refuses a field."""
    name = c.name
    if not (
        0 < len(name) <= 100
        and (c.gender is None or c.gender in _GENDERS)
        and _text_within(c.ethnicity, 200)
        and (c.approximate_age is None or 0 <= c.approximate_age <= 130)
        and (c.birthday_calendar is None or c.birthday_calendar in _CALENDARS)
        and (c.wedding_anniversary is None or type(c.wedding_anniversary) is date)
        and _text_within(owner_staff_id, 64)
        and _text_within(referrer_id, 64)
        and _text_within(c.source_method, 200)
        and (c.source_channel is None or c.source_channel in _CHANNELS)
        and len(c.phones) <= 10
    ):
        return None
    birthday = None
    if type(c.birthday) is date:
        birthday = c.birthday.isoformat()
    elif type(c.birthday) is str and len(c.birthday) <= 16:
        birthday = c.birthday  # a lunar leap month's day (1944-L04-04), checked as any birthday
    elif c.birthday is not None:
        return None
    phones: list[PhoneEntry] | None = None
    if c.phones:
        phones = []
        for p in c.phones:
            if not 0 < len(p.number) <= 32 or (p.kind is not None and p.kind not in _PHONE_KINDS):
                return None
            phones.append(PhoneEntry(p.number, p.kind, not phones))
    email = c.email
    if email is not None:
        if len(email) > 254:
            return None
        try:
            email = check_email(email)
        except ValueError:
            return None
    id_number = c.id_number
    if id_number is not None:
        if len(id_number) > 18:
            return None
        try:
            id_number = check_id_number(id_number)
        except ValueError:
            return None
    address = None
    street = c.street or c.address
    if c.province or c.city or c.district or street:
        if not (
            _text_within(c.province, 200)
            and _text_within(c.city, 200)
            and _text_within(c.district, 200)
            and _text_within(street, 1000)
        ):
            return None
        parts = {"province": c.province, "city": c.city, "district": c.district, "street": street}
        address = {k: v for k, v in parts.items() if v}
    source: dict[str, Any] = {"channel": c.source_channel or IMPORT_CHANNEL}
    if c.source_method:
        source["method"] = c.source_method
    source["cost"] = "0.00"
    return Registration(
        name=name,
        phones=phones,
        gender=c.gender,
        ethnicity=c.ethnicity,
        approximate_age=c.approximate_age,
        birthday=birthday,
        birthday_calendar=c.birthday_calendar,
        wedding_anniversary=c.wedding_anniversary,
        email=email,
        address=address,
        source=source,
        id_number=id_number,
    )


def _body(
    c: CustomerCandidate, owner_staff_id: str | None, referrer_id: str | None
) -> dict[str, Any]:
    """The registration a row stands for, in API.md's field names."""
    body: dict[str, Any] = {"store_id": "import", "name": c.name}
    optional = {
        "gender": c.gender,
        "ethnicity": c.ethnicity,
        "approximate_age": c.approximate_age,
        "birthday": (c.birthday if isinstance(c.birthday, str) else c.birthday.isoformat())
        if c.birthday
        else None,
        "birthday_calendar": c.birthday_calendar,
        "wedding_anniversary": c.wedding_anniversary,
        "email": c.email,
        "id_number": c.id_number,
        "owner_staff_id": owner_staff_id,
        "referrer_id": referrer_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if c.phones:
        body["phones"] = [
            {"number": p.number, **({"kind": p.kind} if p.kind else {})} for p in c.phones
        ]
        body["phones"][0]["primary"] = True
    address = {
        "province": c.province,
        "city": c.city,
        "district": c.district,
        # An address in one cell is kept whole as the street line, to be split by staff later.
        "street": c.street or c.address,
    }
    if any(address.values()):
        body["address"] = {k: v for k, v in address.items() if v}
    body["source"] = {
        "channel": c.source_channel or IMPORT_CHANNEL,
        **({"method": c.source_method} if c.source_method else {}),
    }
    return body


# API field → the sheet field its column was read into, where they differ.
_SHEET_FIELDS = {"phones": "phone", "address.street": "address"}


def sheet_field(api_field: str) -> str:
    """The sheet field a registration's field was read from (where a row's error points)."""
    head = api_field.split(".")[0]
    if head == "phones":
        return "phone"
    return _SHEET_FIELDS.get(api_field, api_field)


def registration(
    candidate: CustomerCandidate, owner_staff_id: str | None, referrer_id: str | None
) -> "Registration | list[RowError]":
    """The row's registration, or the write schema's refusals as the row's errors."""
    plain = plain_registration(candidate, owner_staff_id, referrer_id)
    if plain is not None:
        return plain
    from pydantic import ValidationError

    from customer_service.customers.schemas import CustomerCreate

    try:
        model = CustomerCreate.model_validate(_body(candidate, owner_staff_id, referrer_id))
    except ValidationError as exc:
        return [
            RowError(candidate.row, sheet_field(".".join(str(p) for p in e["loc"])), e["msg"])
            for e in exc.errors()
        ]
    return registration_of(model)
