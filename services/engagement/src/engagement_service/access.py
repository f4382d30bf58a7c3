"""Which roles may call each operation of the engagement service: one declared policy (OWASP API5).

Store scope is not decided here: every role but head office still sees only its own store.
Follow-up tasks are store business: staff and experts work them, managers oversee them, and a
partner store's system may read them to show in its own tools. Only a manager (or head office)
gives a task to someone else: the work list is the manager's to balance. Visits are logged by
the store's people, never by a partner's system, and a partner does not read them either: their
notes are the staff's own words about a customer's home and health. Staff statistics are a
store's performance review: staff and experts read their own (stats/router.py checks the
account's staff member), managers their store's, and a partner's system none.
Member events: a manager schedules and cancels them; the store's people invite, record
replies and check customers and guests in; a partner's system may read the events (its till
tags the orders taken at one) but not who was invited.
Complaints: a partner store's system may open one where the customer made it (its counter or
hotline tool) and read the store's complaints to show their progress; the four steps are a
person's listening, apology, solution and question, so only the store's people take them. A
store's complaint statistics are the manager's, as staff statistics are.
The SMS provider's callbacks (``/sms/callbacks/aliyun/{token}/...``) are not operations of the
API: the platform calls them, not a principal, and the provider checks the secret token in their
path. They stay out of the OpenAPI document and so out of this policy, and the gateway forwards
those two paths alone without a principal (``crm_gateway.routes.CALLBACK_ROUTES``).
"""

from crm_libs.access import EVERY_ROLE, AccessPolicy
from crm_libs.principal import Role

STORE_PEOPLE = frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER, Role.STAFF, Role.EXPERT})
MANAGERS = frozenset({Role.HQ_ADMIN, Role.STORE_MANAGER})

POLICY = AccessPolicy(
    operations={
        "GET /tasks": EVERY_ROLE,
        "POST /tasks/{task_id}/complete": STORE_PEOPLE,
        "POST /tasks/{task_id}/reschedule": STORE_PEOPLE,
        "POST /tasks/{task_id}/reassign": MANAGERS,
        "POST /visits": STORE_PEOPLE,
        "GET /visits": STORE_PEOPLE,
        "GET /staff/{staff_id}/stats": STORE_PEOPLE,
        "GET /stores/{store_id}/staff-stats": MANAGERS,
        # Care messages: the template library is the store's (or head office's) to keep, what
        # every message says; the store's people send and read messages; a partner's system
        # neither (a till has no business writing to the store's customers in its name).
        "POST /templates": MANAGERS,
        "GET /templates": STORE_PEOPLE,
        "POST /messages": STORE_PEOPLE,
        "GET /messages": STORE_PEOPLE,
        # Campaigns: a manager decides what goes to many customers at once and sends it; the
        # store's people may read one and preview it (who it reaches, what it says), the check
        # a staff member is asked to make before the manager sends.
        "POST /campaigns": MANAGERS,
        "GET /campaigns": STORE_PEOPLE,
        "GET /campaigns/{campaign_id}": STORE_PEOPLE,
        "POST /campaigns/{campaign_id}/preview": STORE_PEOPLE,
        "POST /campaigns/{campaign_id}/send": MANAGERS,
        "POST /events": MANAGERS,
        "GET /events": EVERY_ROLE,
        "GET /events/{event_id}": EVERY_ROLE,
        "DELETE /events/{event_id}": MANAGERS,
        "POST /events/{event_id}/invitations": STORE_PEOPLE,
        "GET /events/{event_id}/invitations": STORE_PEOPLE,
        "PATCH /events/{event_id}/invitations/{customer_id}": STORE_PEOPLE,
        "POST /events/{event_id}/checkins": STORE_PEOPLE,
        "POST /complaints": EVERY_ROLE,
        "GET /complaints": EVERY_ROLE,
        "GET /complaints/{complaint_id}": EVERY_ROLE,
        "POST /complaints/{complaint_id}/steps": STORE_PEOPLE,
        "GET /stores/{store_id}/complaint-stats": MANAGERS,
    }
)
