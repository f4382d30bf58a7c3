import hashlib
import hmac

import pytest

from crm_libs.problems import InvalidField
from customer_service.customers.phones import (
    masked_phone_query,
    normalise_phone,
    parse_phone,
    phone_lookup_hash,
)


@pytest.mark.parametrize(
    ("typed", "e164", "kind"),
    [
        ("138 1234 5678", "+8613812345678", "mobile"),
        ("+86-138-1234-5678", "+8613812345678", "mobile"),
        ("0086 13812345678", "+8613812345678", "mobile"),
        ("19912345678", "+8619912345678", "mobile"),
        ("010-12345678", "+861012345678", "landline"),
        ("0755 1234 5678", "+8675512345678", "landline"),
        ("(0755)23456789", "+8675523456789", "landline"),
        ("021-5123 4567", "+862151234567", "landline"),
        ("400-810-8888", "+864008108888", "other"),
        ("+852 9123 4567", "+85291234567", "mobile"),
        ("+44 20 7946 0958", "+442079460958", "landline"),
    ],
)
def test_mobiles_and_landlines_are_parsed_with_their_kind(typed: str, e164: str, kind: str) -> None:
    parsed = parse_phone(typed)
    assert (parsed.e164, parsed.kind) == (e164, kind)
    assert parsed.tail == e164[-4:]
    assert parse_phone(typed, kind=parsed.kind) == parsed


def test_a_number_whose_plan_cannot_tell_mobile_from_landline_takes_either_kind() -> None:
    assert parse_phone("+1 650 253 0000", kind="mobile").kinds == ("mobile", "landline")
    assert parse_phone("+1 650 253 0000", kind="landline").e164 == "+16502530000"


@pytest.mark.parametrize(
    ("typed", "given", "message"),
    [
        ("13812345678", "landline", "is a mobile number: kind mobile, not landline"),
        ("010-12345678", "mobile", "is a landline number: kind landline, not mobile"),
        ("13812345678", "other", "is a mobile number: kind mobile, not other"),
        (
            "400-810-8888",
            "mobile",
            "is neither a mobile nor a landline number: kind other, not mobile",
        ),
    ],
)
def test_a_number_of_another_kind_than_given_is_refused(
    typed: str, given: str, message: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_phone(typed, kind=given, field="phones[0].number")  # type: ignore[arg-type]
    assert refused.value.errors == [{"field": "phones[0].number", "message": message}]


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("12345678", "a landline needs its area code"),
        ("62345678", "a landline needs its area code"),
        ("12345", "too short"),
        ("1381234567890123", "too long"),
        ("19412345678", "not a mobile number in use in China"),
        ("not a phone", "not a phone number"),
        ("", "not a phone number"),
        ("13812345678 ext 12", "extensions are not kept"),
        ("+999 1234 5678", "not a phone number"),
    ],
)
def test_invalid_numbers_are_refused_with_a_reason_naming_the_field(
    typed: str, reason: str
) -> None:
    with pytest.raises(InvalidField) as refused:
        parse_phone(typed, field="phones[1].number")
    [error] = refused.value.errors or []
    assert error["field"] == "phones[1].number"
    assert reason in error["message"]


def test_the_lookup_hash_is_hmac_sha256_of_the_e164_number_under_the_key() -> None:
    key = b"k" * 32
    one = phone_lookup_hash(normalise_phone("138 1234 5678"), key=key)
    assert one == phone_lookup_hash(normalise_phone("+86-138-1234-5678"), key=key)
    assert one == hmac.new(key, b"+8613812345678", hashlib.sha256).hexdigest()
    assert one == phone_lookup_hash("+8613812345678", key=key.decode())
    assert one != phone_lookup_hash("+8613812345678", key=b"another key")
    assert one != phone_lookup_hash("+8613812345679", key=key)
    assert "13812345678" not in one


def test_the_existing_callers_keep_working() -> None:
    assert normalise_phone("138 1234 5678") == "+8613812345678"
    assert normalise_phone("010-12345678", field="staff_phone") == "+861012345678"
    assert masked_phone_query("5678") == ("5678", True)
    assert masked_phone_query("138 1234 5678") == ("+8613812345678", False)
    with pytest.raises(InvalidField) as refused:
        masked_phone_query("345678")
    assert refused.value.errors == [
        {"field": "q", "message": "search a phone by its last 4 digits or the whole number"}
    ]


def test_validity_and_kind_agree_with_phonenumbers_on_many_numbers() -> None:
    """``parse_phone`` asks the numbering plan once (``number_type``) where phonenumbers'
    ``is_valid_number`` and ``number_type`` each walk it: both answer the same on generated
    numbers, typed ones of bench/people.py and random digits of every length and country."""
    import random

    import phonenumbers
    from phonenumbers import PhoneNumberType

    from bench.people import people

    rng = random.Random(8)
    typed = [p.phone_typed for p in people(3000, seed=3)]
    prefixes = ["", "1", "13", "19", "0", "010", "0755", "400", "+1", "+44", "+852", "+86", "+7"]
    typed += [
        rng.choice(prefixes) + "".join(rng.choices("0123456789", k=rng.randrange(3, 13)))
        for _ in range(6000)
    ]
    kinds = {
        PhoneNumberType.MOBILE: ("mobile",),
        PhoneNumberType.FIXED_LINE: ("landline",),
        PhoneNumberType.FIXED_LINE_OR_MOBILE: ("mobile", "landline"),
    }
    valid = 0
    for raw in typed:
        try:
            parsed = phonenumbers.parse(raw, "CN")
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(parsed):
            valid += 1
            got = parse_phone(raw)
            assert got.e164 == phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.E164
            )
            assert got.kinds == kinds.get(phonenumbers.number_type(parsed), ("other",)), raw
        else:
            with pytest.raises(InvalidField):
                parse_phone(raw)
    assert 3000 <= valid <= len(typed) - 1000  # both outcomes were tried, many times


def _typings(digits: str) -> list[str]:
    """An 11-digit mobile the ways staff type it (bench/people.py's, and with +86)."""
    grouped = f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    return [digits, grouped, grouped.replace(" ", "-"), f"+86{digits}", f"+86 {grouped}"]


def test_the_mainland_mobile_shortcut_parses_as_phonenumbers_does_for_every_prefix() -> None:
    """``parse_phone`` skips phonenumbers' parsing for a mainland mobile typed the usual ways,
    and asks the plan a mobile's type once per block of its first seven digits: over every
    five-digit prefix from 130 to 199 (the plan decides a mobile's validity by at most five
    digits: 1740x, 1610x), typed each way, with suffixes that look like dialling prefixes too
    (00…) and two numbers of each block 1xxxx00, the number it builds is phonenumbers.parse's,
    and parse_phone's answer (E.164 and kinds, or the refusal) is the one phonenumbers gives."""
    import phonenumbers
    from phonenumbers import PhoneNumberType

    from customer_service.customers.phones import typed_mainland_mobile

    def reference(raw: str) -> tuple[str, tuple[str, ...]] | None:
        parsed = phonenumbers.parse(raw, "CN")
        kind = phonenumbers.number_type(parsed)
        if kind == PhoneNumberType.UNKNOWN:
            return None
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        return e164, {PhoneNumberType.MOBILE: ("mobile",)}.get(kind, ("other",))

    suffixes = ("000000", "999999", "001234", "500089")
    shortcut = mobiles = 0
    for prefix in range(13000, 20000):
        for n, suffix in enumerate(suffixes):
            digits = f"{prefix}{suffix}"
            raw = _typings(digits)[(prefix + n) % 5]
            fast = typed_mainland_mobile(raw)
            slow = phonenumbers.parse(raw, "CN")
            if fast is not None:
                shortcut += 1
                assert (fast.country_code, fast.national_number, fast.extension) == (
                    slow.country_code,
                    slow.national_number,
                    slow.extension,
                ), raw
                assert fast.italian_leading_zero in (None, False), raw
                assert not slow.italian_leading_zero, raw
            expected = reference(raw)
            if expected is None:
                with pytest.raises(InvalidField) as refused:
                    parse_phone(raw)
                message = refused.value.errors[0]["message"]  # type: ignore[index]
                assert message != "not a phone number", raw
            else:
                mobiles += expected[1] == ("mobile",)
                parsed = parse_phone(raw)
                assert (parsed.e164, parsed.kinds) == expected, raw
    assert shortcut >= 26_000  # everything but 179xx took the shortcut
    assert mobiles >= 10_000  # and most of the plan's mobile ranges are in


@pytest.mark.parametrize(
    "typed",
    [
        "010-12345678",
        "0755 1234 5678",
        "8613812345678",
        "0086 13812345678",
        "138.1234.5678",
        "(138) 1234 5678",
        " 13812345678",
        "１３８１２３４５６７８",
        "17951 13812345678",
        "17912345678",
        "+86 10 1234 5678",
        "13812345678 ext 12",
        "1381234567",
        "138123456789",
        "12345678901",
    ],
)
def test_anything_else_is_left_to_phonenumbers(typed: str) -> None:
    import phonenumbers

    from customer_service.customers.phones import typed_mainland_mobile

    assert typed_mainland_mobile(typed) is None
    try:
        parsed = phonenumbers.parse(typed, "CN")
    except phonenumbers.NumberParseException:
        with pytest.raises(InvalidField):
            parse_phone(typed)
        return
    if phonenumbers.is_valid_number(parsed) and not parsed.extension:
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        assert parse_phone(typed).e164 == e164
    else:
        with pytest.raises(InvalidField):
            parse_phone(typed)


def test_the_lookup_hash_from_a_keyed_copy_is_hmac_sha256_of_the_number() -> None:
    """``phone_lookup_hash`` copies an HMAC state that has absorbed the key (cached per key):
    the same digest as a new HMAC-SHA256 per number, for each key, given as text or bytes."""
    import hashlib
    import hmac

    numbers = ["+8613812345678", "+861012345678", "+14155550123", "", "+8675512345678"]
    for key in ("dev-phone-hash-key", "another key", "键"):
        for number in numbers * 2:  # the second time from the cached state
            expected = hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()
            assert phone_lookup_hash(number, key=key) == expected
            assert phone_lookup_hash(number, key=key.encode()) == expected


def test_the_mobile_blocks_kept_are_the_numbering_plan_s() -> None:
    """The ranges of five-digit blocks kept as mobile are, block for block, what phonenumbers'
    plan says of the block's first and last numbers (a new plan fails here: write them again)."""
    import phonenumbers

    from customer_service.customers.phones import _mobile_block_type

    for block in range(13000, 20000):
        for suffix in (0, 999_999):
            number = phonenumbers.PhoneNumber(
                country_code=86, national_number=block * 1_000_000 + suffix
            )
            assert _mobile_block_type(block) == phonenumbers.number_type(number), block
