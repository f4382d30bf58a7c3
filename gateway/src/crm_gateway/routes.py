"""Which service owns which path: the gateway is configuration, not business logic."""

import re
from dataclasses import dataclass

API_PREFIX = "/api/v1"

_ID = r"[^/]+"


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    service: str


# Only what a service serves today (a route for a service that does not answer it yet would be
# advertised as a 404 or 502): add a line when the service gains the path.
# Most specific first: a customer's score belongs to scoring, the rest of the file to customer.
ROUTES: tuple[Route, ...] = tuple(
    Route(re.compile(pattern), service)
    for pattern, service in (
        (rf"^/customers/{_ID}/score(/history)?$", "scoring"),
        (rf"^/customers/{_ID}/ladder-floor$", "scoring"),
        (rf"^/stores/{_ID}/models/fit$", "scoring"),
        (rf"^/stores/{_ID}/distribution$", "scoring"),
        (rf"^/stores/{_ID}/tier-rules$", "scoring"),
        (rf"^/stores/{_ID}/analysis/(consumption|churn|contact-times)$", "scoring"),
        (rf"^/stores/{_ID}/report$", "scoring"),
        (r"^/scores(/recompute)?$", "scoring"),
        (rf"^/tasks(/{_ID}/(complete|reschedule|reassign))?$", "engagement"),
        (r"^/visits$", "engagement"),
        (rf"^/staff/{_ID}/stats$", "engagement"),
        (rf"^/stores/{_ID}/staff-stats$", "engagement"),
        (r"^/(templates|messages)$", "engagement"),
        (rf"^/campaigns(/{_ID}(/preview|/send)?)?$", "engagement"),
        (rf"^/events(/{_ID}(/invitations(/{_ID})?|/checkins)?)?$", "engagement"),
        (rf"^/stores/{_ID}/complaint-stats$", "engagement"),
        (rf"^/complaints(/{_ID}(/steps)?)?$", "engagement"),
        (r"^/(stores|staff|products|customers)(/.*)?$", "customer"),
        (rf"^/purchases/{_ID}/refund$", "customer"),
        (r"^/imports(/.*)?$", "customer"),
    )
)
SERVICES = ("customer", "engagement", "scoring")

# Paths an outside platform calls back (the SMS provider's delivery reports and replies): no
# account or key stands behind them, so the gateway forwards them, POST only, without a
# principal, and the owning service authenticates each itself (a secret token in the path).
# Nothing else goes through unauthenticated, and these are in no API document.
CALLBACK_ROUTES: tuple[Route, ...] = (
    Route(re.compile(rf"^/sms/callbacks/aliyun/{_ID}/(reports|replies)$"), "engagement"),
)


def owner_of(path: str) -> str | None:
    """The service that answers ``path`` (without the API prefix), or None."""
    # The upstream URL would resolve a dot segment to a path outside the route that matched
    # (/customers/x/score/../../../metrics is scoring's internal /metrics): no owner.
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    for route in ROUTES:
        if route.pattern.match(path):
            return route.service
    return None


def callback_owner(path: str) -> str | None:
    """The service a platform's callback to ``path`` is for, or None."""
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    for route in CALLBACK_ROUTES:
        if route.pattern.match(path):
            return route.service
    return None
