"""The topics events travel on: names only, importable without the envelope's model (a process
that only names an event's type, such as an import's row checks, need not load pydantic)."""


class Topics:
    """Topic names, fixed by the design (versioned, one per publishing domain)."""

    CUSTOMERS = "crm.customers.v1"
    PURCHASES = "crm.purchases.v1"
    SCORES = "crm.scores.v1"
    ENGAGEMENT = "crm.engagement.v1"
    ALL = (CUSTOMERS, PURCHASES, SCORES, ENGAGEMENT)
    # Not an event stream: the relays' markers that tell a broker which lost its data (one
    # partition, created by the relay).
    OUTBOX_EPOCH = "crm.outbox.epoch"

    @staticmethod
    def dead_letter(topic: str) -> str:
        return f"{topic}.dlq"
