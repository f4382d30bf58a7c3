"""A template's body: its placeholders checked when saved, its words checked when saved and
again when rendered (a customer's or staff member's name can bring a forbidden word in), and
the promotional suffix added."""

import re
from collections.abc import Iterable, Mapping

from crm_libs.problems import ProblemError
from engagement_service.messages.categories import PLACEHOLDERS

# {name}: letters, digits and underscores; a brace that opens no such name is refused too.
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class TemplateRefused(ProblemError):
    """422 naming the unknown placeholders or forbidden words."""

    status = 422
    title = "Invalid field value"

    def __init__(self, field: str, message: str, *, words: list[str]) -> None:
        super().__init__(
            f"{field}: {message}",
            errors=[{"field": field, "message": message}],
        )
        self.words = words


def placeholders_in(body: str) -> list[str]:
    """The placeholders ``body`` uses, in order; 422 naming any unknown one or a stray brace."""
    found = _PLACEHOLDER.findall(body)
    unknown = sorted({name for name in found if name not in PLACEHOLDERS})
    if unknown:
        raise TemplateRefused(
            "body",
            "unknown placeholder "
            + ", ".join("{" + n + "}" for n in unknown)
            + " (known: "
            + ", ".join("{" + n + "}" for n in sorted(PLACEHOLDERS))
            + ")",
            words=unknown,
        )
    if "{" in _PLACEHOLDER.sub("", body) or "}" in _PLACEHOLDER.sub("", body):
        raise TemplateRefused("body", "a brace that opens or closes no placeholder", words=[])
    return found


def words_found(text: str, forbidden: Iterable[str]) -> list[str]:
    """The forbidden words ``text`` contains, in the rule's order."""
    return [word for word in forbidden if word and word in text]


def check_words(text: str, forbidden: Iterable[str], *, field: str, category: str) -> None:
    """422 naming every forbidden word of ``category`` that ``text`` contains."""
    found = words_found(text, forbidden)
    if found:
        raise TemplateRefused(
            field,
            f"words a {category} message may not use: " + ", ".join(found),
            words=found,
        )


def render(body: str, values: Mapping[str, str]) -> str:
    """``body`` with its placeholders filled (an unknown value renders empty)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), body)


def with_unsubscribe(text: str, suffix: str) -> str:
    """A promotional message ends with the unsubscribe instruction, once."""
    stripped = text.rstrip()
    return stripped if stripped.endswith(suffix) else f"{stripped}{suffix}"


def form_of_address(name: str | None, gender: str | None) -> str:
    """How a message greets the customer: surname and 女士 or 先生 (王女士), else the name."""
    if not name:
        return ""
    title = {"female": "女士", "male": "先生"}.get(gender or "")
    if title is None:
        return name
    # Chinese names put the surname first; two-character surnames (欧阳, 司马) are rare enough
    # that a three- or four-character name's first character is the usual answer, and a name
    # written in Latin letters keeps its last word.
    if name.isascii():
        return f"{name.split()[-1]} {title}"
    surname = name[:2] if len(name) >= 4 else name[:1]
    return f"{surname}{title}"
