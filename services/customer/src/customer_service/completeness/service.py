"""A file's completeness: its score and what to ask for next (completeness/weights.py)."""

from collections.abc import Mapping
from typing import Any

import orjson

from crm_libs.field_crypto import FieldCipher
from customer_service.completeness.weights import FIELDS, HEALTH_CONSENT, STAGES, priorities

_PRIORITY = priorities()
_STAGE_ORDER = {stage: index for index, stage in enumerate(STAGES)}


def _object(value: Any) -> dict[str, Any]:
    # The driver connection hands jsonb over as text.
    if value is None:
        return {}
    loaded: dict[str, Any] = orjson.loads(value) if isinstance(value, str) else value
    return loaded


def _given(value: Any) -> bool:
    return value not in (None, "", [], {})


def known_fields(row: Mapping[str, Any], cipher: FieldCipher) -> set[str]:
    """The table's fields the file holds (the stored row, decrypted where it must be)."""
    address = _object(row["address"])
    known = {
        name
        for name, value in (
            ("name", row["name"]),
            ("phone", row["phone_hashes"]),
            ("birthday", row["birthday"]),
            # Where a visit can find the customer: a city alone does not say.
            ("address", address.get("street")),
            ("gender", row["gender"]),
            ("wedding_anniversary", row["wedding_anniversary"]),
            ("ethnicity", row["ethnicity"]),
            ("email", row["email"]),
            (HEALTH_CONSENT, row["health_consent_at"]),
        )
        if _given(value)
    }
    known |= {f"deep.{key}" for key, value in _object(row["deep"]).items() if _given(value)}
    if row["health_encrypted"]:
        health = orjson.loads(cipher.decrypt(row["health_encrypted"]))
        known |= {f"health.{key}" for key, value in health.items() if _given(value)}
    return known


def completeness(
    row: Mapping[str, Any], *, cipher: FieldCipher, health_in_detail: bool
) -> dict[str, Any]:
    """``{score, missing}``: the score weighs every field the file may hold (health only once
    the customer consented); ``missing`` is in the order etiquette allows asking.

    ``health_in_detail`` False (a role that may not see health data) names missing health as
    one ``health`` entry: which of a customer's health lists are filled is health data too.
    """
    known = known_fields(row, cipher)
    consented = HEALTH_CONSENT in known
    counted = [f for f in FIELDS if consented or not f.field.startswith("health.")]
    possible = sum(f.weight for f in counted)
    held = sum(f.weight for f in counted if f.field in known)
    missing: list[dict[str, Any]] = []
    for weighed in counted:
        if weighed.field in known:
            continue
        field = weighed.field
        if field.startswith("health.") and not health_in_detail:
            if any(m["field"] == "health" for m in missing):
                continue
            field = "health"
        missing.append(
            {"field": field, "stage": weighed.stage, "priority": _PRIORITY[weighed.field]}
        )
    missing.sort(key=lambda m: (_STAGE_ORDER[m["stage"]], m["priority"]))
    return {"score": round(100 * held / possible), "missing": missing}
