"""Property-based fuzzing of the whole API through the gateway, from its OpenAPI document."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crm_devstack.fixtures import throwaway_stack
from crm_devstack.stack import LocalStack

# Bounded so the whole suite stays well inside CI's time; raise CRM_FUZZ_EXAMPLES to dig deeper.
EXAMPLES = os.environ.get("CRM_FUZZ_EXAMPLES", "12")


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[LocalStack]:
    """A system of its own: the fuzzer creates, changes and disables accounts at random."""
    with throwaway_stack({"CRM_RATE_LIMIT": "1000000/minute"}) as local:
        yield local


def test_no_server_errors_and_responses_match_the_schema(
    fuzz_stack: LocalStack, tmp_path: Path
) -> None:
    stack = fuzz_stack
    admin_token = httpx.post(
        stack.url("gateway") + "/api/v1/auth/token",
        json={"username": "admin", "password": stack.admin_password},
    ).json()["access_token"]
    cli = Path(sys.executable).parent / "schemathesis"
    done = subprocess.run(
        [
            str(cli),
            "run",
            f"{stack.url('gateway')}/openapi.json",
            "--header",
            f"Authorization: Bearer {admin_token}",
            "--checks",
            "not_a_server_error,response_schema_conformance,content_type_conformance",
            "--max-examples",
            EXAMPLES,
            "--seed",
            "20261125",
            "--generation-with-security-parameters",
            "false",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,  # its cache of crashes stays out of the repository
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # It must really have reached the API, not been turned away at the door.
    assert "Authentication failed" not in done.stdout, done.stdout[-6000:]
    assert "passed" in done.stdout, done.stdout[-3000:]
