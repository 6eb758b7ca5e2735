"""The web benchmark keeps working, and its baseline page stays trivial (figures go in notes, never asserted)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from tests.processes import SAFETY_LIMIT, die_with_parent

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_healthz_answers_ok_to_anyone_without_touching_the_database(client, django_assert_num_queries):
    # No query and no session: it is the floor the book page is compared with, and a load balancer's check.
    with django_assert_num_queries(0):
        response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert "sessionid" not in response.cookies


@pytest.mark.django_db
def test_healthz_changes_nothing_so_it_refuses_posts(client):
    assert client.post(reverse("healthz")).status_code == 405


def _bench(memories):
    # Without DATABASE_URL the bench makes a throwaway SQLite file, so the two runs can go side by side.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL"))}
    return subprocess.Popen(
        [sys.executable, "bench/web.py", "--json", "--memories", str(memories), "--clients", "2", "--seconds", "1",
         "--warmup", "0", "--rounds", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent(),
    )


@pytest.mark.slow
def test_the_web_benchmark_serves_the_book_without_errors_and_its_queries_do_not_grow_with_it():
    runs = {memories: _bench(memories) for memories in (5, 20)}
    figures = {}
    for memories, process in runs.items():
        stdout, stderr = process.communicate(timeout=SAFETY_LIMIT)
        assert process.returncode == 0, stderr[-3000:]
        figures[memories] = json.loads(stdout)

    small, large = figures[5], figures[20]
    assert {"memories", "clients", "requests", "queries_per_book_page", "book_p50_ms", "book_p95_ms",
            "baseline_p95_ms", "book_rps", "baseline_rps", "throughput_ratio", "errors", "cpu_count"} <= small.keys()
    assert (small["memories"], large["memories"], small["clients"]) == (5, 20, 2)
    assert small["errors"] == large["errors"] == 0
    assert small["book_requests"] > 0 and small["baseline_requests"] > 0  # both pages were really measured
    assert small["throughput_ratio"] == pytest.approx(small["book_rps"] / small["baseline_rps"])
    assert small["throughput_ratio_vs_logged_in"] == pytest.approx(small["book_rps"] / small["logged_in_rps"])
    # Four times the memories, the same queries: the page prefetches instead of asking per memory.
    assert small["queries_per_book_page"] == large["queries_per_book_page"] > 0
    if small["queries_per_carousel_page"] is not None:
        assert small["queries_per_carousel_page"] == large["queries_per_carousel_page"]
