"""Celery tasks. They stay thin: load the row, call the engine, record the result.

The training and generation tasks arrive with the jobs issue; `ping` lets
`make run`, the admin and the tests see that a real worker is consuming.
"""

import os
import socket

from celery import shared_task


@shared_task(name="generation.ping", queue="default", acks_late=False)
def ping(payload: str = "pong") -> dict:
    return {"payload": payload, "worker": f"{socket.gethostname()}:{os.getpid()}"}
