"""A store's day through the gateway, for Locust: staff at the counter, tills, the mobile app.

Run by ``bench/load.py``, which seeds the store and writes the plan this file reads
(``CRM_LOAD_PLAN``: the store's customers, accounts and partner keys). Locust monkey-patches the
standard library with gevent when imported, so this file only ever runs inside ``locust``.

- **Staff** (most users) sign in once, read their work list, serve customers who walk in (search
  by the phone's last 4 digits, the only phone search their masked view allows, then open the
  file and now and then record a sale) and open files from the list.
- **Tills** (``CRM_LOAD_TILLS`` users, one partner key each) record sales with an
  ``Idempotency-Key``; now and then one resends a sale, as a till does after a timeout, and must
  get the first sale back.
- **The mobile app** (``CRM_LOAD_APPS`` users, the store manager's sign-in) reads scores.

Every request is named by its route template, so the statistics are per route (method and
template, as ``ROUTES`` lists them). Each response is
checked (status and the fields that prove it is the right answer); anything else is a failure.
The ``events.request`` hook keeps every request's start and latency, and writes them per route
to ``CRM_LOAD_RESULTS`` when Locust quits, with the moment every user was at work, for exact
percentiles over the steady state (Locust's own are bucketed and include the morning rush).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import ResponseContextManager

# Request names are route templates (Locust shows the method beside them).
SIGN_IN = "/auth/token"
WORK_LIST = "/tasks"
SEARCH = "/customers"
OPEN_FILE = "/customers/{id}"
SALE = "/customers/{id}/purchases"
SCORE = "/customers/{id}/score"
ROUTES = (
    f"POST {SIGN_IN}",
    f"GET {WORK_LIST}",
    f"GET {SEARCH}",
    f"GET {OPEN_FILE}",
    f"POST {SALE}",
    f"GET {SCORE}",
)

# A token lasts 15 minutes: sign in again a minute before it runs out (long runs).
TOKEN_MARGIN_SECONDS = 60
# One sale in this many, at a till, is sent a second time with the same key.
TILL_RESEND_ONE_IN = 5
# One customer served at the counter in this many buys something.
COUNTER_SALE_ONE_IN = 3

PLAN: dict[str, Any] = (
    json.loads(Path(os.environ["CRM_LOAD_PLAN"]).read_text())
    if os.environ.get("CRM_LOAD_PLAN")
    else {}
)
if not PLAN:
    raise SystemExit("CRM_LOAD_PLAN names no plan: run this through bench/load.py")


def _think() -> tuple[float, float]:
    low, _, high = os.environ.get("CRM_LOAD_THINK", "0,0").partition(",")
    return float(low), float(high or low)


THINK = _think()
CUSTOMERS: list[dict[str, str]] = PLAN["customers"]
_staff_accounts = itertools.cycle(PLAN["staff"])
_partner_keys = itertools.cycle(PLAN["partner_keys"])


class CheckFailed(Exception):
    """A response that is not the right answer."""


def checked(response: ResponseContextManager, status: int, check: Any = None) -> Any:
    """Mark ``response`` a success if it has ``status`` and its body passes ``check``.

    Returns the decoded body, or None after marking a failure (the caller stops there)."""
    try:
        if response.status_code != status:
            text = (response.text or "")[:300]
            raise CheckFailed(f"{response.status_code} (expected {status}): {text}")
        body = response.json()
        if check is not None:
            check(body)
    except (CheckFailed, ValueError, KeyError, TypeError, AssertionError) as exc:
        response.failure(f"{type(exc).__name__}: {exc}")
        return None
    response.success()
    return body


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


class SignedIn(FastHttpUser):
    """A user of the app: signs in with an account and sends its bearer token."""

    abstract = True
    wait_time = between(*THINK)
    account: dict[str, str]

    def on_start(self) -> None:
        self._token_until = 0.0
        self.headers: dict[str, str] = {}
        self.sign_in()

    def sign_in(self) -> None:
        body = {"username": self.account["username"], "password": self.account["password"]}
        with self.client.post("/auth/token", json=body, name=SIGN_IN, catch_response=True) as r:
            tokens = checked(r, 200, lambda b: expect(b["token_type"] == "bearer", "no bearer"))
        if tokens is None:
            self._token_until = 0.0
            return
        self.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        self._token_until = time.monotonic() + tokens["expires_in"] - TOKEN_MARGIN_SECONDS

    def signed_in(self) -> bool:
        if time.monotonic() >= self._token_until:
            self.sign_in()
        return bool(self.headers) and time.monotonic() < self._token_until


def sale_body(customer: dict[str, str], *, staff_id: str | None = None) -> dict[str, Any]:
    skus = random.sample(PLAN["skus"], k=random.randint(1, min(2, len(PLAN["skus"]))))
    body: dict[str, Any] = {
        "purchased_at": datetime.now(UTC).isoformat(),
        "items": [{"sku": sku, "qty": random.randint(1, 3)} for sku in skus],
    }
    if staff_id:
        body["staff_id"] = staff_id
    return body


def is_sale_of(customer: dict[str, str]) -> Any:
    def check(body: dict[str, Any]) -> None:
        expect(body["customer_id"] == customer["id"], "sale recorded on another customer")
        expect(bool(body["id"]) and float(body["total"]) > 0, "no sale id or total")

    return check


class Staff(SignedIn):
    """Staff at the counter, on their own account (a member of the store's roster)."""

    weight = 1

    def on_start(self) -> None:
        self.account = next(_staff_accounts)
        super().on_start()
        self.work_list()  # the first thing in the morning
        arrived(self.environment)

    @task(2)
    def work_list(self) -> None:
        if not self.signed_in():
            return
        mine = self.account["staff_id"]
        with self.client.get(
            f"/tasks?staff_id={mine}&status=open",
            headers=self.headers,
            name=WORK_LIST,
            catch_response=True,
        ) as r:
            checked(
                r,
                200,
                lambda b: expect(
                    all(t["assignee_staff_id"] == mine for t in b["items"]),
                    "someone else's task in the work list",
                ),
            )

    @task(6)
    def serve_walk_in(self) -> None:
        """A customer walks in and gives the last 4 digits of their phone."""
        if not self.signed_in():
            return
        customer = random.choice(CUSTOMERS)
        tail = customer["phone"][-4:]

        def found_masked(body: dict[str, Any]) -> None:
            hit = [c for c in body["items"] if c["id"] == customer["id"]]
            expect(len(hit) == 1, f"tail {tail} did not find the customer")
            phone = hit[0]["phone"] or ""
            expect("*" in phone and phone.endswith(tail), f"staff saw the phone as {phone!r}")

        with self.client.get(
            f"/customers?q={tail}", headers=self.headers, name=SEARCH, catch_response=True
        ) as r:
            if checked(r, 200, found_masked) is None:
                return
        if self.open_file(customer) and random.randrange(COUNTER_SALE_ONE_IN) == 0:
            with self.client.post(
                f"/customers/{customer['id']}/purchases",
                json=sale_body(customer, staff_id=self.account["staff_id"]),
                headers={**self.headers, "Idempotency-Key": uuid.uuid4().hex},
                name=SALE,
                catch_response=True,
            ) as r:
                checked(r, 201, is_sale_of(customer))

    @task(3)
    def open_from_list(self) -> None:
        if self.signed_in():
            self.open_file(random.choice(CUSTOMERS))

    def open_file(self, customer: dict[str, str]) -> bool:
        def same_file(body: dict[str, Any]) -> None:
            expect(body["id"] == customer["id"], "another customer's file")
            expect("*" in (body["phone"] or ""), "staff saw the whole phone number")

        with self.client.get(
            f"/customers/{customer['id']}",
            headers=self.headers,
            name=OPEN_FILE,
            catch_response=True,
        ) as r:
            return checked(r, 200, same_file) is not None


class Till(FastHttpUser):
    """A partner store's till system, on its own API key."""

    fixed_count = int(os.environ.get("CRM_LOAD_TILLS", "1"))
    wait_time = between(*THINK)

    def on_start(self) -> None:
        self.headers = {"X-API-Key": next(_partner_keys)}
        arrived(self.environment)

    @task
    def ring_up(self) -> None:
        customer = random.choice(CUSTOMERS)
        body = sale_body(customer)
        headers = {**self.headers, "Idempotency-Key": uuid.uuid4().hex}
        with self.client.post(
            f"/customers/{customer['id']}/purchases",
            json=body,
            headers=headers,
            name=SALE,
            catch_response=True,
        ) as r:
            first = checked(r, 201, is_sale_of(customer))
        if first is None or random.randrange(TILL_RESEND_ONE_IN):
            return
        # The till timed out waiting and sends the same sale again: the first one comes back.
        with self.client.post(
            f"/customers/{customer['id']}/purchases",
            json=body,
            headers=headers,
            name=SALE,
            catch_response=True,
        ) as r:
            checked(r, 201, lambda b: expect(b["id"] == first["id"], "a resent sale counted twice"))


class MobileApp(SignedIn):
    """The store manager's phone, reading customers' scores."""

    fixed_count = int(os.environ.get("CRM_LOAD_APPS", "1"))

    def on_start(self) -> None:
        self.account = PLAN["manager"]
        super().on_start()
        arrived(self.environment)

    @task
    def read_score(self) -> None:
        if not self.signed_in():
            return
        customer = random.choice(CUSTOMERS)
        with self.client.get(
            f"/customers/{customer['id']}/score",
            headers=self.headers,
            name=SCORE,
            catch_response=True,
        ) as r:
            checked(
                r,
                200,
                lambda b: expect(b["customer_id"] == customer["id"], "another customer's score"),
            )


# --- every request, per route, for bench/load.py --------------------------------------------

# Per route: [start (epoch seconds), milliseconds] of every request; failures' messages.
_requests: dict[str, list[tuple[float, float]]] = defaultdict(list)
_failures: dict[str, list[str]] = defaultdict(list)
_window: dict[str, float] = {}
_arrived: list[int] = [0]


def arrived(environment: Any) -> None:
    """A user is at work (signed in): once all are, the day's steady state starts.

    Everyone signing in at once is the morning's rush (password checks are slow on purpose);
    ``bench/load.py`` reports the other routes from this moment on."""
    _arrived[0] += 1
    runner = environment.runner
    if runner is not None and _arrived[0] >= runner.target_user_count:
        _window.setdefault("steady", time.time())


@events.request.add_listener
def _record(
    request_type: str,
    name: str,
    response_time: float,
    exception: BaseException | None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    route = f"{request_type} {name}"
    _requests[route].append((start_time or time.time(), response_time))
    if exception is not None:
        _failures[route].append(str(exception)[:300])


@events.test_start.add_listener
def _started(**_: Any) -> None:
    _window["started"] = time.time()


@events.test_stop.add_listener
def _stopped(**_: Any) -> None:
    _window["stopped"] = time.time()


@events.quitting.add_listener
def _write_results(**_: Any) -> None:
    out = os.environ.get("CRM_LOAD_RESULTS")
    if not out:
        return
    now = time.time()
    results = {
        "routes": list(ROUTES),
        "sign_in": f"POST {SIGN_IN}",
        "started": _window.get("started", now),
        "steady": _window.get("steady"),
        "stopped": _window.get("stopped", now),
        "requests": _requests,
        "failures": _failures,
    }
    Path(out).write_text(json.dumps(results))
