"""Why a customer may have stopped (停服, DOMAIN.md §4): the last reason engagement has seen.

Each source's reason is mapped to a :class:`StopReason` when it is seen and kept per customer,
the newest by its time (a redelivered or older signal changes nothing). Sources today:

- a refund's reason (``purchase.refunded``, DOMAIN.md §2): ``no_effect`` and ``quality`` are the
  product, ``pushed_too_hard`` the service; a family objection or another reason says nothing
  about why the customer would leave the store: unknown.
- a visit's ``stop_reason`` (visits/service.py, when it is logged; its outcome stays the staff
  member's words, never read for a reason): the complaint's codes, and ``competitor`` (the
  customer was taken by another store or brand), the only source of that reason; ``price`` or
  ``other`` records nothing, as for complaints. Its time is when the visit happened.
- a complaint's category (complaints/service.py, when it is opened): ``product_effect`` and
  ``quality`` are the product, ``service`` the service; a complaint about the price or another
  matter says nothing of why the customer would leave and records nothing (it would otherwise
  hide a refund's or an earlier complaint's reason behind an unknown one).
"""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, Index, Text, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from crm_libs.events.envelope import EventEnvelope


class StopReason(StrEnum):
    PRODUCT = "product"  # the product's effect or quality
    SERVICE = "service"
    COMPETITOR = "competitor"
    UNKNOWN = "unknown"


class SignalSource(StrEnum):
    REFUND = "refund"
    VISIT = "visit"
    COMPLAINT = "complaint"


# The refund reasons of the customer service (DOMAIN.md §2), by what they say of a stop.
REFUND_REASONS: dict[str, StopReason] = {
    "no_effect": StopReason.PRODUCT,
    "quality": StopReason.PRODUCT,
    "pushed_too_hard": StopReason.SERVICE,
    "family_objection": StopReason.UNKNOWN,
    "other": StopReason.UNKNOWN,
}


# A complaint's categories (complaints/schemas.py) that say why a customer may stop.
COMPLAINT_REASONS: dict[str, StopReason] = {
    "product_effect": StopReason.PRODUCT,
    "quality": StopReason.PRODUCT,
    "service": StopReason.SERVICE,
}


# A visit's stop reason codes (visits/schemas.py): a complaint's, and the competitor a visit
# learns of; ``price`` and ``other`` say nothing of why the customer would leave.
VISIT_REASONS: dict[str, StopReason] = COMPLAINT_REASONS | {"competitor": StopReason.COMPETITOR}


class StopSignal(SQLModel, table=True):
    """The newest reason seen for each customer."""

    __tablename__ = "stop_signal"
    __table_args__ = (Index("ix_stop_signal_store", "store_id"),)

    customer_id: str = Field(sa_column=Column(Text, primary_key=True))
    store_id: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))  # a StopReason
    source: str = Field(sa_column=Column(Text, nullable=False))  # a SignalSource
    # The source's own code (a refund's reason) and record.
    source_reason: str = Field(sa_column=Column(Text, nullable=False))
    source_id: str = Field(sa_column=Column(Text, nullable=False))
    seen_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


@dataclass(frozen=True)
class Signal:
    store_id: str
    customer_id: str
    reason: StopReason
    source: SignalSource
    source_reason: str
    source_id: str
    seen_at: datetime

    @classmethod
    def from_refund(cls, event: EventEnvelope) -> "Signal":
        payload = event.payload
        code = payload.get("reason") or "other"
        refunded_at = payload.get("refunded_at")
        return cls(
            store_id=event.store_id,
            customer_id=event.customer_id,
            reason=REFUND_REASONS.get(code, StopReason.UNKNOWN),
            source=SignalSource.REFUND,
            source_reason=code,
            source_id=payload.get("refund_id") or payload["purchase_id"],
            seen_at=datetime.fromisoformat(refunded_at) if refunded_at else event.occurred_at,
        )


_RECORD_SQL = text(
    """
    INSERT INTO stop_signal
        (customer_id, store_id, reason, source, source_reason, source_id, seen_at)
    SELECT DISTINCT ON (customer_id) *
    FROM unnest(CAST(:customers AS text[]), CAST(:stores AS text[]), CAST(:reasons AS text[]),
                CAST(:sources AS text[]), CAST(:codes AS text[]), CAST(:ids AS text[]),
                CAST(:at AS timestamptz[]))
         AS s(customer_id, store_id, reason, source, source_reason, source_id, seen_at)
    ORDER BY customer_id, seen_at DESC, source_id DESC
    ON CONFLICT (customer_id) DO UPDATE SET
        store_id = excluded.store_id, reason = excluded.reason, source = excluded.source,
        source_reason = excluded.source_reason, source_id = excluded.source_id,
        seen_at = excluded.seen_at
    WHERE (stop_signal.seen_at, stop_signal.source_id) < (excluded.seen_at, excluded.source_id)
    """
)


async def record_stop_signals(session: AsyncSession, *, signals: list[Signal]) -> None:
    """Keep each customer's newest reason."""
    if signals:
        await session.execute(
            _RECORD_SQL,
            {
                "customers": [s.customer_id for s in signals],
                "stores": [s.store_id for s in signals],
                "reasons": [s.reason.value for s in signals],
                "sources": [s.source.value for s in signals],
                "codes": [s.source_reason for s in signals],
                "ids": [s.source_id for s in signals],
                "at": [s.seen_at for s in signals],
            },
        )


# The newest reason of the customer or of a file merged into it.
_REASONS_SQL = text(
    """
    SELECT DISTINCT ON (c.customer_id) c.customer_id, s.reason
    FROM unnest(CAST(:ids AS text[])) AS c(customer_id)
    JOIN stop_signal AS s
      ON s.customer_id = c.customer_id
      OR s.customer_id IN (SELECT f.customer_id FROM customer_file AS f
                           WHERE f.merged_into = c.customer_id)
    ORDER BY c.customer_id, s.seen_at DESC, s.source_id DESC
    """
)


async def stop_reasons(session: AsyncSession, *, customer_ids: list[str]) -> dict[str, StopReason]:
    """Each customer's last known reason; unknown when none was seen."""
    if not customer_ids:
        return {}
    rows = await session.execute(_REASONS_SQL, {"ids": customer_ids})
    found = {r.customer_id: StopReason(r.reason) for r in rows}
    return {c: found.get(c, StopReason.UNKNOWN) for c in customer_ids}
