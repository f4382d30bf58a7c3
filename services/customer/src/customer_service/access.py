"""Which roles may call each operation of the customer service: one declared policy (OWASP API5).

Beside ``customers/visibility.py`` (which fields a role sees): this says what a role may do at all.
Store scope is not decided here: every role but head office still reaches only its own store.

- Head office runs the chain: stores and the catalogue are its alone.
- A store manager keeps the store's roster; staff and experts use it, never edit it.
- Staff and partner systems (a store's till, keyed by ``X-API-Key``) do store business: customer
  files and purchases. Archiving a file takes it out of every list, so it is a manager's decision.
- An expert (售后医生) reads the file, health included, and records what they learn on it, but
  neither opens files nor sells.
- Refunds return money, and a reason such as "pushed too hard" judges a sale that is often the
  serving staff member's own: the store's manager decides them, and its till (a partner system)
  records the refunds it has paid out. Staff bring the customer to the manager.
- A customer's copy of their file (export) holds every sensitive field whole, ID number and
  health included, which staff never see: the store manager, who checks the customer's identity
  against the ID number, hands it over, or head office answers a request sent to the chain.
  Erasure destroys the file for good: the same two decide it.
- Membership rules (points, levels, discounts) are the store's commercial terms: its manager
  or head office sets them; everyone in the store reads them and a member's card and ledger.
  Points are redeemed at the counter, like a sale: store business, not an expert's.
- Who serves a customer (DOMAIN.md §9): the pool, its assignments and take-backs, and a staff
  member's departure are the manager's (or head office's) decisions; a customer's request for
  another representative is taken by the store's people (staff or manager), not by a till; the
  history of a file's owners is read by everyone in the store.
- Anyone who proposes products may ask what they would meet in the customer's health file; what
  each role is told of the match is ``purchases/contraindications.py``'s policy.
- Spreadsheet imports write hundreds of files or years of sales at once, under the store's name
  and without a person checking each row: a manager's or head office's act, and their reports
  (which quote the rows' names and phones) theirs to read.
"""

from crm_libs.access import EVERY_ROLE, AccessPolicy
from crm_libs.principal import Role

HQ, MANAGER, STAFF, EXPERT, PARTNER = (
    Role.HQ_ADMIN,
    Role.STORE_MANAGER,
    Role.STAFF,
    Role.EXPERT,
    Role.PARTNER,
)

HEAD_OFFICE = frozenset({HQ})
MANAGEMENT = frozenset({HQ, MANAGER})
STORE_BUSINESS = frozenset({HQ, MANAGER, STAFF, PARTNER})
REFUNDERS = MANAGEMENT | {PARTNER}
FILE_KEEPERS = STORE_BUSINESS | {EXPERT}

POLICY = AccessPolicy(
    operations={
        "POST /stores": HEAD_OFFICE,
        "GET /stores": EVERY_ROLE,
        "GET /stores/{store_id}": EVERY_ROLE,
        "POST /staff": MANAGEMENT,
        "GET /staff": EVERY_ROLE,
        "GET /staff/{staff_id}": EVERY_ROLE,
        "PATCH /staff/{staff_id}": MANAGEMENT,
        "POST /products": HEAD_OFFICE,
        "GET /products": EVERY_ROLE,
        "POST /customers": STORE_BUSINESS,
        "GET /customers": EVERY_ROLE,
        "GET /customers/{customer_id}": EVERY_ROLE,
        "PATCH /customers/{customer_id}": FILE_KEEPERS,
        "DELETE /customers/{customer_id}": MANAGEMENT,
        "POST /customers/{customer_id}/purchases": STORE_BUSINESS,
        "GET /customers/{customer_id}/purchases": EVERY_ROLE,
        "GET /customers/{customer_id}/warnings": EVERY_ROLE,
        "POST /purchases/{purchase_id}/refund": REFUNDERS,
        "GET /stores/{store_id}/membership-rules": EVERY_ROLE,
        "PUT /stores/{store_id}/membership-rules": MANAGEMENT,
        "GET /customers/{customer_id}/membership": EVERY_ROLE,
        "GET /customers/{customer_id}/points": EVERY_ROLE,
        "POST /customers/{customer_id}/points/redemptions": STORE_BUSINESS,
        "POST /customers/{customer_id}/relations": FILE_KEEPERS,
        "GET /customers/{customer_id}/relations": EVERY_ROLE,
        "DELETE /customers/{customer_id}/relations/{related_customer_id}": FILE_KEEPERS,
        "GET /customers/{customer_id}/family/purchases": EVERY_ROLE,
        "GET /customers/{customer_id}/completeness": EVERY_ROLE,
        "GET /customers/{customer_id}/referrals": EVERY_ROLE,
        "GET /customers/{customer_id}/history": EVERY_ROLE,
        "GET /customers/{customer_id}/ownership": EVERY_ROLE,
        "POST /customers/{customer_id}/transfer": MANAGEMENT | {STAFF},
        "POST /staff/{staff_id}/departure": MANAGEMENT,
        "GET /stores/{store_id}/pool": MANAGEMENT,
        "POST /stores/{store_id}/pool/assignments": MANAGEMENT,
        "POST /stores/{store_id}/pool/take-backs": MANAGEMENT,
        "GET /stores/{store_id}/analysis/sources": MANAGEMENT,
        "GET /customers/{customer_id}/export": MANAGEMENT,
        "POST /customers/{customer_id}/erase": MANAGEMENT,
        # Cleaning duplicates rewrites two files and moves their sales: a manager's act.
        "GET /customers/duplicates": MANAGEMENT,
        "POST /customers/{customer_id}/merge": MANAGEMENT,
        "GET /customers/{customer_id}/merges": MANAGEMENT,
        "POST /imports": MANAGEMENT,
        "GET /imports/{import_id}": MANAGEMENT,
        "GET /imports/{import_id}/errors": MANAGEMENT,
    }
)
