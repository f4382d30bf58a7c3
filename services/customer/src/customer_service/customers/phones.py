"""Phone numbers: parsed and normalised to E.164 (mainland China by default) before storing or
matching, with the kind the numbering plan gives them, a keyed hash for exact lookup and the
last digits for tail search."""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import phonenumbers
from phonenumbers import PhoneNumberType, ValidationResult

from crm_libs.problems import InvalidField

DEFAULT_REGION = "CN"
TAIL_DIGITS = 4

PhoneKind = Literal["mobile", "landline", "other"]
PHONE_KINDS: tuple[PhoneKind, ...] = ("mobile", "landline", "other")

# What the numbering plan says a number is, in the customer file's words. Where the plan cannot
# tell mobile from fixed line (+1), either is accepted; service numbers (400, VoIP…) are other.
_KINDS_OF_TYPE: dict[int, tuple[PhoneKind, ...]] = {
    PhoneNumberType.MOBILE: ("mobile",),
    PhoneNumberType.FIXED_LINE: ("landline",),
    PhoneNumberType.FIXED_LINE_OR_MOBILE: ("mobile", "landline"),
}

_KIND_WORDS: dict[PhoneKind, str] = {
    "mobile": "is a mobile number",
    "landline": "is a landline number",
    "other": "is neither a mobile nor a landline number",
}
_TOO_SHORT = (ValidationResult.TOO_SHORT, ValidationResult.INVALID_LENGTH)
_LANDLINE_EXAMPLE = "010-12345678 or 0755 1234 5678"


@dataclass(frozen=True, slots=True)
class ParsedPhone:
    """A valid phone number: E.164, the kinds its numbering plan allows (best first), its tail."""

    e164: str
    kinds: tuple[PhoneKind, ...]

    @property
    def kind(self) -> PhoneKind:
        return self.kinds[0]

    @property
    def tail(self) -> str:
        """The last four digits, kept in clear for tail search (they show in the mask anyway)."""
        return self.e164[-TAIL_DIGITS:]


def parse_phone(
    raw: str,
    *,
    field: str = "phone",
    region: str = DEFAULT_REGION,
    kind: PhoneKind | None = None,
) -> ParsedPhone:
    """Parse a mobile or landline number, refusing an invalid one with a reason naming ``field``.

    A landline needs its area code (``010-12345678``); numbers in another country need their
    ``+`` code. With ``kind`` (the kind a client gave), a number of another kind is refused:
    a mobile number given as a landline is a mistake worth telling.
    """
    digits = _typed_mainland_digits(raw) if region == DEFAULT_REGION else None
    parsed: phonenumbers.PhoneNumber | None = None
    if digits is not None:
        number_type = _mobile_block_type(int(digits) // _BLOCK_SIZE)
    else:
        parsed = typed_mainland_landline(raw) if region == DEFAULT_REGION else None
        try:
            parsed = parsed or phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException as exc:
            raise InvalidField(field, "not a phone number") from exc
        if parsed.extension:
            # E.164 has no extension; dropping it silently would store a number nobody answers.
            raise InvalidField(field, "extensions are not kept: give the direct number")
        # A number's type is UNKNOWN exactly when it is not valid (``is_valid_number`` is
        # ``number_type(n) != UNKNOWN`` for the region the number belongs to): one walk of
        # the numbering plan's patterns instead of two.
        number_type = phonenumbers.number_type(parsed)
    if number_type == PhoneNumberType.UNKNOWN:
        invalid = parsed if parsed is not None else _mainland_number(digits or "")
        raise InvalidField(field, _why_invalid(invalid, region))
    kinds = _KINDS_OF_TYPE.get(number_type, ("other",))
    if kind is not None and kind not in kinds:
        raise InvalidField(field, f"{_KIND_WORDS[kinds[0]]}: kind {kinds[0]}, not {kind}")
    return ParsedPhone(
        # A mainland mobile's E.164 is its 11 digits after +86, as phonenumbers writes it
        # (no leading zero to keep), without formatting it through the library.
        e164=(
            f"+86{digits}"
            if parsed is None
            else phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        ),
        kinds=kinds,
    )


# A mainland mobile as staff type it (most of every sheet): 11 digits from 13-19, maybe in groups
# split by spaces or dashes, maybe after +86. What phonenumbers' parsing makes of it is certain
# (country 86, the digits as the national number), so that parsing, which costs more than the
# numbering plan's check after it, is skipped. 179 is left to it: China's plan reads 179xx as an
# IP-dialling prefix, which parsing may strip. tests/test_phones.py proves the two equal.
_MAINLAND_MOBILE_TYPED = re.compile(r"(?:\+86[ -]?)?(1[3-9][0-9](?:[ -]?[0-9]){8})")


# A mainland mobile's type is the same for the whole block of numbers sharing its first five
# digits: the plan's patterns for 11 digits from 13-19 decide by five at most (1740x, 1610x; the
# others by three), and no other type's pattern starts with 13-19. The blocks the plan
# (phonenumbers 9.0.43) makes mobile, as [first, end) ranges, all others being invalid: asking
# the plan costs some 25 µs a block, which every check process of an import paid again for
# each of the thousands of blocks a sheet's numbers fall in. tests/test_phones.py checks every
# block against phonenumbers.
_BLOCK_SIZE = 1_000_000
_MOBILE_BLOCKS = (
    (13000, 14000),
    (14500, 14600),
    (14700, 14800),
    (15000, 15400),
    (15500, 16000),
    (16100, 16110),
    (16200, 16300),
    (16500, 16800),
    (17000, 17406),
    (17500, 17900),
    (18000, 19400),
    (19500, 20000),
)
_MOBILE_BLOCK_STARTS = tuple(first for first, _ in _MOBILE_BLOCKS)


def _mobile_block_type(block: int) -> int:
    """The plan's type of a block of 11-digit numbers from 13-19 (their first five digits)."""
    at = bisect.bisect_right(_MOBILE_BLOCK_STARTS, block) - 1
    if at >= 0 and block < _MOBILE_BLOCKS[at][1]:
        return int(PhoneNumberType.MOBILE)
    return int(PhoneNumberType.UNKNOWN)


def typed_mainland_mobile(raw: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(raw, "CN")`` gives, for a mainland mobile typed the usual
    ways (valid or not); None for anything else, which phonenumbers parses itself."""
    digits = _typed_mainland_digits(raw)
    return None if digits is None else _mainland_number(digits)


# A mainland landline as staff type it: 0, its area code's 2-3 digits and a number of 7-8, maybe
# split by spaces or dashes (0574-5245 2397, 010 6253 7804). phonenumbers' parsing of it is
# certain too: no dialling prefix (00) or carrier code (1xxxx) to strip, its trunk 0 stripped
# (the plan's numbers never start with 0, so the number without it is the one it keeps), 9-11
# digits left (a length the plan allows), so country 86 and those digits. Its type is still
# the plan's. tests/test_phones.py proves the two equal over every area code.
_MAINLAND_LANDLINE_TYPED = re.compile(r"0[1-9](?:[ -]?[0-9]){8,10}")


def typed_mainland_landline(raw: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(raw, "CN")`` gives, for a mainland landline typed the usual
    ways (valid or not); None for anything else, which phonenumbers parses itself."""
    if _MAINLAND_LANDLINE_TYPED.fullmatch(raw) is None:
        return None
    return _mainland_number(raw.replace(" ", "").replace("-", "")[1:])


def _typed_mainland_digits(raw: str) -> str | None:
    """The 11 digits of a mainland mobile typed the usual ways (``typed_mainland_mobile``)."""
    if len(raw) == 11 and raw.isascii() and raw.isdigit():
        # Its digits alone (most): what the pattern reads of them, without matching it.
        return raw if raw[0] == "1" and raw[1] in "3456789" and raw[:3] != "179" else None
    match = _MAINLAND_MOBILE_TYPED.fullmatch(raw)
    if match is None:
        return None
    digits = match.group(1).replace(" ", "").replace("-", "")
    return None if digits.startswith("179") else digits


def _mainland_number(digits: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.PhoneNumber(country_code=86, national_number=int(digits))


def _why_invalid(parsed: phonenumbers.PhoneNumber, region: str) -> str:
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    national = str(parsed.national_number)
    # IS_POSSIBLE_LOCAL_ONLY: a short code like 95588 or a local number cut short.
    if reason in _TOO_SHORT or reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        return f"too short for a phone number (a landline needs its area code: {_LANDLINE_EXAMPLE})"
    if reason == ValidationResult.TOO_LONG:
        return "too long for a phone number"
    if reason == ValidationResult.INVALID_COUNTRY_CODE:
        return "unknown country code"
    if region == DEFAULT_REGION and parsed.country_code == 86 and len(national) in (7, 8):
        return f"a landline needs its area code: {_LANDLINE_EXAMPLE}"
    if parsed.country_code == 86 and national.startswith("1") and len(national) == 11:
        return "not a mobile number in use in China (unknown prefix)"
    return "not a valid phone number"


def normalise_phone(raw: str, *, field: str = "phone", region: str = DEFAULT_REGION) -> str:
    """The E.164 form of a valid phone number (``+8613812345678``)."""
    return parse_phone(raw, field=field, region=region).e164


def phone_lookup_hash(e164: str, *, key: bytes | str) -> str:
    """HMAC-SHA256 of an E.164 number under ``key``, hex: equal numbers, equal hashes.

    The number itself is stored encrypted; this is what an exact lookup or a duplicate check
    compares. Keyed, so a stolen table cannot be reversed by hashing every possible number
    (there are only about 10^11 Chinese mobile numbers). The key comes from the caller's settings.
    """
    inner, outer = _keyed_hash(key)
    digest = inner.copy()
    digest.update(e164.encode())
    keyed = outer.copy()
    keyed.update(digest.digest())
    return keyed.hexdigest()


@functools.lru_cache(maxsize=16)
def _keyed_hash(key: bytes | str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256's inner and outer SHA-256 states with the key's pads already absorbed (RFC
    2104): copies of them hash a number in half the time ``hmac``'s own copy takes, whose
    Python wrapper costs more than the hashing (an import hashes every phone of every row).
    test_phones.py compares the hashes with ``hmac``'s."""
    raw = key.encode() if isinstance(key, str) else key
    if len(raw) > _SHA256_BLOCK:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(_SHA256_BLOCK, b"\0")
    return (
        hashlib.sha256(raw.translate(_INNER_PAD)),
        hashlib.sha256(raw.translate(_OUTER_PAD)),
    )


_SHA256_BLOCK = 64
_INNER_PAD = bytes(b ^ 0x36 for b in range(256))
_OUTER_PAD = bytes(b ^ 0x5C for b in range(256))


# Digits, spaces, brackets, dashes and a leading plus: what a phone search looks like.
_PHONE_LIKE = re.compile(r"^\+?[\d\s()-]+$")


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
