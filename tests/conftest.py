"""Fixtures the end-to-end tests share."""

from typing import Any

import httpx
import pytest

from crm_devstack.stack import LocalStack


@pytest.fixture(scope="module")
async def document(stack: LocalStack) -> dict[str, Any]:
    """The gateway's merged OpenAPI document, every deployable's routes in one."""
    async with httpx.AsyncClient(base_url=stack.url("gateway")) as client:
        return (await client.get("/openapi.json")).json()
