"""The union of two files' facts in a merge (customers/merge.py): what the survivor ends with,
field by field (``UNION``), and the code that gives it that."""

import orjson

from crm_libs.field_crypto import FieldCipher
from customer_service.customers import profile
from customer_service.customers.models import Customer
from customer_service.customers.schemas import PROSPECT_STAGES

# What the survivor ends with, field by field (the rule of each, for the reader and the trail).
UNION = {
    "name": "the survivor's: the file staff chose to keep",
    **dict.fromkeys(
        ("gender", "ethnicity", "approximate_age", "email", "address", "id_number", "source"),
        "the survivor's; the duplicate's where the survivor has none",
    ),
    "wedding_anniversary": "the survivor's, else the duplicate's (dropped if before the birthday)",
    "birthday": "the survivor's with its calendar; the duplicate's (with its calendar) if none",
    "phones": "both files' numbers, each once, the survivor's primary staying primary",
    "deep": "both, key by key; the survivor's answer where both have one (lists: both's items)",
    "consents": "per channel, the more recent answer (the customer's latest word)",
    "health": "only if the survivor has the customer's health consent: then both records' "
    "items, each once; without it the duplicate's health data is not copied (consent is given "
    "to a file, and the survivor's is what staff read)",
    "referrer_id": "the survivor's; the duplicate's if none and no loop follows",
    "owner_staff_id": "the survivor's; the duplicate's if none",
    "prospect": "the further stage of the two, the survivor's grade else the duplicate's",
}
_PLAIN = ("gender", "ethnicity", "approximate_age", "email", "wedding_anniversary")
_MAX_PHONES = 10


def unite(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    """Give the survivor what it lacks of the duplicate (``UNION``); the API fields taken."""
    taken: list[str] = []

    def take(api_field: str, column: str) -> None:
        if getattr(survivor, column) is None and getattr(duplicate, column) is not None:
            setattr(survivor, column, getattr(duplicate, column))
            taken.append(api_field)

    for name in _PLAIN:
        take(name, name)
    take("address", "address")
    take("id_number", "id_number_encrypted")
    take("source", "source")
    take("owner_staff_id", "owner_staff_id")
    if survivor.birthday is None and duplicate.birthday is not None:
        survivor.birthday = duplicate.birthday
        survivor.birthday_calendar = duplicate.birthday_calendar
        taken.append("birthday")
        if survivor.wedding_anniversary and survivor.wedding_anniversary <= survivor.birthday:
            survivor.wedding_anniversary = None  # the check registration makes
    if (
        survivor.referrer_id is None
        and duplicate.referrer_id is not None
        and duplicate.referrer_id != survivor.id
    ):
        survivor.referrer_id = duplicate.referrer_id
        taken.append("referrer_id")
    if duplicate.deep:
        ours = survivor.deep or {}
        deep = {**duplicate.deep, **ours}
        for key, value in duplicate.deep.items():
            if isinstance(value, list) and isinstance(ours.get(key), list):
                # Hobbies, favourite colours: both files' items, each once.
                deep[key] = list(dict.fromkeys([*ours[key], *value]))
        if deep != survivor.deep:
            survivor.deep = deep
            taken.append("deep")
    taken += _unite_phones(survivor, duplicate, cipher)
    taken += _unite_consents(survivor, duplicate)
    taken += _unite_health(survivor, duplicate, cipher)
    stages = [s for s in (survivor.prospect_stage, duplicate.prospect_stage) if s]
    if stages:
        further = max(stages, key=PROSPECT_STAGES.index)
        if further != survivor.prospect_stage:
            survivor.prospect_stage = further
            taken.append("prospect")
    if survivor.prospect_grade is None and duplicate.prospect_grade is not None:
        survivor.prospect_grade = duplicate.prospect_grade
        taken.append("prospect")
    return sorted(set(taken))


def _unite_phones(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    theirs = profile.opened_phones(duplicate.phones_encrypted, cipher)
    if not theirs:
        return []
    ours = profile.opened_phones(survivor.phones_encrypted, cipher)
    known = {p["number"] for p in ours}
    added = [{**p, "primary": False} for p in theirs if p["number"] not in known]
    if not added:
        return []
    phones = [*ours, *added][:_MAX_PHONES]
    if not any(p["primary"] for p in phones):
        phones[0]["primary"] = True
    # Each number keeps the hash and tail its file stored beside it (no hash key needed here).
    by_number = {
        p["number"]: (h, t)
        for src in (survivor, duplicate)
        for p, h, t in zip(
            profile.opened_phones(src.phones_encrypted, cipher),
            src.phone_hashes,
            src.phone_tails,
            strict=False,
        )
    }
    survivor.phones_encrypted = cipher.encrypt(orjson.dumps(phones).decode())
    survivor.phone_hashes = [by_number[p["number"]][0] for p in phones]
    survivor.phone_tails = [by_number[p["number"]][1] for p in phones]
    return ["phones"] if ours else ["phone", "phones"]


def _unite_consents(survivor: Customer, duplicate: Customer) -> list[str]:
    if not duplicate.consents:
        return []
    united = dict(survivor.consents or profile.NO_CONSENTS)
    for channel, answer in duplicate.consents.items():
        ours = united.get(channel)
        # ISO times in UTC ("…Z") compare as text; an answer without a time is the oldest.
        if ours is None or (answer.get("at") or "") > (ours.get("at") or ""):
            united[channel] = answer
    if united == (survivor.consents or profile.NO_CONSENTS):
        return []
    survivor.consents = united
    return ["consents"]


def _unite_health(survivor: Customer, duplicate: Customer, cipher: FieldCipher) -> list[str]:
    if survivor.health_consent_at is None or not duplicate.health_encrypted:
        return []
    theirs: dict[str, list[str]] = orjson.loads(cipher.decrypt(duplicate.health_encrypted))
    ours: dict[str, list[str]] = (
        orjson.loads(cipher.decrypt(survivor.health_encrypted)) if survivor.health_encrypted else {}
    )
    united = {
        key: list(dict.fromkeys([*ours.get(key, []), *theirs.get(key, [])]))
        for key in {*ours, *theirs}
    }
    if united == ours:
        return []
    survivor.health_encrypted = cipher.encrypt(orjson.dumps(united).decode())
    survivor.uses_competitor_products = bool(united.get("other_health_products"))
    return ["health"]
