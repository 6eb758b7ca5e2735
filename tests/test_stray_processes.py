"""Processes that tests start die with the test run, even when the run is killed with SIGKILL.

A small parent process stands in for pytest: it starts a process as the fixtures do (tests/processes.py),
and one without the helper for comparison; then it is killed with SIGKILL, which runs no clean-up code.
"""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.processes import die_with_parent, is_running, wait_until

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(die_with_parent() is None, reason="PR_SET_PDEATHSIG is Linux's")

# argv: the signal the child asks for, its log file, a word for the comparison's command line, the child's
# command. Prints the child's pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
from tests.processes import die_with_parent
with open(sys.argv[2], "w") as log:
    child = subprocess.Popen(sys.argv[4:], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=die_with_parent(int(sys.argv[1])))
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)", sys.argv[3]],
                 start_new_session=True)  # the comparison: the same kind of start, without the helper
print(child.pid, flush=True)
time.sleep(3600)
"""


def running(word: str) -> list[int]:
    """The processes still running whose command line holds `word`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if word.encode() in command and is_running(int(entry.name)):
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def words():
    """Words in the command lines of the child (and whatever it starts) and of the comparison, to find them."""
    word = uuid.uuid4().hex
    yield f"child-{word}", f"comparison-{word}"
    for pid in running(word):  # whatever is left, the comparison at least
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_parent(tmp_path, signum, comparison, command, env=None):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(int(signum)), str(tmp_path / "child.log"), comparison,
                               *command], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    return parent, int(parent.stdout.readline())


def kill_hard(parent):
    parent.kill()  # SIGKILL: nothing runs on the way out, as when a test run is killed
    parent.wait()
    parent.stdout.close()


@pytest.mark.slow
def test_a_celery_worker_started_by_a_test_dies_when_the_test_run_is_killed(tmp_path, words):
    child, comparison = words
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DJANGO_") and k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env["LIFEBOOK_VAR_DIR"] = str(tmp_path / "var")  # the embedded broker: no server needed
    command = [sys.executable, "-m", "celery", "-A", "lifebook", "worker", "--pool=solo", "--without-gossip",
               "--without-mingle", "--loglevel=INFO", f"--hostname={child}@%h"]
    parent, worker = start_parent(tmp_path, signal.SIGKILL, comparison, command, env)
    log = tmp_path / "child.log"

    def ready():
        assert is_running(worker), log.read_text()
        return "ready." in log.read_text()

    wait_until(ready, "the worker's start")
    kill_hard(parent)
    wait_until(lambda: not running(child), "the worker's end", describe=lambda: f": still running {running(child)}")
    assert running(comparison)  # without the helper a process outlives its parent: this test would see it


def test_honcho_started_by_a_test_stops_its_processes_when_the_test_run_is_killed(tmp_path, words):
    child, comparison = words
    procfile = tmp_path / f"Procfile-{child}"  # in honcho's command line, and so in its forks' too
    sleeper = f"{sys.executable} -c 'import time; time.sleep(3600)' {child}"
    procfile.write_text(f"one: {sleeper}\ntwo: {sleeper}\n")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    command = [str(BIN / "honcho"), "-f", str(procfile), "-d", str(tmp_path), "start"]
    # SIGTERM, not SIGKILL: honcho passes it on to its processes, which SIGKILL would leave behind.
    parent, honcho = start_parent(tmp_path, signal.SIGTERM, comparison, command, env)
    log = tmp_path / "child.log"
    wait_until(lambda: log.read_text().count("started (pid=") == 2, "both processes' start",
               describe=lambda: f":\n{log.read_text()}")
    kill_hard(parent)
    wait_until(lambda: not running(child), "the end of honcho and its processes",
               describe=lambda: f": still running {running(child)}\n{log.read_text()}")
    assert not is_running(honcho) and running(comparison)
