"""The five-phase follow-up after a first purchase of a product (DOMAIN §4), defined once."""

from dataclasses import dataclass
from datetime import date, timedelta

from engagement_service.followups.methods import Method


@dataclass(frozen=True)
class Phase:
    number: int
    day: int
    # The method proposed first, and every method the phase allows (the proposed one first).
    method: Method
    methods_allowed: tuple[Method, ...]
    purpose: str


FOLLOW_UP_PHASES: tuple[Phase, ...] = (
    Phase(
        1,
        3,
        Method.HOME,
        (Method.HOME, Method.PHONE),
        "thank; prevent a return; usage guidance; book a health check or payment",
    ),
    Phase(
        2,
        7,
        Method.HOME,  # home preferred
        (Method.HOME, Method.PHONE),
        "is it being used, how; record notable effects; health plan; spot future core members",
    ),
    Phase(
        3,
        14,
        Method.PHONE,
        (Method.PHONE, Method.HOME),
        "effects; deepen the relationship; invite to member events; grow referrals",
    ),
    Phase(
        4,
        21,
        Method.HOME,  # a staff home visit, the expert's call, or both
        (Method.HOME, Method.EXPERT_PHONE),
        "before/after comparison; resolve doubts; record; grow iron-core members",
    ),
    Phase(
        5,
        28,
        Method.HOME,
        (Method.HOME, Method.EXPERT_PHONE),
        "one-month review; testimonial agreement; event speech; referral groundwork",
    ),
)

# Phase 3 must be a home visit when phases 1 and 2 were both done by phone.
HOME_VISIT_PHASE = 3
CALLED_PHASES = (1, 2)
AFTER_TWO_CALLS = (Method.HOME,)
# After the last phase is done the customer moves to routine care.
LAST_PHASE = FOLLOW_UP_PHASES[-1].number


def schedule_phases(purchased_on: date) -> list[tuple[Phase, date]]:
    """Each phase with its due date, counted in days from the purchase's store-local date."""
    return [(phase, purchased_on + timedelta(days=phase.day)) for phase in FOLLOW_UP_PHASES]
