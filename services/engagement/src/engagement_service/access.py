"""Which roles may call each operation of the engagement service: one declared policy (OWASP API5).

Store scope is not decided here: every role but head office still sees only its own store.
Follow-up tasks are store business: staff and experts work them, managers oversee them, and a
partner store's system may read them to show in its own tools.
"""

from crm_libs.access import EVERY_ROLE, AccessPolicy

POLICY = AccessPolicy(
    operations={
        "GET /tasks": EVERY_ROLE,
    }
)
