"""Which roles may call each operation of the scoring service: one declared policy (OWASP API5).

Store scope is not decided here: every role but head office still sees only its own store.
Scores are read by everyone who serves the store's customers, partner systems included.
"""

from crm_libs.access import EVERY_ROLE, AccessPolicy
from crm_libs.principal import Role

MANAGERS = frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER})

POLICY = AccessPolicy(
    operations={
        "GET /customers/{customer_id}/score": EVERY_ROLE,
        "GET /customers/{customer_id}/score/history": EVERY_ROLE,
        # The iron-core floor is a manager's decision (DOMAIN.md §3): the store's or head office.
        "PUT /customers/{customer_id}/ladder-floor": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER}),
        "DELETE /customers/{customer_id}/ladder-floor": frozenset(
            {Role.HQ_ADMIN, Role.STORE_MANAGER}
        ),
        # Fitting writes a fit the store's predictions then use, and costs seconds of CPU: the
        # store's manager and head office decide when; staff and partner systems read scores.
        "POST /stores/{store_id}/models/fit": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER}),
        # Segments are scores in bulk, read by whoever serves the store (scope: their store).
        "GET /scores": EVERY_ROLE,
        "GET /stores/{store_id}/distribution": EVERY_ROLE,
        # A whole store rewritten and republished, seconds of database work: head office only.
        "POST /scores/recompute": frozenset({Role.HQ_ADMIN}),
        # A store's pyramid shares, window and lifecycle thresholds: its manager or head office
        # change them (the store is recomputed); whoever serves the store reads them.
        "GET /stores/{store_id}/tier-rules": EVERY_ROLE,
        "PUT /stores/{store_id}/tier-rules": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER}),
        # The analysis (DOMAIN.md §10) is the manager's view of the store's business: every
        # customer's money, each staff member's sales. The store's manager and head office read
        # it; staff, experts and partner systems serve customers one by one and do not.
        "GET /stores/{store_id}/analysis/consumption": MANAGERS,
        "GET /stores/{store_id}/analysis/churn": MANAGERS,
        "GET /stores/{store_id}/analysis/contact-times": MANAGERS,
        # The monthly report draws the same figures: the same readers.
        "GET /stores/{store_id}/report": MANAGERS,
    }
)
