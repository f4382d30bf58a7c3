"""The benchmark's generated customer files: deterministic, and valid by the service's own rules."""

from collections import Counter
from datetime import UTC, datetime

from bench.people import TOP_SURNAMES, people
from customer_service.customers.calendars import check_birthday
from customer_service.customers.phones import parse_phone
from customer_service.customers.pinyin import name_search_keys

COUNT = 3000


def test_the_same_seed_gives_the_same_files_and_another_seed_others() -> None:
    first = list(people(COUNT, seed=11))
    assert first == list(people(COUNT, seed=11))
    assert first != list(people(COUNT, seed=12))
    assert [p.seq for p in first] == list(range(1, COUNT + 1))


def test_phones_birthdays_and_keys_are_valid_by_the_service_s_rules() -> None:
    now = datetime.now(UTC)
    for person in people(COUNT, seed=5):
        parsed = parse_phone(person.phone_typed, kind=person.phone_kind)  # type: ignore[arg-type]
        assert parsed.e164 == person.phone
        assert parsed.tail == person.phone_tail
        check_birthday(
            person.birthday,
            person.birthday_calendar,  # type: ignore[arg-type]
            timezone="Asia/Shanghai",
            now=now,
        )
        assert person.name_keys == name_search_keys(person.name).text


def test_the_files_look_like_the_stores_customers() -> None:
    rows = list(people(20_000, seed=3))
    surnames = Counter(p.name[0] for p in rows)
    top = {s for s, _ in TOP_SURNAMES}
    share_top = sum(n for s, n in surnames.items() if s in top) / len(rows)
    assert 0.8 < share_top < 0.9
    assert surnames.most_common(3)[0][0] in {"王", "李", "张"}
    born = Counter(int(p.birthday[:4]) for p in rows)
    assert sum(n for year, n in born.items() if 1940 <= year <= 1975) / len(rows) > 0.8
    kinds = Counter(p.phone_kind for p in rows)
    assert 0.05 < kinds["landline"] / len(rows) < 0.12
    calendars = Counter(p.birthday_calendar for p in rows)
    assert 0.2 < calendars["lunar"] / len(rows) < 0.4
    assert {p.gender for p in rows} == {"female", "male", "other"}
    assert {len(p.name) for p in rows} >= {2, 3, 4}
