"""Event handlers: what scoring does with each batch it consumes."""

import logging
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from scoring_service.scores import service
from scoring_service.scores.consumed import ConsumedEvent

log = logging.getLogger(__name__)


def make_batch_handler(*, as_of: date | None):
    async def handle(session: AsyncSession, batch: list[ConsumedEvent]) -> None:
        purchases = [e.purchase for e in batch if e.purchase is not None]
        prospects = [e.prospect for e in batch if e.prospect is not None]
        changes = await service.score_batch(
            session, prospects=prospects, purchases=purchases, as_of=as_of
        )
        if changes:
            log.info(
                "tiers changed",
                extra={"fields": {"count": len(changes), "purchases": len(purchases)}},
            )

    return handle
