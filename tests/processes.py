"""Processes that tests start die with the test run, even when pytest itself is killed with SIGKILL.

Every test or fixture that starts a process that could outlive it (a Celery worker, honcho, a web server, a
benchmark) passes `preexec_fn=die_with_parent()` to subprocess. The child asks Linux for a signal when its
parent dies (prctl PR_SET_PDEATHSIG); the request survives exec, so it holds for the program the child runs.

Three things to know:
* Linux sends it when the *thread* that started the child ends, not only the process. Start processes from
  the test's own thread (pytest's main thread), never from a helper thread that may finish first.
* It reaches only that child. A supervisor such as honcho must get a signal it passes on (SIGTERM: honcho
  stops its processes, then kills what is left after 5 s), and a child that starts processes of its own must
  use this again (bench/jobs.py and bench/web.py do).
* The default is SIGKILL: once the test run is gone, a test's worker has nothing worth finishing (SIGTERM
  would make a Celery worker wait for its job).
Elsewhere than Linux it does nothing; clean-up then rests on the fixtures' own finally blocks.
"""

import ctypes
import os
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

if sys.platform.startswith("linux"):
    # Looked up here, in the parent: the child only calls it (no loading between fork and exec).
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    _prctl.restype = ctypes.c_int
else:
    _prctl = None


def die_with_parent(signum: int = signal.SIGKILL):
    """A `preexec_fn` for subprocess.Popen/run: the child gets `signum` when this process (thread) dies."""
    if _prctl is None:
        return None
    parent = os.getpid()

    def ask_for_the_signal():
        if _prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the request was made: nobody will send it
            os.kill(os.getpid(), signum)

    return ask_for_the_signal


def is_running(pid: int) -> bool:
    """Whether a process exists and has not ended (a zombie that nobody reaped yet counts as ended)."""
    if not os.path.isdir("/proc"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


# A limit for a stuck test, never a measure of speed: on a loaded 2-core machine a small training takes
# minutes. Tests assert what happened (states, steps, events); this only ends a wait that would never end.
SAFETY_LIMIT = 20 * 60


def wait_until(condition, what: str, *, limit: float = SAFETY_LIMIT, describe=lambda: "", poll: float = 0.1):
    """Poll `condition` until it is true. Past `limit` seconds, fail saying what did not happen and, through
    `describe`, how far things got."""
    deadline = time.monotonic() + limit
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within the safety limit of {limit / 60:g} minutes "
                                 f"(it ends a stuck test; it is no measure of speed){describe()}")
        time.sleep(poll)
