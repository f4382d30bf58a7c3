"""The consumer's metrics: events processed and dead-lettered, transient retries, lag."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

# Module-level, on the default registry that every service's /metrics serves.
_LABELS = ["consumer", "topic", "partition"]
EVENTS_PROCESSED = Counter(
    "consumer_events_processed",
    "Events applied (or recognised as already applied) and committed.",
    _LABELS,
)
EVENTS_DEAD_LETTERED = Counter(
    "consumer_events_dead_lettered",
    "Events sent to <topic>.dlq because they fail validation or a domain rule.",
    _LABELS,
)
TRANSIENT_RETRIES = Counter(
    "consumer_transient_retries",
    "Batches rewound and retried after a transient failure (database or broker away).",
    _LABELS,
)
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Records on the partition not consumed yet (highwater - position), after each batch.",
    _LABELS,
    # A partition moves between workers on a rebalance: the latest owner's figure counts.
    multiprocess_mode="livemostrecent",
)
