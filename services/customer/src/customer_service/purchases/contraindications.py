"""Contraindications (避免药物相克): a product's contraindications and allergens against a
customer's health file, and who is told what matched (DOMAIN §2 and §11).

Matching. Both sides are normalised with NFKC and casefold (full-width ``ＡＳＰＩＲＩＮ`` is
``aspirin``), and a health entry holding a list (``青霉素、头孢``) is read item by item. A product's
term matches a health item when either contains the other as a whole word or phrase:

- Across Chinese characters there is no word boundary to respect, so ``阿司匹林`` matches
  ``阿司匹林肠溶片`` and ``原发性高血压`` matches ``高血压``: a medicine's name followed by its form
  (片, 胶囊, 肠溶片) is the same medicine, a qualified condition is the same condition, and staff
  write the health file in whatever words the customer used. Containment both ways, because the
  catalogue may be the more specific one (allergen ``鱼油`` for a customer allergic to ``鱼``).
- In scripts written with spaces a term must not be part of a longer word: ``iron`` does not
  match ``environment``, ``aspirin`` matches ``low-dose aspirin``.

A false warning costs the staff member one acknowledgement; a missed one can harm the customer,
so where the choice is close this errs towards warning.

Allergens are matched against ``allergies``; contraindications against ``chronic_conditions``,
``medical_history`` (kind ``condition``) and ``current_medicines`` (kind ``medicine``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Role
from crm_libs.problems import Conflict
from customer_service.customers.visibility import FULL, HIDDEN, MASKED, Visibility

ALLERGY, CONDITION, MEDICINE = "allergy", "condition", "medicine"
# What a role that may not see health data is told instead of the kind and the words.
UNDISCLOSED = "contraindication"

# Who is told what matched, in ``customers/visibility.py``'s terms. Every role is warned: the
# sale waits for an acknowledgement whoever records it. The roles that see the health file whole
# are told the kind and the words; staff and partner systems, which never see health data
# (visibility.POLICY["health"]), are told only that the product meets a contraindication of this
# customer, and to ask the store manager or the expert (售后医生) before selling. Naming the match
# to them would disclose the health file line by line, one proposal at a time.
POLICY: dict[Role, Visibility] = {
    Role.HQ_ADMIN: FULL,
    Role.STORE_MANAGER: FULL,
    Role.EXPERT: FULL,
    Role.STAFF: MASKED,
    Role.PARTNER: MASKED,
}

# The health file's lists each kind of term is matched against.
_HEALTH_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "allergens": (("allergies", ALLERGY),),
    "contraindications": (
        ("chronic_conditions", CONDITION),
        ("medical_history", CONDITION),
        ("current_medicines", MEDICINE),
    ),
}
# Separators of a list written into one entry (、 is the Chinese enumeration comma).
_LIST_SEPARATORS = re.compile(r"[、,，;；/|\n]+")


@dataclass(frozen=True, slots=True)
class HealthWarning:
    """A product of the sale or proposal meeting the customer's health file."""

    sku: str
    kind: str
    matched: str  # the health file's words
    term: str  # the catalogue's words

    def as_dict(self) -> dict[str, str]:
        return {"sku": self.sku, "kind": self.kind, "matched": self.matched, "term": self.term}


class WarningsFound(Conflict):
    """A sale meeting the customer's health file, without ``acknowledge_warnings``: 409, and the
    router answers the warnings as the caller's role may be told them."""

    def __init__(self, warnings: Sequence[HealthWarning]) -> None:
        super().__init__(
            "A product meets the customer's health file: acknowledge the warnings to sell it"
        )
        self.warnings = list(warnings)


def check(
    customer: Mapping[str, Any], products: Sequence[Mapping[str, Any]], cipher: FieldCipher
) -> list[HealthWarning]:
    """The warnings for selling ``products`` (catalogue rows) to ``customer`` (a row with
    ``health_encrypted`` and ``health_consent_at``).

    Without terms on the products, or without health data kept with consent, there is nothing
    to check and the health file is not decrypted.
    """
    if not consults_health(customer, products):
        return []
    health = orjson.loads(cipher.decrypt(customer["health_encrypted"]))
    return find(products, health) if isinstance(health, dict) else []


def consults_health(customer: Mapping[str, Any], products: Sequence[Mapping[str, Any]]) -> bool:
    """Whether checking ``products`` reads the customer's health file: products with terms, and
    health data kept with consent."""
    return (
        has_terms(products)
        and customer["health_consent_at"] is not None
        and bool(customer["health_encrypted"])
    )


def sealed(warnings: Sequence[HealthWarning], cipher: FieldCipher) -> str:
    """The acknowledged warnings as kept on the purchase: encrypted, they are health data."""
    return cipher.encrypt(orjson.dumps([w.as_dict() for w in warnings]).decode())


def unsealed(value: str, cipher: FieldCipher) -> list[HealthWarning]:
    return [
        HealthWarning(w["sku"], w["kind"], w["matched"], w["term"])
        for w in orjson.loads(cipher.decrypt(value))
    ]


def normalise(term: str) -> str:
    """The form terms are compared in: NFKC (full and half width alike), casefolded, and
    inner whitespace made single."""
    return " ".join(unicodedata.normalize("NFKC", term).casefold().split())


def has_terms(products: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any product lists a contraindication or an allergen (else nothing is checked,
    and the health file is not decrypted)."""
    return any(p["contraindications"] or p["allergens"] for p in products)


def find(products: Sequence[Mapping[str, Any]], health: Mapping[str, Any]) -> list[HealthWarning]:
    """Each (product, kind, health item) that matches, once, in the products' order."""
    found: dict[tuple[str, str, str], HealthWarning] = {}
    for product in products:
        for column, fields in _HEALTH_FIELDS.items():
            terms = [(t, normalise(t)) for t in product[column] or ()]
            for field, kind in fields:
                for item in _items(health.get(field) or ()):
                    wanted = normalise(item)
                    for term, normal in terms:
                        if normal and wanted and _meets(normal, wanted):
                            key = (product["sku"], kind, item)
                            found.setdefault(key, HealthWarning(product["sku"], kind, item, term))
    return list(found.values())


def shown_to(role: Role, warnings: Sequence[HealthWarning]) -> list[dict[str, Any]]:
    """The warnings as ``role`` is told them: whole, or one per product naming nothing."""
    if POLICY.get(role, HIDDEN) is FULL:
        return [w.as_dict() for w in warnings]
    skus = dict.fromkeys(w.sku for w in warnings)
    return [{"sku": sku, "kind": UNDISCLOSED, "matched": None, "term": None} for sku in skus]


def discloses_health(role: Role) -> bool:
    """Whether telling ``role`` the result of a check discloses the health file (audited)."""
    return POLICY.get(role, HIDDEN) is FULL


def _items(entries: Iterable[str]) -> list[str]:
    return [
        part.strip() for entry in entries for part in _LIST_SEPARATORS.split(entry) if part.strip()
    ]


def _meets(a: str, b: str) -> bool:
    return _contains(a, b) or _contains(b, a)


def _contains(text: str, phrase: str) -> bool:
    """``phrase`` in ``text`` as a whole word or phrase (see the module's docstring)."""
    start = text.find(phrase)
    while start != -1:
        end = start + len(phrase)
        before = text[start - 1] if start else ""
        after = text[end] if end < len(text) else ""
        if not _joined(before, phrase[0]) and not _joined(phrase[-1], after):
            return True
        start = text.find(phrase, start + 1)
    return False


def _joined(left: str, right: str) -> bool:
    """Whether two neighbouring characters belong to one word of a spaced script."""
    return bool(left and right) and _spaced_word_char(left) and _spaced_word_char(right)


def _spaced_word_char(ch: str) -> bool:
    # Han, kana and Hangul: no boundary is asked for next to them (see the module's docstring).
    return ch.isalnum() and not _unspaced(ch)


def _unspaced(ch: str) -> bool:
    code = ord(ch)
    return (
        0x2E80 <= code <= 0x9FFF  # CJK radicals, kana, CJK ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x20000 <= code <= 0x3FFFF  # CJK extensions B and later
    )
