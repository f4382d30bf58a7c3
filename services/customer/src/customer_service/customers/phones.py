"""Phone numbers normalised to E.164 (mainland China by default) before storing or matching."""

import re

import phonenumbers

from crm_libs.problems import InvalidField

DEFAULT_REGION = "CN"


def normalise_phone(raw: str, *, field: str = "phone", region: str = DEFAULT_REGION) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidField(field, "not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# Digits, spaces, brackets, dashes and a leading plus: what a phone search looks like.
_PHONE_LIKE = re.compile(r"^\+?[\d\s()-]+$")
TAIL_DIGITS = 4


def looks_like_phone(q: str) -> bool:
    return bool(_PHONE_LIKE.match(q))


def masked_phone_query(q: str) -> tuple[str, bool]:
    """A phone search by a role that sees numbers masked: (digits, is_tail).

    Only the last 4 digits (which the mask shows anyway) or the whole number are accepted: a
    tail grown one digit at a time would otherwise recover the number the mask hides.
    """
    if q.isdigit() and len(q) == TAIL_DIGITS:
        return q, True
    try:
        return normalise_phone(q, field="q"), False
    except InvalidField as exc:
        raise InvalidField(
            "q", f"search a phone by its last {TAIL_DIGITS} digits or the whole number"
        ) from exc
