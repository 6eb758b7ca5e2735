"""The jobs benchmark keeps working (figures go in issue notes, never asserted here)."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.engine.conftest import ROOT
from tests.processes import SAFETY_LIMIT, die_with_parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_jobs_benchmark_prints_one_json_object_with_its_keys():
    if "postgresql" not in settings.DATABASES["default"]["ENGINE"] or not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.skip("bench/jobs.py measures the PostgreSQL + Redis configuration")
    result = subprocess.run(
        [sys.executable, "bench/jobs.py", "--json", "--repeats", "1", "--burst", "3", "--size", "64", "--steps", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=SAFETY_LIMIT, preexec_fn=die_with_parent(),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert {"raw_engine_s", "job_e2e_s", "job_overhead_ratio", "jobs_per_min"} <= figures.keys()
    assert figures["images_stored"] == 1 + 1 + 3  # warm-up, one timed job, the burst: one picture each
