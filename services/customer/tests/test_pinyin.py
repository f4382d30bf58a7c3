import re

import pytest
from pypinyin import Style, pinyin

from crm_libs.problems import InvalidField
from customer_service.customers.name_queries import normalise_name_query, spells_pinyin
from customer_service.customers.pinyin import MAX_READINGS, SURNAME_READINGS, name_search_keys


def test_a_name_is_stored_with_its_full_pinyin_and_initials() -> None:
    keys = name_search_keys("张三")
    assert keys.full == ("zhangsan",)
    assert keys.initials == ("zs",)
    assert keys.text == "zhangsan zs"


@pytest.mark.parametrize(
    ("name", "first", "initials", "not_read_as"),
    [
        ("单田芳", "shantianfang", "stf", "dantianfang"),
        ("曾国藩", "zengguofan", "zgf", "cengguofan"),
        ("解缙", "xiejin", "xj", "jiejin"),
        ("仇英", "qiuying", "qy", "chouying"),
        ("区志明", "ouzhiming", "ozm", "quzhiming"),
        ("朴槿惠", "piaojinhui", "pjh", "pujinhui"),
        ("查良镛", "zhaliangyong", "zly", "chaliangyong"),
        ("召建国", "shaojianguo", "sjg", "zhaojianguo"),
        ("缪秀英", "miaoxiuying", "mxy", "mouxiuying"),
        ("卜建国", "bujianguo", "bjg", "bojianguo"),
        ("种玉兰", "chongyulan", "cyl", "zhongyulan"),
        ("沈淑珍", "shenshuzhen", "ssz", "chenshuzhen"),
    ],
)
def test_polyphonic_surnames_read_as_surnames(
    name: str, first: str, initials: str, not_read_as: str
) -> None:
    keys = name_search_keys(name)
    assert keys.full[0] == first
    assert initials in keys.initials
    assert not_read_as not in keys.full


def test_a_surname_read_two_ways_as_a_surname_gets_both() -> None:
    assert name_search_keys("乐嘉").full == ("yuejia", "lejia")
    assert set(name_search_keys("覃玉梅").full) == {"qinyumei", "tanyumei"}
    assert name_search_keys("翟志刚").full == ("zhaizhigang", "dizhigang")


def test_the_surname_table_only_chooses_among_readings_pypinyin_knows() -> None:
    for surname, readings in SURNAME_READINGS.items():
        known = set(pinyin(surname, style=Style.NORMAL, heteronym=True)[0])
        assert set(readings) <= known, surname


@pytest.mark.parametrize(
    ("name", "first"),
    [
        ("长孙无忌", "zhangsunwuji"),
        ("尉迟恭", "yuchigong"),
        ("欧阳修", "ouyangxiu"),
        ("万俟卨", "moqixie"),
        ("诸葛亮", "zhugeliang"),
        ("司马光", "simaguang"),
    ],
)
def test_compound_surnames_read_as_one_surname(name: str, first: str) -> None:
    assert name_search_keys(name).full[0] == first


def test_a_given_name_reads_in_context_first_then_by_its_other_readings() -> None:
    assert name_search_keys("刘长江").full == ("liuchangjiang", "liuzhangjiang")
    assert name_search_keys("张朝晖").full[0] == "zhangzhaohui"
    assert "zhangchaohui" in name_search_keys("张朝晖").full
    assert set(name_search_keys("何乐").full) == {"hele", "heyue"}
    assert set(name_search_keys("李重阳").initials) == {"lcy", "lzy"}


def test_every_reading_of_a_polyphonic_given_name_is_searchable() -> None:
    keys = name_search_keys("单长乐")
    assert set(keys.full) == {"shanchangle", "shanzhangle", "shanchangyue", "shanzhangyue"}
    assert set(keys.initials) == {"scl", "szl", "scy", "szy"}


def test_readings_no_living_word_uses_spend_no_key() -> None:
    # pypinyin also lists 平 bing/beng/pian, 王 yu, 英 yang, 女 ru from old dictionaries.
    assert name_search_keys("王平").full == ("wangping",)
    assert name_search_keys("仇英").full == ("qiuying",)
    assert name_search_keys("吕女").full == ("lvnv",)


def test_keys_are_bounded_and_fewest_changes_come_first() -> None:
    keys = name_search_keys("沈重行长乐")
    assert len(keys.full) == MAX_READINGS
    assert len(keys.initials) <= MAX_READINGS
    base = keys.full[0]
    assert base == "shenchongxingchangle"
    # The next keys each change one syllable of the first.
    assert "shenzhongxingchangle" in keys.full[:5]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("John Smith", {"johnsmith", "john", "smith", "js"}),
        ("王Lily", {"wanglily", "wl"}),
        ("  Zhang San ", {"zhangsan", "zhang", "san", "zs"}),
        ("張三豐", {"zhangsanfeng", "zsf"}),
        ("ＬＩ　Ｍｉｎｇ", {"liming", "li", "ming", "lm"}),
        ("吕秀兰", {"lvxiulan", "lxl"}),
        ("张 建国", {"zhangjianguo", "zjg"}),
        ("(单)田芳", {"shantianfang", "stf"}),
    ],
)
def test_latin_mixed_and_traditional_names(name: str, expected: set[str]) -> None:
    assert set(name_search_keys(name).text.split()) == expected


def test_characters_pypinyin_cannot_read_spend_no_syllable() -> None:
    # 兙 (a unit of weight) is in the CJK block but not in pypinyin's dictionary.
    assert name_search_keys("张兙三").text == "zhangsan zs"
    assert name_search_keys("兙").text == ""
    assert set(name_search_keys("张长兙江").full) == {"zhangchangjiang", "zhangzhangjiang"}


@pytest.mark.parametrize(
    "name", ["张三", "曾国藩", "单长乐", "John Smith", "阿卜杜·热合曼", "王Lily", "", "123", "·"]
)
def test_the_stored_text_is_distinct_words_of_lower_case_letters(name: str) -> None:
    text = name_search_keys(name).text
    words = text.split()
    assert len(words) == len(set(words))
    assert text == "" or re.fullmatch(r"[a-z]+( [a-z]+)*", text)


@pytest.mark.parametrize(
    ("typed", "kind", "text", "spells"),
    [
        ("zs", "letters", "zs", False),
        ("zgf", "letters", "zgf", False),
        ("zhangs", "letters", "zhangs", True),
        ("Zhang San", "letters", "zhangsan", True),
        ("xi'an", "letters", "xian", True),
        ("lü", "letters", "lv", True),
        ("lu:xiu", "letters", "lvxiu", True),
        ("ＺＳ", "letters", "zs", False),
        ("smith", "letters", "smith", False),
        ("国藩", "name", "国藩", False),
        (" 曾 国藩 ", "name", "曾国藩", False),
        ("张s", "letters", "zhangs", True),
        ("单t", "letters", "shant", True),
    ],
)
def test_a_query_is_normalised(typed: str, kind: str, text: str, spells: bool) -> None:
    query = normalise_name_query(typed)
    assert (query.kind, query.text, query.spells_pinyin) == (kind, text, spells)


@pytest.mark.parametrize("typed", ["", "   ", "123", "张3", "!!", "zs%", "a_b"])
def test_a_query_that_is_no_name_is_refused_naming_the_field(typed: str) -> None:
    with pytest.raises(InvalidField) as refused:
        normalise_name_query(typed, field="q")
    assert refused.value.errors == [
        {"field": "q", "message": "search by a name, its pinyin or initials, or a phone number"}
    ]


def test_letters_query_gives_a_prefix_tsquery() -> None:
    assert normalise_name_query("ZS").tsquery == "zs:*"


@pytest.mark.parametrize(
    "name",
    ["张三", "曾国藩", "单田芳", "长孙无忌", "刘长江", "单长乐", "吕秀兰", "朴槿惠", "王Lily"],
)
def test_what_staff_type_is_a_prefix_of_a_stored_key(name: str) -> None:
    """Initials, a pinyin prefix or the Han name typed by staff reach the stored keys."""
    keys = name_search_keys(name)
    words = keys.text.split()
    typed = [keys.initials[0], keys.full[0][:3], keys.full[-1], keys.full[0].upper()]
    for query in (normalise_name_query(t) for t in typed):
        assert query.kind == "letters"
        assert any(w.startswith(query.text) for w in words), (name, query)


def test_spelling_pinyin_allows_only_the_last_syllable_cut_short() -> None:
    assert spells_pinyin("zhangsan")
    assert spells_pinyin("zhangsa")
    assert spells_pinyin("xian")
    assert not spells_pinyin("zs")
    assert not spells_pinyin("zhangss")
    assert not spells_pinyin("mm")  # no interjections m/ng/hm: mm is initials


def test_a_given_name_in_context_is_its_words_readings_as_pypinyin_reads_the_whole() -> None:
    """A given name's reading in context, joined from the readings of the words pypinyin cuts
    it into, each kept, is ``lazy_pinyin`` of the whole: over phrases of its dictionary alone,
    overlapping, side by side and with a character before or after, characters it cannot read,
    compatibility ideographs, and the benchmark's given names."""
    import itertools
    import random

    from pypinyin import lazy_pinyin
    from pypinyin.phrases_dict import phrases_dict

    from bench.people import people
    from customer_service.customers import pinyin

    rng = random.Random(6)
    phrases = sorted(phrases_dict)[::15]
    chars = ["长", "乐", "行", "重", "朝", "和", "兙", "〇", "\uf900", "\ufa18", "㐀", "\ue815"]
    texts = [p.name[1:] for p in people(3000, seed=9)]
    for phrase in phrases:
        other = rng.choice(phrases)
        char = rng.choice(chars)
        texts += [phrase, phrase + other, phrase[1:] + other, char + phrase, phrase + char]
    texts += ["".join(c) for c in itertools.product(chars, repeat=2)]
    texts += ["".join(rng.choices(chars, k=rng.randrange(1, 6))) for _ in range(500)]
    phrased = 0
    for text in texts:
        expected = lazy_pinyin(text, errors=lambda c: "?" * len(c))
        assert pinyin._in_context(text) == expected, text
        phrased += any(w in phrases_dict for w in pinyin.pypinyin_words(text))
    assert phrased > 10_000  # phrases of its dictionary read as phrases, many times
