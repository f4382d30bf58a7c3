"""The store-day load test (bench/load.py + bench/locustfile.py) runs, briefly, for correctness.

Locust runs in a process of its own (it patches the standard library with gevent), against the
session's stack: a few users for a few seconds, paced so that each till's partner key stays
under the session stack's 40 requests a minute. What is asserted is that every route of the day
was exercised and every answer was right; never how fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crm_devstack.stack import LocalStack

ROOT = Path(__file__).resolve().parents[1]
ROUTES = {
    "POST /auth/token",
    "GET /tasks",
    "GET /customers",
    "GET /customers/{id}",
    "POST /customers/{id}/purchases",
    "GET /customers/{id}/score",
}


def test_a_store_day_under_load_gets_only_right_answers(stack: LocalStack, tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    # 4 users: 2 staff, 1 till, 1 mobile app; a task every 0.5-1 s keeps the till near 15 a
    # run, well inside its key's limit.
    command = [
        sys.executable,
        str(ROOT / "bench" / "load.py"),
        "--gateway",
        stack.url("gateway"),
        "--users",
        "4",
        "--duration",
        "10",
        "--think",
        "0.5,1",
        "--customers",
        "20",
        "--staff",
        "2",
        "--summary-json",
        str(summary_file),
    ]
    env = {**os.environ, "CRM_BOOTSTRAP_ADMIN_PASSWORD": stack.admin_password}
    ran = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr[-4000:]

    summary = json.loads(summary_file.read_text())
    assert summary["failures"] == 0, summary["routes"]
    assert summary["locust_exit_code"] == 0
    assert set(summary["routes"]) == ROUTES
    assert {route for route, r in summary["routes"].items() if r["requests_whole_run"]} == ROUTES
