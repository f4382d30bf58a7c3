"""The product catalogue: what is sold and how long one unit lasts."""

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from crm_libs.pagination import PageParams, keyset
from crm_libs.principal import Principal
from crm_libs.problems import Conflict, Forbidden
from customer_service.products.models import Product
from customer_service.products.schemas import ProductCreate


async def create(
    session: AsyncSession, *, principal: Principal, product_in: ProductCreate
) -> Product:
    """Add a product to the brand's catalogue (head office only)."""
    if not principal.sees_all_stores:
        raise Forbidden("Only head office maintains the catalogue")
    product = Product(**product_in.model_dump())
    session.add(product)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"A product with sku {product_in.sku!r} already exists") from exc
    return product


async def list_page(
    session: AsyncSession, *, page: PageParams, category: str | None
) -> list[Product]:
    query = keyset(select(Product), col(Product.id), page)
    if category:
        query = query.where(col(Product.category) == category)
    return list((await session.execute(query)).scalars())


async def by_sku(session: AsyncSession, *, skus: Iterable[str]) -> dict[str, Product]:
    rows = await session.execute(select(Product).where(col(Product.sku).in_(set(skus))))
    return {p.sku: p for p in rows.scalars()}
