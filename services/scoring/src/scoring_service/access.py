"""Which roles may call each operation of the scoring service: one declared policy (OWASP API5).

Store scope is not decided here: every role but head office still sees only its own store.
Scores are read by everyone who serves the store's customers, partner systems included.
"""

from crm_libs.access import EVERY_ROLE, AccessPolicy

POLICY = AccessPolicy(
    operations={
        "GET /customers/{customer_id}/score": EVERY_ROLE,
    }
)
