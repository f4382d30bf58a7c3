"""The read copy of each customer's score, kept on the file from ``score.changed``
(``crm.scores.v1``): value tier, lifecycle and ladder level, for filtering a search
(customers/search.py) by the store's own index.

Only a newer score version replaces what the copy holds: the topic keeps one customer's events in
order, but a replay after a crash, a dead letter sent back, or a rewound group delivers an older
one late. A payload without ``lifecycle`` or ``ladder_level`` (scoring sends them from a later
version on) leaves those columns as they are; one with a null clears them.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope

SCORE_CHANGED = "score.changed"

# One statement per batch: the batch's newest score per customer, applied where it is newer than
# the copy (a file that has none yet has no version: any score is newer).
_APPLY_SQL = """
    UPDATE customer AS c
    SET value_tier = s.value_tier,
        lifecycle = CASE WHEN s.has_lifecycle THEN s.lifecycle ELSE c.lifecycle END,
        ladder_level = CASE WHEN s.has_ladder THEN s.ladder_level ELSE c.ladder_level END,
        score_version = s.version
    FROM unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::bool[], $6::text[],
                $7::bigint[])
         AS s(customer_id, value_tier, has_lifecycle, lifecycle, has_ladder, ladder_level, version)
    WHERE c.id = s.customer_id AND (c.score_version IS NULL OR c.score_version < s.version)
"""

# The batch's files locked first, in id order: a merge locks its two files in that order
# (customers/merge.py), and an UPDATE takes rows in whatever order its plan meets them, so a
# batch naming them the other way round would deadlock with the merge.
_LOCK_SQL = "SELECT 1 FROM customer WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE"


@dataclass(frozen=True, slots=True)
class ScoreSeen:
    """What the copy keeps of one ``score.changed``."""

    customer_id: str
    value_tier: str
    version: int
    has_lifecycle: bool
    lifecycle: str | None
    has_ladder: bool
    ladder_level: str | None

    @classmethod
    def from_envelope(cls, envelope: EventEnvelope) -> "ScoreSeen":
        """Raises ValueError for a payload without a tier or a version: the consumer sends that
        event to the dead-letter topic."""
        payload = envelope.payload
        tier, version = payload.get("value_tier"), payload.get("version")
        if not isinstance(tier, str) or not isinstance(version, int) or isinstance(version, bool):
            raise ValueError("score.changed needs value_tier (text) and version (an integer)")
        ladder = payload.get("ladder_level")
        return cls(
            customer_id=envelope.customer_id,
            value_tier=tier,
            version=version,
            has_lifecycle="lifecycle" in payload,
            lifecycle=_text_or_none(payload.get("lifecycle")),
            has_ladder="ladder_level" in payload,
            ladder_level=_text_or_none(ladder),
        )


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def newest_per_customer(scores: list[ScoreSeen]) -> list[ScoreSeen]:
    """The highest version of each customer's scores in a batch (one row per customer: an UPDATE
    applies one source row to a target row at most)."""
    newest: dict[str, ScoreSeen] = {}
    for score in scores:
        kept = newest.get(score.customer_id)
        if kept is None or score.version > kept.version:
            newest[score.customer_id] = score
    return list(newest.values())


async def apply_score_changes(session: AsyncSession, events: list[EventEnvelope]) -> None:
    """Bring the copy up to the batch's scores, in the batch's transaction."""
    scores = newest_per_customer([ScoreSeen.from_envelope(e) for e in events])
    if not scores:
        return
    driver = await driver_connection(session)
    await driver.execute(_LOCK_SQL, [s.customer_id for s in scores])
    await driver.execute(
        _APPLY_SQL,
        [s.customer_id for s in scores],
        [s.value_tier for s in scores],
        [s.has_lifecycle for s in scores],
        [s.lifecycle for s in scores],
        [s.has_ladder for s in scores],
        [s.ladder_level for s in scores],
        [s.version for s in scores],
    )
