"""The file's JSON, written by orjson straight from the row, is CustomerPublic's JSON: every field
in its order, nested objects with all their keys, for a full profile and an empty one."""

from datetime import UTC, date, datetime

import orjson
import pytest
from cryptography.fernet import Fernet

from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal, Role
from customer_service.customers import profile, service
from customer_service.customers.models import Customer
from customer_service.customers.router import _JSON_OPTIONS, _present
from customer_service.customers.schemas import CustomerPublic

CIPHER = FieldCipher([Fernet.generate_key().decode()])


def _full() -> Customer:
    phones = [
        {"number": "+8613812345678", "kind": "mobile", "primary": True},
        {"number": "+861062345678", "kind": "landline", "primary": False},
    ]
    sealed, hashes, tails = profile.sealed_phones(phones, cipher=CIPHER, hash_key="k" * 32)
    return Customer(
        id="c",
        store_id="s",
        name="王芳",
        gender="female",
        ethnicity="汉族",
        approximate_age=70,
        birthday=date(1950, 9, 26),
        birthday_calendar="lunar",
        wedding_anniversary=date(1975, 5, 1),
        email="w@example.com",
        address={"city": "深圳", "street": "科技路1号"},
        deep={"hobbies": ["钓鱼"]},
        source={"channel": "lecture", "cost": "12.50"},
        referrer_id="r",
        owner_staff_id="o",
        prospect_stage="invited",
        prospect_grade="A",
        consents=profile.sms_consent(None, granted=True, channel="app"),
        phones_encrypted=sealed,
        phone_hashes=hashes,
        phone_tails=tails,
        health_encrypted=CIPHER.encrypt('{"allergies": ["青霉素"]}'),
        health_consent_at=datetime(2026, 1, 1, tzinfo=UTC),
        status="active",
        version=3,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _empty() -> Customer:
    return Customer(
        id="c", store_id="s", name="李", version=1, created_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("make", [_full, _empty])
def test_json_from_the_row_is_the_public_schema_s(role: Role, make: object) -> None:
    customer = make()  # type: ignore[operator]
    principal = Principal(subject="u", role=role, store_id="s")
    shown, _ = _present(service.row_of(customer), principal, CIPHER)
    written = orjson.loads(orjson.dumps(shown, option=_JSON_OPTIONS))
    assert list(written) == list(CustomerPublic.model_fields)
    assert written == CustomerPublic.model_validate(shown).model_dump(mode="json")
    if make is _full:
        assert written["birthday"] == "1950-08-15"  # the lunar date of birth
