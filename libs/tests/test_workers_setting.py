"""The ``workers`` setting as an image's start command reads it (``python -m crm_libs.workers``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from crm_libs.settings import BaseServiceSettings


def start_command_workers(
    env: Mapping[str, str], *, cores: set[int] | None = None
) -> subprocess.CompletedProcess[str]:
    """What the image's CMD substitutes for ``--workers``, run on ``cores`` only if given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return subprocess.run(
        [sys.executable, "-m", "crm_libs.workers"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=(lambda: os.sched_setaffinity(0, cores)) if cores else None,
    )


def test_the_default_is_the_cores_the_process_may_use() -> None:
    everything = os.sched_getaffinity(0)
    if len(everything) < 2:
        pytest.skip("needs two cores to tell one from all")
    development = {"CRM_ENVIRONMENT": "development"}
    on_all = start_command_workers(development)
    assert on_all.returncode == 0, on_all.stderr
    assert int(on_all.stdout) == min(len(everything), 8)
    on_one = start_command_workers(development, cores={min(everything)})
    assert on_one.returncode == 0, on_one.stderr
    assert int(on_one.stdout) == 1


def test_crm_workers_wins_and_the_metrics_directory_is_emptied(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics"
    (metrics / "old").mkdir(parents=True)
    (metrics / "counter_4242.db").write_bytes(b"a previous run's values")
    result = start_command_workers(
        {"CRM_ENVIRONMENT": "production", "CRM_PRINCIPAL_SECRET": "p" * 40, "CRM_WORKERS": "3"}
        | {"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
    assert metrics.is_dir() and not any(metrics.iterdir())


def test_one_worker_in_tests_unless_asked_and_never_none() -> None:
    assert BaseServiceSettings(environment="test").workers == 1
    assert BaseServiceSettings(environment="test", workers=2).workers == 2
    bad = start_command_workers({"CRM_ENVIRONMENT": "development", "CRM_WORKERS": "0"})
    assert bad.returncode != 0 and not bad.stdout  # uvicorn then refuses an empty --workers
