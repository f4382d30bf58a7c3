from decimal import Decimal

import pytest

from crm_libs.idempotency import request_fingerprint
from crm_libs.problems import InvalidField
from customer_service.customers.phones import normalise_phone
from customer_service.money import to_cents


def test_phones_are_normalised_to_e164() -> None:
    assert normalise_phone("138 1234 5678") == "+8613812345678"
    assert normalise_phone("+86-138-1234-5678") == "+8613812345678"
    with pytest.raises(InvalidField):
        normalise_phone("12345")
    with pytest.raises(InvalidField):
        normalise_phone("not a phone")


def test_money_rounds_half_up_to_cents() -> None:
    assert to_cents(Decimal("1.005")) == Decimal("1.01")
    assert str(to_cents(Decimal("3"))) == "3.00"


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    a = request_fingerprint("r", {"x": 1, "y": [1, 2]})
    assert a == request_fingerprint("r", {"y": [1, 2], "x": 1})
    assert a != request_fingerprint("r", {"x": 2, "y": [1, 2]})
    assert a != request_fingerprint("other", {"x": 1, "y": [1, 2]})
