"""Each deployable's migrations build the schema its models describe: on a new database brought
to the latest revision, ``migrate --check`` (alembic's autogenerate comparison) finds no table,
column, index or type a model holds and no migration makes. The database is built by the
migrations alone, so a model changed without its migration would otherwise pass every test
that reads through the migrated schema, and fail on the first deployment that relies on it."""

import asyncio
import os
import subprocess
import sys

import pytest

from crm_devstack.fixtures import empty_database
from crm_devstack.stack import LocalStack

MODULES = ["customer_service", "engagement_service", "scoring_service", "crm_gateway"]


@pytest.mark.parametrize("module", MODULES)
async def test_the_latest_revision_is_the_models_schema(stack: LocalStack, module: str) -> None:
    url = empty_database(stack)
    # A process of its own: the models of one deployable only, as its migrations load them.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", f"{module}.migrate", "--check"],
        env={**os.environ, "CRM_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
