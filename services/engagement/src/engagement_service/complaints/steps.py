"""The four steps of a complaint (DOMAIN.md §7) and their order: one place for the rule.

listen (all the points of the complaint) → apologise → resolve (cause, a fair solution,
compensation) → feedback (is the customer satisfied?). Each is taken once, in that order.
A satisfied feedback closes the complaint. An unsatisfied one opens the next round: a second
follow-up task goes on the owner's list and the complaint waits for a new ``resolve`` and then
a new ``feedback`` (the points were heard and the apology made in the first round; what the
follow-up changes is the solution and the customer's answer). Rounds repeat until the
customer is satisfied.
"""

from datetime import date
from enum import StrEnum


class Step(StrEnum):
    LISTEN = "listen"
    APOLOGISE = "apologise"
    RESOLVE = "resolve"
    FEEDBACK = "feedback"


ORDER: tuple[Step, ...] = (Step.LISTEN, Step.APOLOGISE, Step.RESOLVE, Step.FEEDBACK)
FIRST = ORDER[0]
# Where a round after an unsatisfied feedback starts.
ROUND_START = Step.RESOLVE


def after(step: Step, *, satisfied: bool | None = None) -> Step | None:
    """The step a complaint waits for once ``step`` is taken; None when it is closed."""
    if step is Step.FEEDBACK:
        return None if satisfied else ROUND_START
    return ORDER[ORDER.index(step) + 1]


def on_the_spot(*, round_closed: int, opened_on: date, closed_on: date) -> bool:
    """Resolved on the spot (当场解决, DOMAIN.md §7): closed satisfied in the first round, on the
    store-local day it was opened. A day rather than a number of minutes: a complaint heard in
    the morning and settled by the afternoon's call was settled before the customer went home
    with it; one that needed a second follow-up, or the next day, was not."""
    return round_closed == 1 and closed_on == opened_on
