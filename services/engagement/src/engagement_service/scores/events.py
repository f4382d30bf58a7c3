"""The fields of ``score.changed`` (``crm.scores.v1``) this service reads.

``supply_runs_out_on`` and ``expected_purchase_on`` are optional in the contract: an event
without the key (published before scoring carried it) leaves the value held as it is, and
asks for no refill or routine re-plan; a key present with null says there is none.
"""

from dataclasses import dataclass
from datetime import date
from typing import Any

from crm_libs.events.envelope import EventEnvelope

STOPPED = "stopped"


class Absent:
    """A field the event does not carry (distinct from a null it does carry)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = Absent()


def _day(payload: dict[str, Any], key: str) -> date | None | Absent:
    if key not in payload:
        return ABSENT
    value = payload[key]
    return None if value is None else date.fromisoformat(value)


def _text(payload: dict[str, Any], key: str) -> str | None | Absent:
    value: str | None | Absent = payload.get(key, ABSENT)
    return value


@dataclass(frozen=True)
class ScoreChangeSeen:
    store_id: str
    customer_id: str
    version: int
    lifecycle: str | None | Absent
    value_tier: str | None | Absent
    previous_lifecycle: str | None | Absent
    supply_runs_out_on: date | None | Absent
    expected_purchase_on: date | None | Absent

    @classmethod
    def from_envelope(cls, event: EventEnvelope) -> "ScoreChangeSeen":
        payload = event.payload
        # A score.changed without its version cannot be ordered: the consumer dead-letters it.
        version = payload["version"]
        if not isinstance(version, int):
            raise ValueError("score.changed version is not an integer")
        return cls(
            store_id=event.store_id,
            customer_id=event.customer_id,
            version=version,
            lifecycle=_text(payload, "lifecycle"),
            value_tier=_text(payload, "value_tier"),
            previous_lifecycle=_text(payload, "previous_lifecycle"),
            supply_runs_out_on=_day(payload, "supply_runs_out_on"),
            expected_purchase_on=_day(payload, "expected_purchase_on"),
        )
