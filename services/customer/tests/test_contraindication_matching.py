"""How a product's terms meet a health file (purchases/contraindications.py): whole words in
spaced scripts, containment across Chinese characters, widths and cases alike."""

import pytest

from customer_service.purchases.contraindications import find


def _kinds(term: str, health: dict[str, list[str]], column: str = "contraindications") -> list:
    product = {"sku": "S", "contraindications": [], "allergens": [], column: [term]}
    return [(w.kind, w.matched) for w in find([product], health)]


@pytest.mark.parametrize(
    ("term", "entry"),
    [
        ("阿司匹林", "阿司匹林肠溶片"),  # a medicine and its form
        ("高血压", "原发性高血压"),  # a qualified condition
        ("阿司匹林肠溶片", "阿司匹林"),  # the catalogue more specific than the file
        ("ＡＳＰＩＲＩＮ", "aspirin"),  # full width, upper case
        ("aspirin", "low-dose Aspirin 100mg"),
        ("warfarin", "华法林 (warfarin)"),
        ("st john's wort", "St  John's Wort"),  # inner whitespace
    ],
)
def test_a_term_meets_an_entry(term: str, entry: str) -> None:
    assert _kinds(term, {"current_medicines": [entry]}) == [("medicine", entry)]


@pytest.mark.parametrize(
    ("term", "entry"),
    [
        ("iron", "environment"),
        ("aspirin", "aspirinate"),
        ("b1", "vitamin b12"),
        ("高血压", "低血压"),
    ],
)
def test_a_term_inside_another_word_does_not(term: str, entry: str) -> None:
    assert _kinds(term, {"chronic_conditions": [entry]}) == []


def test_an_entry_listing_several_items_is_read_item_by_item() -> None:
    health = {"allergies": ["鱼、虾；Peanuts"]}
    assert _kinds("鱼油", health, "allergens") == [("allergy", "鱼")]
    assert _kinds("peanuts", health, "allergens") == [("allergy", "Peanuts")]


def test_allergens_meet_allergies_and_contraindications_the_rest() -> None:
    health = {
        "allergies": ["青霉素"],
        "chronic_conditions": ["糖尿病"],
        "medical_history": ["胃溃疡"],
        "current_medicines": ["青霉素"],
        "other_health_products": ["糖尿病"],
    }
    assert _kinds("青霉素", health, "allergens") == [("allergy", "青霉素")]
    assert _kinds("青霉素", health) == [("medicine", "青霉素")]
    assert _kinds("糖尿病", health) == [("condition", "糖尿病")]
    assert _kinds("胃溃疡", health) == [("condition", "胃溃疡")]
