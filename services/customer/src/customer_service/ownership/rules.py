"""DOMAIN.md §9's numbers and the refusals that name them, defined once.

Which changes the 90-day rule counts and refuses (a decision, since DOMAIN states the limit
without exceptions):

- A *change of hands* is a file going to a staff member after it has had one: a manager's
  change, a customer's transfer, a departure's move to the most recent seller, a pool
  assignment. A file's first owner (at registration, or named later on a file that never had
  one) is no change of hands, and neither is a move *into* the pool (a departure with no recent
  seller, a take-back): nobody receives the file, and its next owner is counted when assigned.
- Every change of hands counts in the window, but a departure is never refused: the staff
  member is gone, and the rule keeps customers from being passed around by choice, not from
  losing their representative. A manager's change, a transfer and a pool assignment are
  refused (409) when the file already changed hands twice in the last 90 days.
- A merge (``merged``) is kept on both files' trails but is no change of hands, whether the
  survivor keeps its owner or, having none, takes the duplicate's: no staff member hands a
  customer to another. The staff member the survivor takes was already serving this customer
  (on the duplicate file, the same person), so the customer's representative is the same one
  before and after; counting it would let a clerical fix of a duplicate use up the customer's
  changes, or refuse the fix (a merge is never refused by the rule).
"""

from datetime import date, timedelta
from decimal import Decimal

from crm_libs.problems import Conflict

# At most this many changes of hands within the window.
CHANGES_OF_HANDS_LIMIT = 2
CHANGES_OF_HANDS_WINDOW = timedelta(days=90)
# An orphan goes to the active staff member who sold to the customer most recently within this.
RECENT_SELLER_WINDOW = timedelta(days=365)
# Pool files: above this completion last month, freely; from APPROVAL_RATE up to it, with the
# manager's approval; below APPROVAL_RATE, never.
FREE_RATE = Decimal("0.80")
APPROVAL_RATE = Decimal("0.50")
# A staff member quiet (no sale) for this many months is departed as inactive.
INACTIVE_MONTHS = 6
# The yearly take-back: pool files received a year ago (between two years and one year ago),
# of which fewer than this share bought again, may be taken back up to this share.
TAKE_BACK_AFTER = timedelta(days=365)
TAKE_BACK_COHORT = timedelta(days=365)
TAKE_BACK_REBOUGHT_BELOW = Decimal("0.05")
TAKE_BACK_SHARE = Decimal("0.30")

# The kinds of change kept in the history.
REGISTERED = "registered"
OWNER_CHANGED = "owner_changed"
TRANSFER = "transfer"
DEPARTURE = "departure"
POOL_ASSIGNMENT = "pool_assignment"
TAKE_BACK = "take_back"
# Two files of one customer made one (customers/merge.py): on the survivor, its owner after the
# merge; on the duplicate, the survivor's owner that now serves its customer.
MERGED = "merged"

# The rules a refusal names (``RuleRefused.rule``).
RULE_CHANGES_OF_HANDS = "at_most_two_changes_of_hands_in_90_days"
RULE_WORKED_A_MONTH = "worked_there_more_than_a_month"
RULE_COMPLETION_UNKNOWN = "completion_rate_last_month_known"
RULE_COMPLETION_BELOW_HALF = "completion_rate_below_50_percent_never"
RULE_APPROVAL_NEEDED = "completion_rate_50_to_80_percent_needs_manager_approval"
RULE_TAKE_BACK_COHORT = "take_back_needs_pool_files_received_a_year_ago"
RULE_TAKE_BACK_REBOUGHT = "take_back_only_below_5_percent_bought_again"
RULE_TAKE_BACK_YEARLY = "take_back_once_a_year"


class RuleRefused(Conflict):
    """409 naming the rule of DOMAIN.md §9 that refuses the change (``rule`` in the detail and
    in ``errors``)."""

    def __init__(self, rule: str, detail: str, *, field: str = "rule") -> None:
        super().__init__(f"{rule}: {detail}", errors=[{"field": field, "message": rule}])
        self.rule = rule


def counts_as_change_of_hands(
    *, from_staff_id: str | None, to_staff_id: str | None, in_pool: bool
) -> bool:
    """Whether the 90-day rule counts a change: a file reaching a staff member after having had
    one (its previous owner, or the pool it waited in)."""
    return to_staff_id is not None and (from_staff_id is not None or in_pool)


def add_months(day: date, months: int) -> date:
    """``day`` moved by whole calendar months, the last day of a shorter month when needed."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def pool_refusal(
    *, started_on: date, today: date, rate: Decimal | None, manager_approval: bool
) -> RuleRefused | None:
    """Why a staff member may not receive pool files today, or None: worked there more than a
    month, and last month's completion above 80 % (50–80 % with the manager's approval)."""
    if add_months(started_on, 1) >= today:
        return RuleRefused(
            RULE_WORKED_A_MONTH,
            f"started on {started_on.isoformat()}: pool files go to staff who have worked "
            "there more than a month",
            field="staff_id",
        )
    if rate is None:
        return RuleRefused(
            RULE_COMPLETION_UNKNOWN,
            "no follow-up completion rate is known for last month",
            field="staff_id",
        )
    if rate < APPROVAL_RATE:
        return RuleRefused(
            RULE_COMPLETION_BELOW_HALF,
            f"last month's completion rate {rate:.2%} is below 50 %: never from the pool",
            field="staff_id",
        )
    if rate <= FREE_RATE and not manager_approval:
        return RuleRefused(
            RULE_APPROVAL_NEEDED,
            f"last month's completion rate {rate:.2%} is between 50 % and 80 %: send "
            "manager_approval true to record the manager's approval",
            field="manager_approval",
        )
    return None
