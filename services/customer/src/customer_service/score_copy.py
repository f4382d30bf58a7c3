"""The read copy of each customer's score, kept on the file from ``score.changed``
(``crm.scores.v1``): value tier, lifecycle and ladder level, for filtering a search
(customers/search.py) by the store's own index.

Only a newer score version replaces what the copy holds: the topic keeps one customer's events in
order, but a replay after a crash, a dead letter sent back, or a rewound group delivers an older
one late. A file's first score that changes nothing the file shows is not written. A payload
without ``lifecycle`` or ``ladder_level`` (scoring sends them from a later version on) leaves
those columns as they are; one with a null clears them.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_libs.events.driver import driver_connection
from crm_libs.events.envelope import EventEnvelope

SCORE_CHANGED = "score.changed"

# The batch's newest score per customer, where it is newer than the copy (a file that has none
# yet has no version: any score is newer). A file's first score (version 1, every registration's:
# a prospect) that shows what the file shows without one is not written: that was a second row
# version of every new file through all its indexes (a page a COPY filled has no room for a HOT
# update), as much work for PostgreSQL as the file itself on each file an import opens. No score
# is older than the first, so leaving the version empty lets no late one in.
_SCORES = """
    unnest($1::text[], $2::text[], $3::bool[], $4::text[], $5::bool[], $6::text[], $7::bigint[])
    AS s(customer_id, value_tier, has_lifecycle, lifecycle, has_ladder, ladder_level, version)
"""
_NEWER = """
    c.id = s.customer_id AND (c.score_version IS NULL OR c.score_version < s.version)
    AND NOT (c.score_version IS NULL AND s.version = 1 AND c.value_tier = s.value_tier
             AND (NOT s.has_lifecycle OR c.lifecycle IS NOT DISTINCT FROM s.lifecycle)
             AND (NOT s.has_ladder OR c.ladder_level IS NOT DISTINCT FROM s.ladder_level))
"""
_APPLY_SQL = f"""
    UPDATE customer AS c
    SET value_tier = s.value_tier,
        lifecycle = CASE WHEN s.has_lifecycle THEN s.lifecycle ELSE c.lifecycle END,
        ladder_level = CASE WHEN s.has_ladder THEN s.ladder_level ELSE c.ladder_level END,
        score_version = s.version
    FROM {_SCORES}
    WHERE {_NEWER}
"""  # noqa: S608 - constants

# The files to write locked first, in id order: a merge locks its two files in that order
# (customers/merge.py), and an UPDATE takes rows in whatever order its plan meets them, so a
# batch naming them the other way round would deadlock with the merge.
_LOCK_SQL = f"""
    SELECT 1 FROM customer AS c, {_SCORES}
    WHERE {_NEWER}
    ORDER BY c.id FOR NO KEY UPDATE OF c
"""  # noqa: S608 - constants


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
    columns = (
        [s.customer_id for s in scores],
        [s.value_tier for s in scores],
        [s.has_lifecycle for s in scores],
        [s.lifecycle for s in scores],
        [s.has_ladder for s in scores],
        [s.ladder_level for s in scores],
        [s.version for s in scores],
    )
    await driver.execute(_LOCK_SQL, *columns)
    await driver.execute(_APPLY_SQL, *columns)
