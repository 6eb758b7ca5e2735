"""The worker's heartbeat: it reads the cancel flag beside the work and records the step it saw it at, so a
test can check that the work stopped within one step of that (tests/integration checks it with real workers)."""

import logging

import pytest

from generation import jobs
from generation.models import GenerationJob
from generation.runner import Heartbeat, claim
from tests import factories

pytestmark = pytest.mark.django_db


def test_a_cancel_is_seen_at_the_step_last_reported_and_the_stop_is_logged_with_both_steps(caplog):
    caplog.set_level(logging.INFO, logger="generation.runner")
    job = claim(GenerationJob, jobs.submit_generation(factories.MemoryFactory(), steps=10).pk)
    heartbeat = Heartbeat(job, interval=3600)  # it beats when this test says so
    heartbeat.start()
    heartbeat.report(step=3)
    heartbeat.beat()
    assert not heartbeat.should_stop() and heartbeat.cancel_seen_at_step is None

    jobs.cancel(job)
    heartbeat.report(step=4)
    heartbeat.beat()
    assert heartbeat.should_stop() and heartbeat.cancel_seen_at_step == 4
    heartbeat.report(step=5)  # the step that was under way when the flag was set
    heartbeat.stop()

    job.refresh_from_db()
    assert job.step == 5
    assert f"GenerationJob {job.pk}: cancel seen at step 4." in caplog.messages
    assert f"GenerationJob {job.pk}: stopped at step 5 after the cancel seen at step 4." in caplog.messages
