import pytest
from cryptography.fernet import Fernet

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Role
from crm_libs.problems import ProblemError
from customer_service.customers.id_numbers import check_id_number
from customer_service.customers.visibility import POLICY, mask, present


def test_id_number_checksum_and_birth_date() -> None:
    assert check_id_number("11010519491231002x") == "11010519491231002X"
    for bad in (
        "110105194912310021",
        "1101051949123100",
        "11010519491331002X",
        "A1010519491231002X",
    ):
        with pytest.raises(ValueError):
            check_id_number(bad)


def test_cipher_round_trip_and_key_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = FieldCipher([old]).encrypt("secret")
    assert FieldCipher([new, old]).decrypt(token) == "secret"  # rotated: old still reads
    with pytest.raises(ProblemError):
        FieldCipher([new]).decrypt(token)


def test_one_policy_covers_every_role_for_every_sensitive_field() -> None:
    for field, by_role in POLICY.items():
        assert set(by_role) == set(Role), field
    assert mask("phone", "+8613812345678") == "138****5678"
    shown, disclosed = present({"phone": "+8613812345678", "health": {"a": 1}}, Role.STAFF)
    assert shown == {"phone": "138****5678", "health": None} and disclosed == []
    shown, disclosed = present({"phone": "+8613812345678", "health": {"a": 1}}, Role.EXPERT)
    assert disclosed == ["phone", "health"]
