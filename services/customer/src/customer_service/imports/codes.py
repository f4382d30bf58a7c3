"""Coded fields as stores write them in spreadsheets (男, 农历, 公园…), and the codes they mean.

Each list of codes is defined here once; the words map onto them.
"""

import functools
import re
import unicodedata
from collections.abc import Mapping

GENDERS = ("female", "male", "other")
BIRTHDAY_CALENDARS = ("solar", "lunar")
# DOMAIN.md §1 "Source" (收档渠道), in its order.
SOURCE_CHANNELS = (
    "public_place",  # 公园、广场
    "lecture",  # 科普讲座
    "senior_activity",  # 赞助的老年活动
    "referral",  # 转介绍
    "media",  # 媒体互动
    "partner",  # 合作联盟
    "walk_in",  # 进店
    "import",  # 导入
    "other",
)

_GENDER_WORDS = {
    "female": ("女", "女性", "女士", "f", "female"),
    "male": ("男", "男性", "男士", "先生", "m", "male"),
    "other": ("其他", "其它", "other"),
}
_CALENDAR_WORDS = {
    "solar": ("公历", "阳历", "新历", "solar"),
    "lunar": ("农历", "阴历", "旧历", "lunar"),
}
# Tried whole first, then (the Chinese words only) as a part of the cell ("公园晨练" →
# public_place), longest word first so that "社区活动" is an activity before "社区" is a place.
_SOURCE_WORDS = {
    "public_place": ("公共场所", "公园", "广场", "社区", "街头", "public_place"),
    "lecture": ("科普讲座", "健康讲座", "讲座", "科普", "会议", "lecture"),
    "senior_activity": ("老年活动", "社区活动", "赞助活动", "老年大学", "senior_activity"),
    "referral": ("转介绍", "老带新", "介绍", "推荐", "转介", "referral"),
    "media": ("媒体互动", "媒体", "电视", "广播", "报纸", "网络", "media"),
    "partner": ("合作联盟", "异业联盟", "联盟", "合作", "partner"),
    "walk_in": ("自然进店", "进店", "到店", "上门", "walk_in"),
    "import": ("导入", "import"),
    "other": ("其他", "其它", "other"),
}


# A coded column holds a handful of words (男, 女, 公历, 农历…) down a whole sheet: each is
# normalised once. Bounded, as a sheet's free text in a coded column can be anything.
@functools.lru_cache(maxsize=4096)
def _word(text: str) -> str:
    return re.sub(r"[\s_\-]", "", unicodedata.normalize("NFKC", text).casefold())


def _index(words: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {_word(word): code for code, spelled in words.items() for word in spelled}


_GENDERS = _index(_GENDER_WORDS)
_CALENDARS = _index(_CALENDAR_WORDS)
_SOURCES = _index(_SOURCE_WORDS)
_SOURCE_PARTS = sorted(
    ((word, code) for word, code in _SOURCES.items() if not word.isascii()),
    key=lambda item: -len(item[0]),
)


def gender_code(text: str) -> str | None:
    """female, male or other; None for a word that is none of them."""
    return _GENDERS.get(_word(text))


def calendar_code(text: str) -> str | None:
    """solar or lunar; None for a word that is neither."""
    return _CALENDARS.get(_word(text))


def source_channel_code(text: str) -> str | None:
    """The source channel a store's 来源 cell names; None when no known word is in it."""
    word = _word(text)
    if word in _SOURCES:
        return _SOURCES[word]
    for part, code in _SOURCE_PARTS:
        if part in word:
            return code
    return None
