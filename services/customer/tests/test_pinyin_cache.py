"""A name's keys built from its given name's cached combinations are the keys its whole reading
gives (surname and given name combined, fewest changes first), for every kind of name; and the
stored text of a name of Han characters alone, written without building its keys, is theirs."""

import itertools

from bench.people import MALE_NAMES, TAIL_SURNAMES, TOP_SURNAMES, people
from customer_service.customers import pinyin
from customer_service.customers.pinyin import NameKeys

POLYPHONIC_GIVEN = ["长乐", "乐", "重阳", "朝阳", "行健", "长江", "单", "曾", "解放", "传", "和平"]
OTHERS = [
    "",
    "·",
    "曾",
    "欧阳",
    "欧阳长乐",
    "单于长乐",
    "John Smith",
    "王Lily",
    "lily",
    "(张三)",
    "张 三",
    "龘龘",
    "张〇",
    "乐乐乐乐乐乐",
    "覃朝重行长乐",
    "兙",  # not in pypinyin's dictionary
    "兙兙",
    "兙三",
    "㐀㐁",  # extension A
    "王\uf900",  # a compatibility ideograph (豈): NFKC gives the unified one
    "〇〇",
    "单长乐",
    "覃",
    "Ｗang芳",
]


def _whole_reading(name: str) -> NameKeys:
    """The keys as the name's whole reading gives them (what was computed per name before)."""
    normalised = pinyin.unicodedata.normalize("NFKC", name).strip().lower()
    surname, given = pinyin._split_surname(normalised)
    options = [*pinyin._surname_options(surname), *pinyin._given_options(given)]
    if not options:
        return NameKeys(full=(), initials=())
    combos = pinyin._fewest_changes_first(options, pinyin.MAX_READINGS)
    full = tuple(dict.fromkeys("".join(c) for c in combos))
    initials = tuple(dict.fromkeys("".join(s[0] for s in c) for c in combos))
    latin = pinyin.LATIN_WORD.findall(normalised)
    if latin and not pinyin.HAN.search(normalised) and len(latin) > 1:
        full = tuple(dict.fromkeys((*full, *latin)))
    return NameKeys(full=full, initials=initials)


def test_keys_from_the_given_name_s_combinations_are_the_whole_reading_s() -> None:
    surnames = [
        *(s for s, _ in TOP_SURNAMES),
        *TAIL_SURNAMES,
        *pinyin.SURNAME_READINGS,
        *pinyin.COMPOUND_SURNAMES,
    ]
    givens = ["", *POLYPHONIC_GIVEN, *MALE_NAMES[:20]]
    names = [s + g for s, g in itertools.product(surnames, givens)]
    names += [p.name for p in people(2000, seed=7)] + OTHERS
    several_readings = 0
    for name in names:
        keys = pinyin.name_search_keys(name)
        assert keys == _whole_reading(name), name
        assert pinyin.name_keys_text(name) == keys.text == _whole_reading(name).text, name
        several_readings += len(keys.full) > 1
    assert several_readings > 1000  # 多音字 surnames and given names among them
