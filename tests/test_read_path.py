"""Scoring's and engagement's reads send their SELECT and nothing else: no BEGIN ... COMMIT, no
liveness ping (the customer service's own reads are covered in its tests)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from crm_devstack.fixtures import migrated_database
from crm_devstack.stack import LocalStack
from crm_devstack.statement_log import StatementLog
from crm_libs.principal import PRINCIPAL_HEADER, Principal, Role, sign_principal
from crm_libs.settings import DEV_PRINCIPAL_SECRET
from engagement_service import config as engagement_config
from engagement_service.main import create_app as create_engagement
from scoring_service import config as scoring_config
from scoring_service.main import create_app as create_scoring


@asynccontextmanager
async def in_process(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (workers included), and a head-office client of it."""
    token = sign_principal(Principal(subject="t", role=Role.HQ_ADMIN), secret=DEV_PRINCIPAL_SECRET)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://service",
            headers={PRINCIPAL_HEADER: token},
        ) as client,
    ):
        yield client


def _settings(stack: LocalStack, module: str) -> dict[str, Any]:
    return {
        "database_url": migrated_database(stack, module),
        "kafka_bootstrap": stack.broker.bootstrap,
        "environment": "test",
    }


async def test_a_score_read_sends_its_select_and_nothing_else(stack: LocalStack) -> None:
    settings = scoring_config.Settings(**_settings(stack, "scoring_service"))
    app = create_scoring(settings)
    async with in_process(app) as api:
        log = StatementLog(app)
        response = await api.get("/customers/nobody/score")
        assert response.status_code == 404
        # The request's own statement (the daily ageing's check reads the table too).
        sent = await log.around("WHERE customer_score.customer_id")
    assert len(sent) == 1, sent
    assert sent[0].startswith("SELECT")


async def test_a_task_list_sends_its_select_and_nothing_else(stack: LocalStack) -> None:
    settings = engagement_config.Settings(**_settings(stack, "engagement_service"))
    app = create_engagement(settings)
    async with in_process(app) as api:
        log = StatementLog(app)
        response = await api.get("/tasks", params={"customer_id": "nobody"})
        assert response.status_code == 200
        # The list's statement (it joins the file for the store's day: overdue is computed).
        sent = await log.around("FROM task LEFT OUTER JOIN customer_file")
    assert len(sent) == 1, sent
    assert sent[0].startswith("SELECT")
