"""Browser tests: Debian's Chromium driven by Playwright, against pytest-django's live server, with real
Celery workers on the tiny model. Run alone with `pytest -m browser`."""

import json
from pathlib import Path

import pytest

from tests.integration.test_worker_jobs import Workers, _require_services

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"


@pytest.fixture
def flow_settings(settings, tmp_path):
    _require_services()
    settings.LIFEBOOK_TRAINING_DIR = tmp_path / "training"
    settings.LIFEBOOK_MODELS_DIR = ROOT / "var" / "models"
    return settings


@pytest.fixture
def worker(flow_settings, tmp_path):
    """One real worker on every queue, as `make run` starts it."""
    from lifebook.celery import app

    with app.connection_for_write() as conn:
        for queue in ("default", "generate", "train"):
            conn.default_channel.queue_purge(queue)
    pool = Workers(tmp_path, flow_settings)
    # Twenty steps are enough for the demo model to leave checkpoints to pick from.
    pool.env["LIFEBOOK_TRAINING_OPTIONS"] = json.dumps({**json.loads(pool.env["LIFEBOOK_TRAINING_OPTIONS"]), "steps": 20})
    pool.start()
    yield pool
    pool.stop_all()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name):
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the test item, so a fixture can tell a failure (and leave a screenshot)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
