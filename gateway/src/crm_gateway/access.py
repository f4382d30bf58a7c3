"""Which roles may call each of the gateway's own operations: one declared policy (OWASP API5).

The gateway's own routes are the platform's administration: accounts, partner keys, the audit
trail. The services behind it declare their own policies (``customer_service/access.py`` …).

- Head office administers everything: every account, every partner key, the audit trail.
- A store manager manages the accounts of their own store, below their own role only (below).
- Staff, experts and partner systems administer nothing.
"""

from crm_gateway.accounts.schemas import AccountRole
from crm_libs.access import AccessPolicy
from crm_libs.principal import Role

HEAD_OFFICE = frozenset({Role.HQ_ADMIN})
MANAGEMENT = frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER})

POLICY = AccessPolicy(
    operations={
        "POST /api/v1/accounts": MANAGEMENT,
        "GET /api/v1/accounts": MANAGEMENT,
        "PATCH /api/v1/accounts/{account_id}": MANAGEMENT,
        "POST /api/v1/api-keys": HEAD_OFFICE,
        "GET /api/v1/api-keys": HEAD_OFFICE,
        "DELETE /api/v1/api-keys/{key_id}": HEAD_OFFICE,
        "GET /api/v1/audit": HEAD_OFFICE,
    },
    public=frozenset({"POST /api/v1/auth/token", "POST /api/v1/auth/refresh"}),
)

# The audit intake (``POST /internal/audit``, audit/intake.py): outside the API and this policy,
# as no account calls it. A service hands over what a peer disclosed to one of its workers,
# under a principal it signed itself (CRM_PRINCIPAL_SECRET); only these subjects, with a role
# they are signed for, are taken. An account's name cannot hold ":", so none can pose as one.
# The jobs that read as an account (a campaign's send, a pending guest's file) sign for that
# account's role and store and name the account (``on_behalf_of``): the roles that may send a
# campaign, and those that may check a guest in.
SERVICE_AUDIT_ACTORS: dict[str, frozenset[Role]] = {
    "engagement:messages": frozenset({Role.STORE_MANAGER}),
    "engagement:campaigns": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER}),
    "engagement:guests": frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER, Role.STAFF, Role.EXPERT}),
}

# The account roles each caller may open, change or disable: never one above their own. Nor may a
# store manager touch another manager's account: setting a peer's password would let one manager
# act as another, and appointing managers is head office's decision.
MANAGES_ACCOUNTS_OF: dict[Role, frozenset[AccountRole]] = {
    Role.HQ_ADMIN: frozenset(AccountRole),
    Role.STORE_MANAGER: frozenset({AccountRole.STAFF, AccountRole.EXPERT}),
}
