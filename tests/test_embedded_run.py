"""The product starts for real: web server + Celery worker, no database or broker server.

These run real processes (honcho, runserver, a Celery worker), exactly as
`make run` does, in a temporary var/ folder. They die with the test run (tests/processes.py), and waits
end only at a generous safety limit: a busy machine makes them slower, never failed.
"""

import http.cookiejar
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.processes import SAFETY_LIMIT, die_with_parent, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The worker may still be starting on a busy machine: the answer is awaited up to the safety limit.
PING = f"from generation.tasks import ping; print(ping.delay('hello').get(timeout={SAFETY_LIMIT})['payload'])"

pytestmark = pytest.mark.slow


def _env(tmp_path, embedded=True, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    if embedded:
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_RESULT_BACKEND", None)
    env.update(LIFEBOOK_VAR_DIR=str(tmp_path / "var"), PATH=f"{BIN}:{env.get('PATH', '')}", **extra)
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env, *args):
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=SAFETY_LIMIT + 60, preexec_fn=die_with_parent())


def _stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C sends to the whole group
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_for(url, process):
    def answer():
        if process.poll() is not None:
            raise AssertionError(f"stopped early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read().decode()
        except OSError:
            return None

    return wait_until(answer, f"an answer from {url}", poll=0.5)


def test_make_runs_processes_serve_the_demo_book_and_consume_the_queue(tmp_path):
    port = _free_port()
    env = _env(tmp_path, DEBUG="1", LIFEBOOK_PORT=str(port))
    assert _manage(env, "migrate", "--noinput").returncode == 0
    demo = _manage(env, "load_demo", "--if-empty")
    assert "demo-caregiver" in demo.stdout and "demo-therapist" in demo.stdout

    # SIGTERM when this process dies: honcho then stops its own processes (and kills them 5 s later).
    honcho = subprocess.Popen([str(BIN / "honcho"), "start"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True,
                              preexec_fn=die_with_parent(signal.SIGTERM))
    try:
        base = f"http://127.0.0.1:{port}"
        login_page = _wait_for(f"{base}/accounts/login/", honcho)
        assert "Log in to Lifebook" in login_page

        # The demo caregiver logs in over real HTTP and sees Juan's book.
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', opener.open(f"{base}/accounts/login/").read().decode())[1]
        from django.conf import settings

        form = urllib.parse.urlencode({"username": "demo-caregiver", "password": settings.LIFEBOOK_DEMO_PASSWORD,
                                       "csrfmiddlewaretoken": token}).encode()
        dashboard = opener.open(urllib.request.Request(f"{base}/accounts/login/", data=form,
                                                       headers={"Referer": f"{base}/accounts/login/"})).read().decode()
        assert "Juan Pacheco" in dashboard

        # A task sent from another process is consumed by the real worker.
        ping = _manage(env, "shell", "--no-imports", "-c", PING)
        assert ping.stdout.strip().endswith("hello"), ping.stdout + ping.stderr
    finally:
        _stop(honcho)
    assert honcho.returncode is not None  # Ctrl-C stopped the web server and the worker together


def test_a_worker_consumes_from_the_configured_broker(tmp_path):
    """Embedded locally; Redis when CELERY_BROKER_URL says so (as in CI)."""
    env = _env(tmp_path, embedded=False)
    worker = subprocess.Popen(
        [str(BIN / "celery"), "-A", "lifebook", "worker", "--queues=default", "--pool=solo",
         "--without-gossip", "--without-mingle", "--loglevel=INFO"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        preexec_fn=die_with_parent(),
    )
    try:
        ping = _manage(env, "shell", "--no-imports", "-c", PING)
        assert ping.stdout.strip().endswith("hello"), ping.stdout + ping.stderr
    finally:
        _stop(worker)
    log = worker.stdout.read()
    broker = os.environ.get("CELERY_BROKER_URL", "filesystem://").split(":")[0]
    assert f"Connected to {broker}" in log, log
