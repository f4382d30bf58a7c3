"""What a typed name query means: Han text matched against the name itself, or letters
(pinyin, its initials, a Latin name) matched as a prefix of the name's keys (pinyin.py), and
whether those letters spell whole pinyin syllables."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import Literal

from pypinyin.pinyin_dict import pinyin_dict

from crm_libs.problems import InvalidField
from customer_service.customers.pinyin import HAN, LATIN_WORD, name_search_keys, toneless

_QUERY_SEPARATORS = re.compile(r"[\s'’·.\-]+")


@dataclass(frozen=True, slots=True)
class NameQuery:
    """A name search, normalised.

    ``kind == "name"``: Han characters only, matched against the name itself (a fragment, e.g.
    ``name LIKE '%国藩%'`` on a pg_trgm index; two characters or fewer need an equality or
    prefix index). ``kind == "letters"``: lower-case a-z, matched as a prefix of any word of
    ``NameKeys.text``. ``spells_pinyin`` says whether the letters read as whole pinyin
    syllables, the last one possibly cut short (``zhangs``); when false they can only be
    initials (``zs``) or a Latin name.
    """

    kind: Literal["name", "letters"]
    text: str
    spells_pinyin: bool

    @property
    def tsquery(self) -> str:
        """The ``to_tsquery('simple', …)`` argument for a ``letters`` query: ``zs:*`` (safe to
        bind: the text is a-z only, nothing tsquery would read as an operator)."""
        return f"{self.text}:*"


def normalise_name_query(q: str, *, field: str = "q") -> NameQuery:
    """What a typed name query means: Han text, or letters (pinyin, initials, a Latin name).

    Full-width letters, capitals, spaces and apostrophes (``Zhang San``, ``xi'an``) and ü
    (``lü``, ``lu:``) are normalised; Han characters mixed with letters (``张s``) become the
    pinyin of the characters followed by the letters. Anything else is refused, naming ``field``.
    """
    text = unicodedata.normalize("NFKC", q).strip().lower()
    text = text.replace("ü", "v").replace("u:", "v")
    text = _QUERY_SEPARATORS.sub("", text)
    if not text or not all(HAN.match(c) or (c.isascii() and c.isalpha()) for c in text):
        raise InvalidField(field, "search by a name, its pinyin or initials, or a phone number")
    has_han = bool(HAN.search(text))
    if has_han and all(HAN.match(c) for c in text):
        return NameQuery(kind="name", text=text, spells_pinyin=False)
    if has_han:
        keys = name_search_keys(text).full
        text = keys[0] if keys else "".join(LATIN_WORD.findall(text))
    return NameQuery(kind="letters", text=text, spells_pinyin=spells_pinyin(text))


def spells_pinyin(letters: str) -> bool:
    """Whether lower-case letters split into pinyin syllables, the last possibly cut short."""
    syllables, prefixes = _syllables()
    n = len(letters)
    # reachable[i]: letters[:i] is a sequence of whole syllables.
    reachable = [True] + [False] * n
    for i in range(n):
        if not reachable[i]:
            continue
        for j in range(i + 1, min(n, i + 6) + 1):
            if letters[i:j] in syllables:
                reachable[j] = True
            if j == n and letters[i:j] in prefixes:
                return True
    return reachable[n]


@cache
def _syllables() -> tuple[frozenset[str], frozenset[str]]:
    """Every toneless syllable pypinyin knows (with a vowel: not the interjections m, ng, hm)
    and every prefix of one."""
    syllables = {
        toneless(reading) for readings in pinyin_dict.values() for reading in readings.split(",")
    }
    syllables = {s for s in syllables if s.isascii() and re.search("[aeiouv]", s)}
    prefixes = {s[:k] for s in syllables for k in range(1, len(s) + 1)}
    return frozenset(syllables), frozenset(prefixes)
