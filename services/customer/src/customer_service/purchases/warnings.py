"""``GET /customers/{id}/warnings?sku=``: what proposing products to a customer would meet in
their health file, matched as a sale is (purchases/contraindications.py)."""

from typing import Any

from sqlalchemy import Text, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import col

from crm_libs.db import driver_sql
from crm_libs.field_crypto import FieldCipher
from crm_libs.principal import Principal
from crm_libs.problems import InvalidField
from customer_service.customers import service as customers
from customer_service.products.models import Product
from customer_service.purchases import contraindications

MAX_SKUS = 50

_TERMS = select(col(Product.sku), col(Product.contraindications), col(Product.allergens)).where(
    col(Product.sku) == any_(bindparam("skus", type_=ARRAY(Text)))
)


async def for_proposal(
    conn: Any, *, principal: Principal, customer_id: str, skus: list[str], cipher: FieldCipher
) -> tuple[list[contraindications.HealthWarning], bool]:
    """The warnings for proposing ``skus`` to a customer of the caller's store, and whether the
    health file was read for them.

    The customer is looked up first: another store's file is a 404 whatever the products.
    """
    customer = await customers.read(conn, principal=principal, customer_id=customer_id)
    if not skus:
        raise InvalidField("sku", "name at least one product (?sku=…)")
    if len(skus) > MAX_SKUS:
        raise InvalidField("sku", f"at most {MAX_SKUS} products at a time")
    wanted = list(dict.fromkeys(skus))
    sql, args = driver_sql(_TERMS, {"skus": wanted})
    catalogue = {row["sku"]: row for row in await conn.fetch(sql, *args)}
    for sku in wanted:
        if sku not in catalogue:
            raise InvalidField("sku", f"unknown product {sku!r}")
    products = [catalogue[sku] for sku in wanted]
    return (
        contraindications.check(customer, products, cipher),
        contraindications.consults_health(customer, products),
    )
