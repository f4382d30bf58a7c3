"""The JSON of the events scoring consumes, as msgspec decodes it: only the fields scoring reads
(scores/consumed.py)."""

import re
from datetime import date, datetime
from decimal import Decimal

import msgspec

# A registration that does not say: the country's zone (DOMAIN.md: stores are in China).
DEFAULT_TIMEZONE = "Asia/Shanghai"

# The canonical text of a UUID, as EventEnvelope writes it: claimed as it is, no UUID object.
# Any other spelling goes the long way and is claimed in this form all the same. Checked after
# decoding (scores/consumed.py): the same expression as msgspec's ``Meta(pattern=...)``, a
# third of the envelope's decoding there, costs a quarter of that called from Python.
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class WireEnvelope(msgspec.Struct, gc=False):
    event_id: str  # the canonical text of a UUID once CANONICAL_UUID has matched it
    type: str
    store_id: str
    customer_id: str
    payload: msgspec.Raw
    version: int = 1
    occurred_at: datetime | None = None


class WireLine(msgspec.Struct, gc=False):
    qty: int
    days_per_unit: int
    # What was bought (scores/next_purchase.py); a line without a sku is not kept as bought.
    sku: str | None = None
    category: str | None = None
    # The line's total (the analysis's revenue by product); a line without one is not kept.
    amount: Decimal | None = None


class WirePurchase(msgspec.Struct, gc=False):
    purchase_id: str
    purchased_at: datetime
    purchased_on: date
    timezone: str
    total: Decimal
    lines: list[WireLine]
    staff_id: str | None = None


class WireRefund(msgspec.Struct, gc=False):
    purchase_id: str
    refund_id: str
    refunded_at: datetime
    total: Decimal
    lines: list[WireLine]


class WireFile(msgspec.Struct, gc=False):
    version: int
    referrer_id: str | None = None
    uses_competitor_products: bool = False
    district: str | None = None


class WireRegistration(msgspec.Struct, gc=False):
    timezone: str = DEFAULT_TIMEZONE
    file: WireFile | None = None


class WireMerge(msgspec.Struct, gc=False):
    merged_into: str
    file: WireFile | None = None


class WireFileChange(msgspec.Struct, gc=False):
    file: WireFile | None = None


class WireVisit(msgspec.Struct, gc=False):
    visit_id: str
    occurred_at: datetime
    # Absent in a visit published before they were carried: not kept (analysis/seen.py).
    method: str | None = None
    reached: bool | None = None


class WireAttended(msgspec.Struct, gc=False):
    event_id: str
    attended_at: datetime


class WireGuestBrought(msgspec.Struct, gc=False):
    event_id: str
    brought_at: datetime


class WireScheduled(msgspec.Struct, gc=False):
    event_id: str
    starts_at: datetime
    title: str | None = None


class WireCancelled(msgspec.Struct, gc=False):
    event_id: str
    cancelled_at: datetime | None = None
