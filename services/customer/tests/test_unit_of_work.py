"""A 2xx means the write is committed (regression test).

The session dependency once committed after the response had been sent: a client could read
back nothing for what it had just created, and a failing commit would still have answered 201.
"""

import asyncpg
import httpx
from starlette.types import Message, Receive, Scope, Send

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_libs.db import asyncpg_dsn
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from customer_service.config import Settings
from customer_service.main import create_app


async def test_the_transaction_is_committed_before_the_response_starts(stack: LocalStack) -> None:
    url = migrated_database(stack, "customer_service")
    app = create_app(
        Settings(database_url=url, kafka_bootstrap=stack.broker.bootstrap, environment="test")
    )
    stores_seen_at_response: list[int] = []

    async def spying_app(scope: Scope, receive: Receive, send: Send) -> None:
        async def spy(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Another connection: sees only what is committed.
                conn = await asyncpg.connect(asyncpg_dsn(url))
                try:
                    stores_seen_at_response.append(
                        await conn.fetchval("SELECT count(*) FROM store")
                    )
                finally:
                    await conn.close()
            await send(message)

        await app(scope, receive, spy)

    token = sign_principal(Principal(subject="t", role=Role.HQ_ADMIN), secret=DEV_PRINCIPAL_SECRET)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=spying_app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://customer", headers={PRINCIPAL_HEADER: token}
        ) as client:
            response = await client.post("/stores", json={"code": "UOW1", "name": "x"})
    assert response.status_code == 201
    assert stores_seen_at_response == [1]
