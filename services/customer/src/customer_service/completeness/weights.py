"""What a complete file holds, what each field is worth, and when etiquette allows asking for it.

DOMAIN.md §1 "Completeness and what to ask next": at registration ask only name and phone;
birthday and address if the customer does not mind; deep and health information only through
later visits. One table, in the order fields are asked within each stage: the score weighs them,
the list of what to ask next follows it.
"""

from dataclasses import dataclass
from typing import Literal

Stage = Literal["registration", "acquainted", "trusted"]
STAGES: tuple[Stage, ...] = ("registration", "acquainted", "trusted")

# Health data is asked for only after the customer's separate consent (PIPL): until then the
# health fields are neither scored nor listed, and the consent itself is what to ask for.
HEALTH_CONSENT = "health_consent"


@dataclass(frozen=True, slots=True)
class Weighed:
    field: str  # the API's name; ``deep.x`` and ``health.x`` name a key of those objects
    stage: Stage
    weight: int
    reason: str


FIELDS: tuple[Weighed, ...] = (
    Weighed(
        "name", "registration", 20, "how staff greet and find the customer: no file without it"
    ),
    Weighed("phone", "registration", 20, "every call, care SMS and visit booking goes through it"),
    Weighed("birthday", "acquainted", 8, "birthday care, and the age product advice depends on"),
    Weighed(
        "address", "acquainted", 8, "home visits (上门), the most valued care, need the street"
    ),
    Weighed("gender", "acquainted", 3, "greeting and product advice"),
    Weighed("wedding_anniversary", "acquainted", 2, "one of the special days cared for"),
    Weighed("ethnicity", "acquainted", 1, "festivals and diet differ"),
    Weighed("email", "acquainted", 1, "few elderly customers read one"),
    Weighed(HEALTH_CONSENT, "trusted", 2, "no health question may be asked before it"),
    # Allergies, medicines and conditions first: they are what contraindication checks read.
    Weighed("health.allergies", "trusted", 3, "avoids selling what the customer reacts to"),
    Weighed("health.current_medicines", "trusted", 3, "avoids drug conflicts (避免药物相克)"),
    Weighed("health.chronic_conditions", "trusted", 3, "what the products are advised for"),
    Weighed("deep.service_preference", "trusted", 3, "phone, home visit, store or messages"),
    Weighed("deep.contact_time", "trusted", 3, "a call at the right hour is answered"),
    Weighed("deep.family_situation", "trusted", 3, "the spouse is the main purchase influencer"),
    Weighed("deep.hobbies", "trusted", 3, "hobby-based visits and event invitations"),
    Weighed("health.medical_history", "trusted", 2, "past illness shapes the health plan"),
    Weighed("health.other_health_products", "trusted", 2, "a competitor's product in use"),
    Weighed("deep.habits", "trusted", 2, "consumption habits: what, how much, how often"),
    Weighed("deep.promotion_attitude", "trusted", 2, "whether offers help or offend"),
    Weighed("deep.personality", "trusted", 2, "how to talk with the customer"),
    Weighed("deep.lifestyle", "trusted", 2, "season and diet advice"),
    Weighed("deep.occupation", "trusted", 2, "former work: topics and schedule"),
    Weighed("deep.housing", "trusted", 2, "who lives there, stairs, when a visit suits"),
    Weighed("deep.position", "trusted", 1, "standing and network for referrals"),
    Weighed("deep.education", "trusted", 1, "how much detail an explanation needs"),
    Weighed("deep.income_band", "trusted", 1, "which products are within reach"),
    Weighed("deep.favourite_colours", "trusted", 1, "gift and card choice"),
)


def priorities() -> dict[str, int]:
    """Each field's place among its stage's (1 is asked first), from the table's order."""
    places: dict[str, int] = {}
    seen: dict[Stage, int] = dict.fromkeys(STAGES, 0)
    for weighed in FIELDS:
        seen[weighed.stage] += 1
        places[weighed.field] = seen[weighed.stage]
    return places
