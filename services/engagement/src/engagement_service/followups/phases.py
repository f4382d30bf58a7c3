"""The five-phase follow-up after a first purchase of a product (DOMAIN §4), defined once."""

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Phase:
    number: int
    day: int
    method: str
    purpose: str


FOLLOW_UP_PHASES: tuple[Phase, ...] = (
    Phase(
        1,
        3,
        "home_visit_or_phone",
        "thank; prevent a return; usage guidance; book a health check or payment",
    ),
    Phase(
        2,
        7,
        "phone_or_home_visit_home_preferred",
        "is it being used, how; record notable effects; health plan; spot future core members",
    ),
    Phase(
        3,
        14,
        "phone_or_home_visit_home_if_1_and_2_by_phone",
        "effects; deepen the relationship; invite to member events; grow referrals",
    ),
    Phase(
        4,
        21,
        "staff_home_visit_and_or_expert_phone",
        "before/after comparison; resolve doubts; record; grow iron-core members",
    ),
    Phase(
        5,
        28,
        "staff_home_visit_and_or_expert_phone",
        "one-month review; testimonial agreement; event speech; referral groundwork",
    ),
)


def schedule_phases(purchased_on: date) -> list[tuple[Phase, date]]:
    """Each phase with its due date, counted in days from the purchase's store-local date."""
    return [(phase, purchased_on + timedelta(days=phase.day)) for phase in FOLLOW_UP_PHASES]
