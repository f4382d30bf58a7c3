"""Phone numbers normalised to E.164 (mainland China by default) before storing or matching."""

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
