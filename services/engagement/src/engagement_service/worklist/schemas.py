from pydantic import Field

from engagement_service.followups.schemas import TaskPublic


class WorkItem(TaskPublic):
    """A task as ``GET /tasks`` shows it; on the day's work list (``due=today``) with what the
    staff member reads before calling: null in other listings."""

    customer_name: str | None = Field(
        default=None,
        description="From the customer service, as the caller may see it; null when the "
        "customer service did not answer",
    )
    value_tier: str | None = Field(default=None, description="The customer's value tier")
    reason: str | None = Field(
        default=None,
        description="Why the task is there: a recovery task's stop reason, a special day's "
        "occasion, otherwise the task's purpose",
    )
