"""The profile's stored form: phones encrypted with their hashes and tails, birthdays in either
calendar, prospects and consents; and every field's rule that needs no other row.

The API names a field once (API.md); some are stored in another form, turned back on reading
by ``public_values``. Rules that read other rows (owner, referrer) are in customers/service.py.
"""

import functools
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import orjson

from crm_libs.field_crypto import FieldCipher, Nonces
from crm_libs.problems import InvalidField, ProblemError
from customer_service.customers import calendars
from customer_service.customers.phones import parse_phone, phone_lookup_hash

# The API's schemas (pydantic's models) only where a rule or a reading needs them: an import's
# row-check processes apply the phone and birthday rules here and should not load pydantic.
if TYPE_CHECKING:
    from customer_service.customers.schemas import PhoneIn

NO_CONSENTS: dict[str, Any] = {"sms": {"granted": False, "at": None, "channel": None}}


class _Checking:
    """FieldErrors.checking's context: a class rather than a generator, as a spreadsheet import
    enters one per phone of every row."""

    __slots__ = ("_errors",)

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self._errors = errors

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> bool:
        if isinstance(exc, InvalidField):
            self._errors.extend(exc.errors or [])
            return True
        return False


class FieldErrors:
    """Collects each invalid field of a write, so that one answer names them all."""

    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def checking(self) -> _Checking:
        """``with errors.checking(): ...``: an InvalidField raised inside is collected."""
        return _Checking(self.errors)

    def raise_if_any(self) -> None:
        if len(self.errors) == 1:
            only = self.errors[0]
            raise InvalidField(only["field"], only["message"])
        if self.errors:
            fields = ", ".join(e["field"] for e in self.errors)
            raise ProblemError(
                f"Invalid fields: {fields}",
                status=422,
                title="Invalid field value",
                errors=self.errors,
            )


# --- phones ------------------------------------------------------------------------------------


def parse_phones(
    phones: "list[PhoneIn] | None", phone: str | None, *, current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The file's phone list from a write's ``phones`` and/or ``phone`` (the primary).

    ``phones`` replaces the list; ``phone`` alone replaces the primary's number (or makes the
    first entry). With both, ``phone`` must be the primary of ``phones``. Exactly one entry is
    primary (a list of one needs not say so); a number appears once.
    """
    if phones is None:
        assert phone is not None
        parsed = parse_phone(phone, field="phone")
        others = [p for p in current if not p["primary"] and p["number"] != parsed.e164]
        return [{"number": parsed.e164, "kind": parsed.kind, "primary": True}, *others]
    if phone is None and len(phones) == 1:
        return _one_phone(phones[0])
    return _phone_list(phones, phone)


def _one_phone(entry: "PhoneIn") -> list[dict[str, Any]]:
    """``parse_phones`` of a list of one number (most writes, and every row of most sheets):
    what the whole list's rules make of it (its one error raised as it, no number before it
    to repeat, the primary whatever it says) without collecting errors and counting
    primaries; test_phones.py compares the two over numbers of every kind."""
    parsed = parse_phone(entry.number, field="phones.0.number")
    kind = entry.kind or parsed.kind
    if kind not in parsed.kinds:
        raise InvalidField("phones.0.kind", f"{entry.number} is a {parsed.kind} number, not {kind}")
    return [{"number": parsed.e164, "kind": kind, "primary": True}]


def _phone_list(phones: "list[PhoneIn]", phone: str | None) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    errors = FieldErrors()
    for index, entry in enumerate(phones):
        with errors.checking():
            parsed = parse_phone(entry.number, field=f"phones.{index}.number")
            kind = entry.kind or parsed.kind
            if kind not in parsed.kinds:
                raise InvalidField(
                    f"phones.{index}.kind", f"{entry.number} is a {parsed.kind} number, not {kind}"
                )
            if any(p["number"] == parsed.e164 for p in listed):
                raise InvalidField(f"phones.{index}.number", "the same number is listed twice")
            listed.append({"number": parsed.e164, "kind": kind, "primary": entry.primary})
    errors.raise_if_any()
    if len(listed) == 1:
        listed[0]["primary"] = True
    primaries = [p for p in listed if p["primary"]]
    if listed and len(primaries) != 1:
        raise InvalidField("phones", f"exactly one phone is primary, not {len(primaries)}")
    if phone is not None:
        number = parse_phone(phone, field="phone").e164
        if not primaries or primaries[0]["number"] != number:
            raise InvalidField("phone", "is the primary of phones: give one or make them agree")
    # The primary first: it is what ``phone`` shows and what a list reads first.
    return sorted(listed, key=lambda p: not p["primary"])


def sealed_phones(
    phones: list[dict[str, Any]],
    *,
    cipher: FieldCipher,
    hash_key: str,
    nonces: Nonces | None = None,
) -> tuple[str | None, list[str], list[str]]:
    """(phones_encrypted, phone_hashes, phone_tails) of a phone list (sealed under a nonce of
    ``nonces``, a batch's, else one drawn now)."""
    if not phones:
        return None, [], []
    numbers = [p["number"] for p in phones]
    return (
        cipher.encrypt(orjson.dumps(phones).decode(), nonces=nonces),
        [phone_lookup_hash(n, key=hash_key) for n in numbers],
        [n[-4:] for n in numbers],
    )


def opened_phones(encrypted: str | None, cipher: FieldCipher) -> list[dict[str, Any]]:
    if not encrypted:
        return []
    phones: list[dict[str, Any]] = orjson.loads(cipher.decrypt(encrypted))
    return phones


# --- dates -------------------------------------------------------------------------------------


def solar_birthday(value: str | None, calendar: str, *, timezone: str) -> date | None:
    """The solar date of birth of a birthday written in its calendar, checked in range."""
    if value is None:
        return None
    checked = calendars.check_birthday(value, calendar, timezone=timezone)  # type: ignore[arg-type]
    if isinstance(checked, calendars.LunarDate):
        return calendars.lunar_to_solar(checked)
    return checked


def check_anniversary(
    anniversary: date | None, *, birthday: date | None, timezone: str
) -> date | None:
    if anniversary is None:
        return None
    calendars.check_date_in_range(anniversary, timezone=timezone, field="wedding_anniversary")
    if birthday is not None and anniversary <= birthday:
        raise InvalidField("wedding_anniversary", "lies before the birthday")
    return anniversary


def birthday_as_written(birthday: date | None, calendar: str) -> str | None:
    """The stored solar date of birth in the customer's calendar (the API's ``birthday``)."""
    if birthday is None:
        return None
    return str(calendars.solar_to_lunar(birthday)) if calendar == "lunar" else birthday.isoformat()


# --- prospects and consents --------------------------------------------------------------------


def next_stage(current: str | None, wanted: str, *, may_go_back: bool) -> str:
    """A prospect's stage after a write: forward only (a manager may correct it backwards);
    ``bought`` comes with the first purchase, never by hand."""
    from customer_service.customers.schemas import PROSPECT_STAGES

    if wanted == "bought" and current != "bought":
        raise InvalidField("prospect.stage", "becomes bought with the customer's first purchase")
    if current == "bought" and wanted != "bought" and not may_go_back:
        raise InvalidField("prospect.stage", "the customer has bought: the pipeline is over")
    if (
        current is not None
        and PROSPECT_STAGES.index(wanted) < PROSPECT_STAGES.index(current)
        and not may_go_back
    ):
        raise InvalidField(
            "prospect.stage",
            f"moves forward only ({current} → {wanted} is back; a store manager may correct it)",
        )
    return wanted


def sms_consent(
    current: Mapping[str, Any] | None, *, granted: bool, channel: str
) -> dict[str, Any]:
    """The SMS consent after a write: the time is the server's, set when the answer changes."""
    sms = dict((current or NO_CONSENTS)["sms"])
    if sms["granted"] != granted or sms["at"] is None:
        # Written as pydantic writes a UTC time ("Z"), so the stored text is the answer's.
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        sms = {"granted": granted, "at": at, "channel": channel}
    return {**(current or NO_CONSENTS), "sms": sms}


# --- reading -----------------------------------------------------------------------------------


@functools.cache
def _schema_keys() -> tuple[dict[str, None], dict[str, None], dict[str, None]]:
    """The address's, the health record's and the source's keys, each None: stored without the
    keys never given, they are shown with every key of the schema, like pydantic would."""
    from customer_service.customers.schemas import Address, Deep, Source

    return (
        dict.fromkeys(Address.model_fields),
        dict.fromkeys(Deep.model_fields),
        dict.fromkeys(Source.model_fields),
    )


def _json(value: Any, empty: dict[str, Any]) -> Any:
    if value is None:
        return None
    # The driver connection hands jsonb over as text; a row the ORM holds, as Python values.
    return {**empty, **(orjson.loads(value) if isinstance(value, str) else value)}


def public_values(row: Mapping[str, Any], phones: list[dict[str, Any]]) -> dict[str, Any]:
    """The fields whose stored form differs from the API's, as the API names them."""
    stage, grade = row["prospect_stage"], row["prospect_grade"]
    address, deep, source = _schema_keys()
    return {
        "phone": next((p["number"] for p in phones if p["primary"]), None),
        "phones": phones,
        "birthday": birthday_as_written(row["birthday"], row["birthday_calendar"]),
        "address": _json(row["address"], address),
        "deep": _json(row["deep"], deep),
        "source": _json(row["source"], source),
        "prospect": {"stage": stage, "grade": grade} if stage or grade else None,
        "consents": _json(row["consents"], NO_CONSENTS) or NO_CONSENTS,
    }
