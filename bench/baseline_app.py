"""The minimal baseline for ``bench/service.py``: bare FastAPI + asyncpg, no SQLAlchemy.

    CRM_DATABASE_URL=postgresql://... uvicorn baseline_app:create_app --factory --app-dir bench

The same read and the same write as the customer service, on the customer service's own
database, with nothing else: no principal, no access policy, no request IDs, no metrics, no
problem handlers, no validation beyond parsing. What the service costs above this is what its
frame (authentication, ORM, middleware, serialisation) costs.

- ``GET /customers/{id}``: one row by key, answered with the JSON a head-office caller gets from
  the service for a file without sensitive data (same fields, same order, ETag header).
- ``POST /customers/{id}/purchases``: the statements the service sends for a sale without an
  ``Idempotency-Key``: the customer's store and time zone (with the named staff member's store),
  the catalogue rows of the items, then the purchase row, its lines and one ``purchase.recorded``
  outbox row with the same envelope in one statement (atomic by itself, so no BEGIN/COMMIT);
  answered with the same JSON (201).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import orjson
from fastapi import FastAPI, Request, Response

from crm_libs.ids import new_id

_CENT = Decimal("0.01")
# Every column, like the service's read (its statement names each column of the model).
_READ = "SELECT * FROM customer WHERE id = $1"
# A file nobody gave consents for shows them refused, like the service's.
_NO_CONSENTS = {"sms": {"granted": False, "at": None, "channel": None}}
_CUSTOMER_STORE = """
    SELECT c.store_id, s.timezone, (SELECT st.store_id FROM staff st WHERE st.id = $2) AS staff
    FROM customer c JOIN store s ON s.id = c.store_id
    WHERE c.id = $1
"""
_PRODUCTS = "SELECT sku, id, category, unit_price, days_per_unit FROM product WHERE sku = ANY($1)"
_INSERT_SALE = """
    WITH sale AS (
        INSERT INTO purchase
            (id, store_id, customer_id, staff_id, member_event_id, purchased_at, total)
        VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::timestamptz, $7::numeric)
    ), sale_lines AS (
        INSERT INTO purchase_line (purchase_id, product_id, sku, qty, unit_price, amount)
        SELECT $1::text, line.*
        FROM unnest($8::text[], $9::text[], $10::int[], $11::numeric[], $12::numeric[]) AS line
    )
    INSERT INTO outbox_event (event_id, topic, key, envelope)
    VALUES ($13::text, $14::text, $3::text, $15::jsonb)
"""


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _parsed(value: str | None) -> Any:
    """jsonb as the bare driver hands it over (text), parsed."""
    return orjson.loads(value) if value is not None else None


def _iso(moment: datetime) -> str:
    # pydantic's JSON form of an aware UTC time ends in "Z", Python's isoformat in "+00:00".
    return moment.isoformat().replace("+00:00", "Z")


def _json(body: dict[str, Any], status_code: int = 200, etag: str | None = None) -> Response:
    headers = {"ETag": etag} if etag else None
    return Response(
        orjson.dumps(body), status_code=status_code, media_type="application/json", headers=headers
    )


def _customer_file(row: Any) -> dict[str, Any]:
    """The JSON head office gets from the service for a file the benchmark reads: no phones,
    no ID number or health data, solar birthday, nothing in the profile's JSON columns that
    the service would complete with missing keys (the benchmark checks the two are equal)."""

    def day(value: Any) -> str | None:
        return value.isoformat() if value else None

    stage, grade = row["prospect_stage"], row["prospect_grade"]
    return {
        "id": row["id"],
        "store_id": row["store_id"],
        "name": row["name"],
        "phone": None,
        "phones": [],
        "gender": row["gender"],
        "ethnicity": row["ethnicity"],
        "approximate_age": row["approximate_age"],
        "birthday": day(row["birthday"]),
        "birthday_calendar": row["birthday_calendar"],
        "wedding_anniversary": day(row["wedding_anniversary"]),
        "email": row["email"],
        "address": row["address"],
        "id_number": None,
        "owner_staff_id": row["owner_staff_id"],
        "deep": row["deep"],
        "health": None,
        "health_consent_at": _iso(row["health_consent_at"]) if row["health_consent_at"] else None,
        "source": row["source"],
        "referrer_id": row["referrer_id"],
        "prospect": {"stage": stage, "grade": grade} if stage or grade else None,
        "consents": row["consents"] or _NO_CONSENTS,
        "status": row["status"],
        "merged_into": row["merged_into"],
        "version": row["version"],
        "created_at": _iso(row["created_at"]),
    }


def create_app() -> FastAPI:
    dsn = os.environ["CRM_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://", 1)
    pool_size = int(os.environ.get("CRM_DATABASE_POOL_SIZE", "20"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def init(conn: asyncpg.Connection) -> None:
            # JSONB as text in, like the service's driver setup: the envelope is dumped once.
            await conn.set_type_codec(
                "jsonb", encoder=lambda v: v, decoder=orjson.loads, schema="pg_catalog"
            )

        app.state.pool = await asyncpg.create_pool(
            dsn, min_size=pool_size, max_size=pool_size, init=init
        )
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(title="Baseline", lifespan=lifespan)

    @app.get("/customers/{customer_id}")
    async def read(customer_id: str, request: Request) -> Response:
        row = await request.app.state.pool.fetchrow(_READ, customer_id)
        if row is None:
            return _json({"detail": "No such customer"}, 404)
        return _json(_customer_file(row), etag=f'"{row["version"]}"')

    @app.post("/customers/{customer_id}/purchases")
    async def purchase(customer_id: str, request: Request) -> Response:
        body = orjson.loads(await request.body())
        staff_id, member_event_id = body.get("staff_id"), body.get("member_event_id")
        async with request.app.state.pool.acquire() as conn:
            customer = await conn.fetchrow(_CUSTOMER_STORE, customer_id, staff_id)
            if customer is None:
                return _json({"detail": "No such customer"}, 404)
            items = body["items"]
            products = {r["sku"]: r for r in await conn.fetch(_PRODUCTS, [i["sku"] for i in items])}
            purchased_at = datetime.fromisoformat(body["purchased_at"]).astimezone(UTC)
            lines = []
            for item in items:
                product = products[item["sku"]]
                price = (
                    Decimal(item["unit_price"]) if item.get("unit_price") else product["unit_price"]
                )
                lines.append((product, item["qty"], _cents(price), _cents(price * item["qty"])))
            total = sum((amount for *_, amount in lines), Decimal("0.00"))
            purchase_id = new_id()
            timezone = customer["timezone"]
            event_id = str(uuid.uuid4())
            envelope = {
                "event_id": event_id,
                "type": "purchase.recorded",
                "version": 1,
                "occurred_at": _iso(purchased_at),
                "store_id": customer["store_id"],
                "customer_id": customer_id,
                "payload": {
                    "purchase_id": purchase_id,
                    "purchased_at": purchased_at.isoformat(),
                    "purchased_on": purchased_at.astimezone(ZoneInfo(timezone)).date().isoformat(),
                    "timezone": timezone,
                    "staff_id": staff_id,
                    "member_event_id": member_event_id,
                    "total": f"{total:.2f}",
                    "lines": [
                        {
                            "sku": p["sku"],
                            "category": p["category"],
                            "qty": qty,
                            "unit_price": f"{price:.2f}",
                            "amount": f"{amount:.2f}",
                            "days_per_unit": p["days_per_unit"],
                        }
                        for p, qty, price, amount in lines
                    ],
                },
            }
            await conn.execute(
                _INSERT_SALE,
                purchase_id,
                customer["store_id"],
                customer_id,
                staff_id,
                member_event_id,
                purchased_at,
                total,
                [p["id"] for p, *_ in lines],
                [p["sku"] for p, *_ in lines],
                [qty for _, qty, _, _ in lines],
                [price for *_, price, _ in lines],
                [amount for *_, amount in lines],
                event_id,
                "crm.purchases.v1",
                orjson.dumps(envelope).decode(),
            )
        return _json(
            {
                "id": purchase_id,
                "store_id": customer["store_id"],
                "customer_id": customer_id,
                "staff_id": staff_id,
                "member_event_id": member_event_id,
                "purchased_at": _iso(purchased_at),
                "total": f"{total:.2f}",
                "items": [
                    {
                        "sku": p["sku"],
                        "qty": qty,
                        "unit_price": f"{price:.2f}",
                        "amount": f"{amount:.2f}",
                    }
                    for p, qty, price, amount in lines
                ],
            },
            201,
        )

    return app
