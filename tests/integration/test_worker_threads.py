"""A real worker process takes its share of torch's threads at its start (generation.runner.use_torch_threads)."""

import os
from pathlib import Path

import pytest

from tests.integration.test_worker_jobs import job_settings, workers  # noqa: F401  (fixtures)
from tests.processes import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def said_threads(worker) -> str:
    log = Path(worker.log_path)
    wait_until(lambda: "thread(s) in this worker process" in log.read_text(), "the worker's thread count")
    return log.read_text()


def test_a_worker_process_takes_its_share_of_the_cores_or_the_setting(workers):  # noqa: F811
    cores = len(os.sched_getaffinity(0))
    workers.env.pop("LIFEBOOK_TORCH_THREADS", None)
    workers.env["LIFEBOOK_WORKER_PROCESSES"] = str(cores)  # as many workers as cores: one thread each
    assert "Torch uses 1 thread(s) in this worker process." in said_threads(workers.start(queues="default"))
    workers.env["LIFEBOOK_TORCH_THREADS"] = str(cores + 1)  # the setting wins, whatever the share
    assert f"Torch uses {cores + 1} thread(s) in this worker process." in said_threads(workers.start(queues="default"))
