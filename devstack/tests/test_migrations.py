"""Each service's migrations build exactly the schema its models declare."""

import os
import subprocess
import sys

import pytest

from crm_devstack.stack import SERVICES, LocalStack


@pytest.mark.parametrize("module", [s.migrations_module for s in SERVICES if s.migrations_module])
def test_migrations_match_the_models(stack: LocalStack, module: str) -> None:
    name = f"check_{module}"
    stack.postgres.create_database(name)
    env = {**os.environ, "CRM_DATABASE_URL": stack.postgres.url(name)}
    done = subprocess.run(
        [sys.executable, "-m", f"{module}.migrate", "--check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
