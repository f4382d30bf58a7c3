"""The store these tests check import rows for: the development keys, and the staff members a
sheet's 服务代表 column may name."""

from customer_service.config import DEV_FIELD_KEY, DEV_PHONE_HASH_KEY
from customer_service.imports.customer_checks import StoreContext


def store_context(staff: dict[str, str] | None = None) -> StoreContext:
    """``store-1`` in Asia/Shanghai; ``staff``: its active staff members' ids by name."""
    staff = staff or {}
    return StoreContext(
        store_id="store-1",
        timezone="Asia/Shanghai",
        field_keys=(DEV_FIELD_KEY,),
        phone_hash_key=DEV_PHONE_HASH_KEY,
        staff_by_name={name: (staff_id,) for name, staff_id in staff.items()},
        staff_ids=frozenset(staff.values()),
    )
