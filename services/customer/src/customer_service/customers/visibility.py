"""Who sees which sensitive field of a customer file: one declared policy (DOMAIN §11).

Sensitive personal information (the full phone numbers, the ID-card number, health data, the
email address and the street address) is shown whole only to the roles that need it, masked to
some, and left out for the rest. Every field shown whole is named in the audit trail. ``phone``
rules every number of ``phones`` too. The rest of the file (deep profile, source, prospect,
consents, birthday) is store business every role of the store may read.
"""

from enum import StrEnum
from typing import Any

from crm_libs.principal import Role


class Visibility(StrEnum):
    FULL = "full"
    MASKED = "masked"
    HIDDEN = "hidden"


FULL, MASKED, HIDDEN = Visibility.FULL, Visibility.MASKED, Visibility.HIDDEN

POLICY: dict[str, dict[Role, Visibility]] = {
    # Staff call from the app's dial button; they recognise a customer by the tail.
    "phone": {
        Role.HQ_ADMIN: FULL,
        Role.STORE_MANAGER: FULL,
        Role.EXPERT: FULL,
        Role.STAFF: MASKED,
        Role.PARTNER: MASKED,
    },
    # Kept to verify identity (membership, invoices): the store's manager checks it in full.
    "id_number": {
        Role.HQ_ADMIN: MASKED,
        Role.STORE_MANAGER: FULL,
        Role.EXPERT: HIDDEN,
        Role.STAFF: HIDDEN,
        Role.PARTNER: HIDDEN,
    },
    "health": {
        Role.HQ_ADMIN: FULL,
        Role.STORE_MANAGER: FULL,
        Role.EXPERT: FULL,
        Role.STAFF: HIDDEN,
        Role.PARTNER: HIDDEN,
    },
    # A way to reach the customer like the phone, and masked like it: staff write from the app.
    "email": {
        Role.HQ_ADMIN: FULL,
        Role.STORE_MANAGER: FULL,
        Role.EXPERT: MASKED,
        Role.STAFF: MASKED,
        Role.PARTNER: MASKED,
    },
    # Where the customer lives: staff and experts visit at home (上门); a till needs the district
    # at most, so a partner system sees the address without street and coordinates.
    "address": {
        Role.HQ_ADMIN: FULL,
        Role.STORE_MANAGER: FULL,
        Role.EXPERT: FULL,
        Role.STAFF: FULL,
        Role.PARTNER: MASKED,
    },
}


def may_see(field: str, role: Role) -> bool:
    """Whether ``role`` sees the field in any form (else it is never even decrypted)."""
    return POLICY[field].get(role, HIDDEN) is not HIDDEN


def shows_whole(field: str, role: Role) -> bool:
    return POLICY[field].get(role, HIDDEN) is FULL


def mask(field: str, value: str) -> str:
    """Keep enough to recognise a value, never enough to use it: +8613812345678 → 138****5678,
    wang.fang@example.com → w***@example.com."""
    if field == "email":
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    digits = value[3:] if field == "phone" and value.startswith("+86") else value
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if len(digits) > 7 else 1
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 4) + digits[-4:]


def present(record: dict[str, Any], role: Role) -> tuple[dict[str, Any], list[str]]:
    """The record as ``role`` may see it, and the sensitive fields it discloses whole."""
    out = dict(record)
    disclosed = []
    for field, by_role in POLICY.items():
        if field not in out or out[field] is None:
            continue
        visibility = by_role.get(role, HIDDEN)
        if visibility is FULL:
            disclosed.append(field)
        elif visibility is MASKED and isinstance(out[field], str):
            out[field] = mask(field, out[field])
        elif visibility is MASKED and field == "address":
            out[field] = {**out[field], "street": None, "lat": None, "lng": None}
        else:
            out[field] = None
    phones = out.get("phones")
    if phones:
        # Every number of the list as the primary ``phone`` is shown.
        visibility = POLICY["phone"].get(role, HIDDEN)
        if visibility is FULL:
            if "phone" not in disclosed:
                disclosed.append("phone")
        elif visibility is MASKED:
            out["phones"] = [{**p, "number": mask("phone", p["number"])} for p in phones]
        else:
            out["phones"] = []
    return out, disclosed
