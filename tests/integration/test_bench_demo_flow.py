"""The demo-flow benchmark keeps working: real workers, the API, the demo recipe (figures go in notes, never
asserted here)."""

import json
import subprocess
import sys

import pytest

from tests.engine.conftest import ROOT
from tests.processes import SAFETY_LIMIT, die_with_parent

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_flow_benchmark_prints_one_json_object_with_each_stage():
    result = subprocess.run(
        [sys.executable, "bench/demo_flow.py", "--json", "--photos", "3", "--pictures", "1", "--steps", "4",
         "--training-options", json.dumps({"checkpoint_every": 2, "sample_steps": 1})],
        cwd=ROOT, capture_output=True, text=True, timeout=SAFETY_LIMIT, preexec_fn=die_with_parent(),
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures["stages_s"]) == {"book", "photos", "training", "choose", "memory", "pictures"}
    assert {"seconds", "workers_start_s", "torch_threads", "load_average_before"} <= figures.keys()
    assert figures["pictures"] == 1
    assert figures["checkpoints"] == 2  # steps 2 and 4
