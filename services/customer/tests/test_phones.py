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


def test_the_lookup_hash_from_the_key_s_pads_is_hmac_sha256_of_the_number() -> None:
    """``phone_lookup_hash`` copies SHA-256 states that have absorbed the key's inner and outer
    pads (cached per key): the same digest as ``hmac``'s HMAC-SHA256 per number, for keys of
    every length around the hash's 64-byte block (a longer key is hashed first), given as text
    or bytes, and numbers of every length."""
    import hashlib
    import hmac
    import random

    rng = random.Random(5)
    numbers = ["+8613812345678", "+861012345678", "+14155550123", "", "+8675512345678"]
    numbers += ["+" + "".join(rng.choices("0123456789", k=n)) for n in range(1, 40)]
    keys: list[str | bytes] = ["dev-phone-hash-key", "another key", "键", ""]
    keys += [bytes(rng.randrange(256) for _ in range(n)) for n in (1, 32, 63, 64, 65, 100, 200)]
    keys += ["k" * n for n in (63, 64, 65, 128)]
    for key in keys:
        raw = key.encode() if isinstance(key, str) else key
        for number in numbers * 2:  # the second time from the cached states
            expected = hmac.new(raw, number.encode(), hashlib.sha256).hexdigest()
            assert phone_lookup_hash(number, key=key) == expected, (key, number)


def _landline_typings(area: str, number: str) -> list[str]:
    """A landline the ways staff type it (bench/people.py's, and more)."""
    split = f"{number[:-4]} {number[-4:]}"
    return [
        area + number,
        f"{area}-{number}",
        f"{area} {split}",
        f"{area}-{split.replace(' ', '-')}",
        f"{area} {number}",
        f"{area}-{split}",
    ]


def test_the_mainland_landline_shortcut_parses_as_phonenumbers_does_for_every_area_code() -> None:
    """``parse_phone`` skips phonenumbers' parsing for a mainland landline typed the usual ways
    (its type is still the plan's): over every two- and three-digit area code after the trunk
    0, numbers of seven and eight digits (some starting 0 or 1, as a dialling or carrier prefix
    would), typed each way, the number it builds is phonenumbers.parse's, every field of it,
    and parse_phone's answer (E.164 and kinds, or the refusal and its reason) is the one the
    whole of phonenumbers gives."""
    import random

    import phonenumbers
    from phonenumbers import PhoneNumberType

    from customer_service.customers.phones import typed_mainland_landline

    def reference(raw: str) -> tuple[str, tuple[str, ...]] | None:
        parsed = phonenumbers.parse(raw, "CN")
        kind = phonenumbers.number_type(parsed)
        if kind == PhoneNumberType.UNKNOWN:
            return None
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        kinds = {
            PhoneNumberType.MOBILE: ("mobile",),
            PhoneNumberType.FIXED_LINE: ("landline",),
            PhoneNumberType.FIXED_LINE_OR_MOBILE: ("mobile", "landline"),
        }
        return e164, kinds.get(kind, ("other",))

    rng = random.Random(11)
    shortcut = landlines = refused = 0
    for area in [f"0{a}" for a in range(10, 100)] + [f"0{a}" for a in range(100, 1000)]:
        for length in (7, 8):
            first = rng.choice("0123456789")
            number = first + "".join(rng.choices("0123456789", k=length - 1))
            raw = _landline_typings(area, number)[(int(area) + length) % 6]
            fast = typed_mainland_landline(raw)
            assert fast is not None, raw
            shortcut += 1
            assert fast == phonenumbers.parse(raw, "CN"), raw
            expected = reference(raw)
            if expected is None:
                refused += 1
                with pytest.raises(InvalidField) as refusal:
                    parse_phone(raw)
                slow = phonenumbers.parse(raw.replace("-", "–"), "CN")  # not the shortcut's
                with pytest.raises(InvalidField) as slow_refusal:
                    parse_phone(raw.replace("-", "–"))
                assert slow == fast
                assert refusal.value.errors == slow_refusal.value.errors, raw
            else:
                landlines += expected[1] == ("landline",)
                parsed = parse_phone(raw)
                assert (parsed.e164, parsed.kinds) == expected, raw
    assert shortcut == 1980
    assert landlines >= 300 and refused >= 300  # both answers, many times


@pytest.mark.parametrize(
    "typed",
    [
        "00574-52452397",
        "0574--52452397",
        "0574-52452",
        "0574-5245239712",
        "(0574)52452397",
        "0574/52452397",
        " 0574-52452397",
        "０５７４-52452397",
        "+86 574 5245 2397",
        "574-52452397",
    ],
)
def test_a_landline_typed_otherwise_is_left_to_phonenumbers(typed: str) -> None:
    from customer_service.customers.phones import typed_mainland_landline

    assert typed_mainland_landline(typed) is None


def test_a_list_of_one_phone_is_read_as_the_whole_list_s_rules_read_it() -> None:
    """``parse_phones`` of a single number (no separate ``phone``) takes a shorter way: over
    mobiles, landlines, service numbers and invalid ones, each kind given or not, primary or
    not, its list or its refusal (the problem's fields and messages) is the whole list's."""
    from bench.people import people
    from crm_libs.problems import ProblemError
    from customer_service.customers import profile
    from customer_service.customers.schemas import PhoneIn

    numbers = [p.phone_typed for p in people(300, seed=4)]
    numbers += ["138 1234 5678", "010-12345678", "400-810-8888", "+852 9123 4567", "12345"]
    numbers += ["19412345678", "13812345678 ext 12", "not a phone", "+1 650 253 0000"]

    def outcome(read: object, entry: PhoneIn) -> object:
        try:
            return read([entry])  # type: ignore[operator]
        except ProblemError as exc:
            return type(exc), exc.status, exc.errors

    answers = set()
    for number in numbers:
        for kind in (None, "mobile", "landline", "other"):
            for primary in (False, True):
                entry = PhoneIn(number=number, kind=kind, primary=primary)
                short = outcome(lambda e: profile.parse_phones(e, None, current=[]), entry)
                whole = outcome(lambda e: profile._phone_list(e, None), entry)
                assert short == whole, (number, kind, primary)
                answers.add(type(short).__name__)
    assert answers == {"list", "tuple"}  # lists and refusals, both


def test_a_mobile_typed_as_its_digits_alone_reads_as_the_pattern_reads_it() -> None:
    """Eleven ASCII digits are read without the typed-mobile pattern: for every three first
    digits, and digits of other scripts, what it reads is what the pattern's reading gives."""
    import random

    from customer_service.customers import phones

    def by_pattern(raw: str) -> str | None:
        match = phones._MAINLAND_MOBILE_TYPED.fullmatch(raw)
        digits = match.group(1).replace(" ", "").replace("-", "") if match else None
        return None if digits is None or digits.startswith("179") else digits

    rng = random.Random(2)
    read = 0
    for head in range(1000):
        for _ in range(3):
            raw = f"{head:03d}" + "".join(rng.choices("0123456789", k=8))
            assert phones._typed_mainland_digits(raw) == by_pattern(raw), raw
            read += phones._typed_mainland_digits(raw) is not None
            wide = raw.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
            assert phones._typed_mainland_digits(wide) == by_pattern(wide) is None, wide
    assert read == 3 * 69  # 130-199 but 179
