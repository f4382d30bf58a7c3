"""The relay's metrics: events published, parked and sent again, the backlog and the parked rows."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

PUBLISHED = Counter("crm_outbox_published", "Outbox events acknowledged by the broker", ["topic"])
PARKED = Counter("crm_outbox_parked", "Outbox events parked after repeated failures", ["topic"])
REPUBLISHED = Counter(
    "crm_outbox_republished", "Retained outbox events sent again after the broker lost its data"
)
# Every worker's relay counts the same table: under several workers the latest count is the answer.
BACKLOG = Gauge(
    "crm_outbox_backlog",
    "Outbox events waiting to be published (not parked)",
    multiprocess_mode="livemostrecent",
)
PARKED_ROWS = Gauge(
    "crm_outbox_parked_rows",
    "Outbox events parked and waiting for an operator",
    multiprocess_mode="livemostrecent",
)
