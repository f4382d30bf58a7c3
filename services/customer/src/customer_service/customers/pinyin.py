"""Pinyin search keys for a customer's name (what a typed query means: name_queries.py).

A file named 曾国藩 is stored with the keys ``zengguofan zgf`` (full pinyin without tones, then
initials); staff find it by typing ``zgf``, ``zengg`` or ``zengguofan``. Names are read with
pypinyin, in three steps:

- **The surname reads as a surname.** pypinyin has no surname mode (mozillazg/python-pinyin#297
  is open and the maintainer says so), and its phrase dictionary names only a few surnames by
  accident (``单姓``, ``姓解``, ``姓仇``) and misleads on others (``种姓`` is the word for caste,
  zhǒng). So the readings of polyphonic single surnames are the table ``SURNAME_READINGS``
  below; every reading in it is one pypinyin lists for the character (a test checks), so the
  table only chooses, it invents nothing. Compound surnames (欧阳, 长孙, 尉迟…) are read as
  one phrase by pypinyin, whose phrase dictionary has the polyphonic ones right.
- **The given name reads in context first** (pypinyin's phrase matching: 长江 is changjiang),
  then with each other reading pypinyin lists for its polyphonic characters, so that a search
  by either reading finds the file: 单长乐 also gets ``shanzhangle``, ``shanchangyue``…, up to
  ``MAX_READINGS`` full-pinyin keys, fewest changed characters first.
- **Latin letters pass through lower-cased**: ``John Smith`` is ``johnsmith js john smith``
  (each Latin word is a key too, so the family name finds it); ``王Lily`` is ``wanglily wl``.

ü is written ``v`` (lv, nv), as on every pinyin keyboard.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache

from pypinyin import Style, lazy_pinyin, pinyin
from pypinyin.phonetic_symbol import phonetic_symbol
from pypinyin.phrases_dict import phrases_dict
from pypinyin.seg.simpleseg import seg as pypinyin_words

from customer_service.customers.pinyin_words import READINGS_IN_WORDS

MAX_READINGS = 8
"""At most this many full-pinyin keys per name (and as many initials keys at most)."""

# Polyphonic single-character surnames and how they read as surnames, commonest first.
# Also listed: surnames whose default reading is right but whose other readings never apply to
# the surname (沈 is never chen), so that they spend no key on a reading nobody types.
SURNAME_READINGS: dict[str, tuple[str, ...]] = {
    "单": ("shan",),
    "曾": ("zeng",),
    "解": ("xie",),
    "仇": ("qiu",),
    "区": ("ou",),
    "朴": ("piao",),
    "查": ("zha",),
    "覃": ("qin", "tan"),
    "缪": ("miao",),
    "翟": ("zhai", "di"),
    "尉": ("wei",),
    "乐": ("yue", "le"),
    "盖": ("ge", "gai"),
    "重": ("chong",),
    "种": ("chong",),
    "繁": ("po",),
    "粘": ("nian",),
    "都": ("du",),
    "六": ("lu",),
    "薄": ("bo",),
    "柏": ("bai",),
    "牟": ("mou", "mu"),
    "阚": ("kan",),
    "卜": ("bu",),
    "员": ("yun",),
    "莘": ("shen",),
    "召": ("shao",),
    "秘": ("bi",),
    "句": ("gou",),
    "乜": ("nie",),
    "折": ("she",),
    "藏": ("zang",),
    "扎": ("za",),
    "隗": ("wei", "kui"),
    "郇": ("xun", "huan"),
    "颉": ("xie", "jie"),
    "洗": ("xian",),
    "眭": ("sui",),
    "炅": ("gui", "jiong"),
    "逄": ("pang",),
    "长": ("chang",),
    "沈": ("shen",),
    "陆": ("lu",),
    "石": ("shi",),
    "宿": ("su",),
    "贾": ("jia",),
    "殷": ("yin",),
    "居": ("ju",),
    "盛": ("sheng",),
    "车": ("che",),
    "俞": ("yu",),
    "强": ("qiang",),
    "万": ("wan",),
    "冯": ("feng",),
    "任": ("ren",),
    "那": ("na",),
    "褚": ("chu",),
}

# Compound surnames in use today; their readings come from pypinyin's phrase dictionary.
# 单于 is left out on purpose: practically extinct, while 单 + a given name starting 于 is not.
COMPOUND_SURNAMES = frozenset(
    (  # noqa: SIM905 (names read better as text than as a list literal)
        "欧阳 司马 诸葛 上官 长孙 尉迟 万俟 令狐 皇甫 公孙 慕容 东方 夏侯 司徒 端木 澹台 宇文 "
        "轩辕 南宫 呼延 闻人 申屠 赫连 拓跋 百里 东郭 西门 钟离 独孤 公羊 太史 亓官 司空"
    ).split()
)

# One Han character (CJK unified ideographs, extension A, the compatibility block, 〇), or one
# run of Latin letters; anything else (spaces, ·, digits, brackets) separates and is dropped.
_TOKEN = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[a-z]+")
HAN = re.compile(r"[\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[a-z]+")
_HAN_NAME = re.compile(f"(?:{HAN.pattern})+")


@dataclass(frozen=True, slots=True)
class NameKeys:
    """The search keys of one name: full pinyin readings and their initials, best first."""

    full: tuple[str, ...]
    initials: tuple[str, ...]

    @property
    def text(self) -> str:
        """The keys as one space-separated text to store, e.g. ``zhangsan zs``.

        Every key is a word of lower-case a-z, so a prefix of *any* key is a prefix of one word:
        index ``to_tsvector('simple', name_keys)`` with GIN and query
        ``to_tsvector('simple', name_keys) @@ to_tsquery('simple', 'zs:*')`` (GIN finds the
        words with that prefix in its sorted entry tree). ``NameQuery.tsquery`` gives the
        right-hand side. Over 1,000,000 files from ``bench/people.py`` (one store's first 20
        by id), a selective prefix (``zengguof``) took 0.1 ms and initials matching thousands
        (``zs``, ``chenj``) 6-17 ms; a pg_trgm GIN index on ``' ' || name_keys`` with
        ``LIKE '% zs%'`` was about as fast on those but 3-9 ms on the selective ones. The first
        word is the best full reading, fit to sort by (``split_part(name_keys, ' ', 1)``).
        """
        return " ".join(dict.fromkeys((*self.full, *self.initials)))


def name_search_keys(name: str) -> NameKeys:
    """The pinyin search keys of a customer's name (see the module docstring for the rules)."""
    return _name_search_keys(unicodedata.normalize("NFKC", name).strip().lower())


@lru_cache(maxsize=65536)
def name_keys_text(name: str) -> str:
    """``name_search_keys(name).text``, kept per name as written (an import stores it for each
    row, and a sheet's names repeat)."""
    normalised = unicodedata.normalize("NFKC", name).strip().lower()
    if _HAN_NAME.fullmatch(normalised):
        text = _han_name_text(normalised)
        if text is not None:
            return text
    return _name_search_keys(normalised).text


def _han_name_text(name: str) -> str | None:
    """The keys' text of a name of Han characters alone whose surname has one reading (most of
    a sheet's names, and new ones: a few µs each of an import's rows), as ``_name_search_keys``
    makes it, without its splitting, Latin words and ``NameKeys``; None for any other name.
    test_pinyin_cache.py compares the two."""
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES else name[0]
    heads = _surname_heads(surname)
    if heads is None:
        return None
    head, initial = heads
    full_tail, initials_tail = _given_keys(name[len(surname) :])
    if len(full_tail) == 1:
        if not head and not full_tail[0]:
            return ""
        full, initials = head + full_tail[0], initial + initials_tail[0]
        return full if full == initials else f"{full} {initials}"
    keys = [*(head + tail for tail in full_tail), *(initial + tail for tail in initials_tail)]
    return " ".join(dict.fromkeys(keys))


@lru_cache(maxsize=65536)
def _name_search_keys(name: str) -> NameKeys:
    surname, given = _split_surname(name)
    heads = _surname_heads(surname)
    if heads is not None:
        # A surname of one reading (most): the name's combinations are the given name's, each
        # after the surname, in the same order; the given name's are kept per given name, as
        # a sheet's whole names rarely repeat but their given names do.
        head, initial = heads
        full_tail, initials_tail = _given_keys(given)
        full: tuple[str, ...]
        initials: tuple[str, ...]
        if len(full_tail) == 1:
            if not head and not full_tail[0]:
                return NameKeys(full=(), initials=())
            full = (head + full_tail[0],)
            initials = (initial + initials_tail[0],)
        else:
            full = tuple(dict.fromkeys(head + tail for tail in full_tail))
            initials = tuple(dict.fromkeys(initial + tail for tail in initials_tail))
    else:
        options = [*_surname_options(surname), *_given_options(given)]
        combos = _fewest_changes_first(options, MAX_READINGS)
        full = tuple(dict.fromkeys("".join(c) for c in combos))
        initials = tuple(dict.fromkeys("".join(s[0] for s in c) for c in combos))
    latin_words = LATIN_WORD.findall(name)
    if latin_words and not HAN.search(name) and len(latin_words) > 1:
        # A foreign name: its family name may come last, so every word is a key of its own.
        full = tuple(dict.fromkeys((*full, *latin_words)))
    return NameKeys(full=full, initials=initials)


@lru_cache(maxsize=4096)
def _surname_heads(surname: str) -> tuple[str, str] | None:
    """A surname of one reading as the keys begin with it (full, initials); None for one read
    several ways."""
    options = _surname_options(surname)
    if any(len(o) > 1 for o in options):
        return None
    return "".join(o[0] for o in options), "".join(o[0][0] for o in options)


def _split_surname(name: str) -> tuple[str, str]:
    """(surname, given name); no surname when the name does not start with a Han character."""
    first = _TOKEN.search(name)
    name = name[first.start() :] if first else ""  # leading punctuation: "·张三", "(张三)"
    if name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    if name and HAN.match(name):
        return name[0], name[1:]
    return "", name


@lru_cache(maxsize=4096)
def _surname_options(surname: str) -> tuple[tuple[str, ...], ...]:
    if not surname:
        return ()
    if len(surname) > 1:  # a compound surname: one phrase, one reading
        return tuple((s,) for s in lazy_pinyin([surname]))
    readings = SURNAME_READINGS.get(surname) or _char_readings(surname, None)
    return (readings,) if readings else ()


@lru_cache(maxsize=131072)
def _given_keys(given: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The given name's reading combinations (``_fewest_changes_first``) as full pinyin and as
    initials, one pair per combination (not made unique: the surname goes in front first)."""
    combos = _fewest_changes_first(list(_given_options(given)), MAX_READINGS)
    return (
        tuple("".join(c) for c in combos),
        tuple("".join(s[0] for s in c) for c in combos),
    )


@lru_cache(maxsize=131072)
def _given_options(given: str) -> tuple[tuple[str, ...], ...]:
    """Per syllable of a given name, its readings: the reading in context first."""
    tokens = _TOKEN.findall(given)
    if not tokens:
        return ()
    # pypinyin reads the Han characters as a phrase where it can (长江 → chang jiang).
    han = "".join(t for t in tokens if HAN.match(t))
    read = _in_context(han) if han else []
    # One reading per character (a "?" for one pypinyin cannot read), else no context at all.
    in_context = iter(read if len(read) == len(han) else [None] * len(han))
    options: list[tuple[str, ...]] = []
    for token in tokens:
        if not HAN.match(token):
            options.append((token,))
            continue
        readings = _char_readings(token, next(in_context))
        if readings:  # a character pypinyin cannot read cannot be typed either: no syllable
            options.append(readings)
    return tuple(options)


def _in_context(han: str) -> list[str]:
    """``lazy_pinyin(han)``, a character it cannot read as "?": pypinyin cuts the text into
    words (a phrase of its dictionary, or one character), reads each word alone and joins
    their readings, so each word's reading is kept and a name's is its words' in order. A
    sheet's new given names are made of the same few thousand characters, and pypinyin's
    Python layers cost some 20 µs a name (test_pinyin.py compares the two)."""
    return [reading for word in pypinyin_words(han) for reading in _word_in_context(word)]


@lru_cache(maxsize=65536)
def _word_in_context(word: str) -> tuple[str, ...]:
    return tuple(lazy_pinyin(word, errors=_unreadable))


def _unreadable(chars: str) -> str:
    return "?" * len(chars)


@cache
def _heteronyms(char: str) -> tuple[str, ...]:
    """A character's readings in use: pypinyin's default, then the others it lists that some
    word of its phrase dictionary uses (平 has bing, beng and pian in old dictionaries; nobody
    reads a name so, and each such reading would spend a key)."""
    found = pinyin(char, style=Style.NORMAL, heteronym=True, errors=lambda _c: "?")
    readings = [r for r in (found[0] if found else []) if r.isascii() and r.isalpha()]
    in_words = _readings_in_words().get(char, frozenset())
    return tuple(dict.fromkeys(r for i, r in enumerate(readings) if i == 0 or r in in_words))


@cache
def _readings_in_words() -> dict[str, frozenset[str]]:
    """Per polyphonic character, the toneless readings that words of pypinyin's phrase
    dictionary give it, as customers/pinyin_words.py keeps them (``readings_in_phrases``)."""
    return {
        char: frozenset(readings.split(","))
        for char, _, readings in (entry.partition(":") for entry in READINGS_IN_WORDS.split())
    }


def readings_in_phrases() -> dict[str, frozenset[str]]:
    """Per character, the toneless readings that words of pypinyin's phrase dictionary give it.

    That dictionary keeps only words whose reading differs from the characters' defaults, so a
    reading found there is a living non-default reading (长 zhang in 长大, 乐 yue in 音乐).
    """
    found: dict[str, set[str]] = {}
    for phrase, readings in phrases_dict.items():
        if len(phrase) != len(readings):
            continue
        for char, char_readings in zip(phrase, readings, strict=True):
            found.setdefault(char, set()).update(toneless(r) for r in char_readings)
    return {char: frozenset(r) for char, r in found.items()}


def _char_readings(char: str, in_context: str | None) -> tuple[str, ...]:
    """A character's readings, the one read in context (or pypinyin's default) first."""
    readings = _heteronyms(char)
    if in_context and in_context.isalpha() and in_context not in readings:
        readings = (in_context, *readings)
    if in_context and in_context in readings:
        return (in_context, *(r for r in readings if r != in_context))
    return readings


def _fewest_changes_first(options: list[tuple[str, ...]], limit: int) -> list[tuple[str, ...]]:
    """Reading combinations, the first readings first, then those changing one syllable, then
    two…, stopping at ``limit``: bounded work however many polyphonic characters a name has."""
    base = tuple(o[0] for o in options)
    combos = [base]
    polyphonic = [i for i, o in enumerate(options) if len(o) > 1]
    for changed in range(1, len(polyphonic) + 1):
        for positions in itertools.combinations(polyphonic, changed):
            for alternatives in itertools.product(*(options[i][1:] for i in positions)):
                combo = list(base)
                for i, reading in zip(positions, alternatives, strict=True):
                    combo[i] = reading
                combos.append(tuple(combo))
                if len(combos) >= limit:
                    return combos
    return combos


# Tone-marked letters to plain ones (ǚ → v, as pypinyin's NORMAL style writes it), and combining
# marks dropped: a translation table is some twenty times faster than pypinyin's to_normal.
_TONELESS = {ord(k): v.rstrip("1234") for k, v in phonetic_symbol.items() if len(k) == 1} | {
    mark: None for mark in range(0x300, 0x370)
}


def toneless(reading: str) -> str:
    return reading.translate(_TONELESS)
