"""Web benchmark: the book page of a 200-memory book under concurrent load, against a trivial page.

    python bench/web.py --json        # one JSON object on stdout, logs on stderr

It makes its own throwaway data: a temporary SQLite file and media folder by default (so it runs on a
fresh machine), or, when DATABASE_URL names a PostgreSQL server, a database `lifebook_bench_web` on it
(dropped and made again, and dropped at the end; the developer's own database is never touched). It
migrates, writes a caregiver's book of `--memories` memories in a few chapters, each with a small JPEG
chosen picture stored under the patient's folder and a couple of people or places, starts a real web
server on loopback (`runserver --noreload`, threaded, DEBUG off; gunicorn when it is installed), logs
each client in once over HTTP and then, with `--clients` concurrent clients:

* book: GET /patients/<id>/ (the whole book, rendered) for `--seconds`;
* baseline: GET /healthz (no database, no session) for `--seconds`, same clients, same server;
* carousel: the `book_carousel` page too, when that URL exists.

The pages take turns in `--rounds` slices (the order rotated each round), so load from other processes
on the machine falls on each about alike. throughput_ratio = book_rps / baseline_rps (target >= 0.5).
queries_per_book_page is counted in this process with Django's test client against the same database.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookies
import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DATABASE = "lifebook_bench_web"
USERNAME = "bench-caregiver"
PASSWORD = "a-long-bench-password-nobody-uses"
TITLE = re.compile(r"A day to remember, number (\d+)")  # every memory's title, to check the page shows them all

CHAPTERS = [("Childhood", "youth"), ("Youth", "youth"), ("Work", "adulthood"), ("Family", "adulthood"),
            ("Old age", "old_age")]
SUBJECTS = [("person", "Ana", "his mother"), ("person", "Alfredo", "his father"), ("person", "Marta", "his daughter"),
            ("place", "The basilica", "in Colmenar Viejo"), ("pet", "Toby", "his dog"),
            ("place", "The laboratory", "where he worked for 36 years")]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the throwaway database and settings ------------------------------------------------------------------


def postgres_admin(server_url: str):
    import psycopg

    return psycopg.connect(server_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)


def fresh_postgres_database(server_url: str) -> str:
    with postgres_admin(server_url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
    return server_url.rsplit("/", 1)[0] + f"/{DATABASE}"


def bench_environment(scratch: Path, database_url: str) -> dict:
    """The server's and this process's environment: our own database, var/ and media, DEBUG off."""
    dropped = ("DJANGO_", "CELERY_", "LIFEBOOK_STORAGE_", "SENDFILE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update(DATABASE_URL=database_url, LIFEBOOK_VAR_DIR=str(scratch / "var"), MEDIA_ROOT=str(scratch / "media"),
               STATIC_ROOT=str(scratch / "static"), DEBUG="0", LIFEBOOK_HTTPS="0",
               ALLOWED_HOSTS="127.0.0.1,localhost", DJANGO_SETTINGS_MODULE="lifebook.settings",
               PYTHONUNBUFFERED="1")
    return env


# --- the book ------------------------------------------------------------------------------------------------


def small_jpeg(index: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), ((index * 37) % 256, (index * 91) % 256, (index * 53) % 256)).save(
        buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def build_book(memories: int):
    """A caregiver and a patient whose book has `memories` memories, each with a chosen picture and subjects."""
    from django.core.files.base import ContentFile
    from django.db import transaction

    from accounts.models import User
    from lifebook.models import Chapter, Memory, MemoryImage, Patient, Subject
    from lifebook.services import create_patient

    with transaction.atomic():
        user = User.objects.create_user(USERNAME, f"{USERNAME}@example.com", PASSWORD, first_name="Marta")
        patient = create_patient(Patient(name="Juan Pacheco", preferred_name="Juan", birth_year=1944), user)
        subjects = [Subject.objects.create(patient=patient, kind=kind, name=name, relationship=relationship)
                    for kind, name, relationship in SUBJECTS]
        chapters = [Chapter.objects.create(patient=patient, title=title, life_stage=stage, position=i)
                    for i, (title, stage) in enumerate(CHAPTERS)]
        for i in range(memories):
            chapter = chapters[i * len(chapters) // max(memories, 1)]  # in order, about evenly spread
            memory = Memory.objects.create(
                chapter=chapter, position=i, title=f"A day to remember, number {i + 1}",
                description="Juan with his mother Ana on a Sunday walk to the basilica, the summer he turned ten.",
                scene="a boy and his mother walking to a stone basilica on a sunny day")
            memory.subjects.set([subjects[i % len(subjects)], subjects[(i + 1) % len(subjects)]])
            # Stored as the worker stores a picture: through the storage, under patients/<id>/memories/<id>/.
            picture = MemoryImage(memory=memory, source=MemoryImage.Source.GENERATED, seed=i, from_demo_model=True,
                                  parameters={"prompt": memory.scene, "steps": 20, "seed": i}, width=128, height=128,
                                  created_by=user)
            picture.image.save("picture-0.jpg", ContentFile(small_jpeg(i)), save=False)
            picture.save()
            memory.chosen_image = picture
            memory.save(update_fields=["chosen_image"])
    return user, patient


def count_queries(user, url: str) -> int:
    """Queries for one request of `url`, as the server runs them (session, user, page), after one warm-up."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host: DEBUG is off and this is not a test run
    client.force_login(user)
    client.get(url)  # first-request caches (content types, ...) are not the steady state
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code} to the test client")
    return len(queries)


# --- the server --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(kind: str, port: int, cpus: int) -> list[str]:
    if kind == "gunicorn":
        # The production shape (README, "Production"): a process per core, threads for the waiting.
        return [sys.executable, "-m", "gunicorn", "lifebook.wsgi", f"--bind=127.0.0.1:{port}", f"--workers={cpus}",
                "--worker-class=gthread", "--threads=8", "--log-level=warning"]
    # Threaded (a thread per connection) unless --nothreading; --noreload: no second process watching files.
    return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]


def log_tail(logfile, chars=3000) -> str:
    logfile.flush()
    return Path(logfile.name).read_text(errors="replace")[-chars:]


def start_server(command, env, logfile, port, timeout=120):
    from tests.processes import die_with_parent

    # Gone with this script even if it is killed; SIGTERM, so gunicorn stops its own workers.
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=die_with_parent(signal.SIGTERM))
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the web server stopped early (exit {process.returncode}):\n{log_tail(logfile)}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return process
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"the web server did not answer within {timeout} s:\n{log_tail(logfile)}")


def stop_server(process) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the clients -------------------------------------------------------------------------------------------


class Browser:
    """One client: its cookies and its connection (like a browser tab, without the pictures)."""

    def __init__(self, port: int, keep_alive: bool = False):
        self.port = port
        self.keep_alive = keep_alive
        self.cookies: dict[str, str] = {}
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        headers = dict(headers or {})
        if not self.keep_alive:
            headers["Connection"] = "close"  # see --keep-alive
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        reused = self.conn is not None
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            self.close()
            if reused:  # the server may close an idle keep-alive connection: one retry on a new one
                return self.request(method, path, body, headers)
            raise
        if response.will_close:
            self.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = http.cookies.SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        return response.status, data

    def log_in(self, login_path: str) -> None:
        status, page = self.request("GET", login_path)
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise SystemExit(f"the login page answered {status} without a form")
        form = urllib.parse.urlencode({"username": USERNAME, "password": PASSWORD,
                                       "csrfmiddlewaretoken": token[1].decode()})
        status, _ = self.request("POST", login_path, body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Referer": f"http://127.0.0.1:{self.port}{login_path}"})
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"logging in answered {status}, not a redirect with a session")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def load(pool, browsers, path: str, seconds: float):
    """Every browser requests `path` back to back for `seconds`: (latencies in s, non-200 count, elapsed s)."""
    start = threading.Barrier(len(browsers) + 1)
    deadline = [0.0]

    def client(browser):
        latencies, errors = [], 0
        start.wait()
        while time.perf_counter() < deadline[0]:
            began = time.perf_counter()
            try:
                status, _ = browser.request("GET", path)
            except (http.client.HTTPException, OSError):
                status = None
            latencies.append(time.perf_counter() - began)
            errors += status != 200
        return latencies, errors

    futures = [pool.submit(client, browser) for browser in browsers]
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    results = [future.result() for future in futures]
    elapsed = time.perf_counter() - began  # until the last request that started in time has finished
    return [t for latencies, _ in results for t in latencies], sum(errors for _, errors in results), elapsed


def summary(latencies, errors, elapsed) -> dict:
    ms = sorted(t * 1000 for t in latencies)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else (ms or [0.0])[0]
    return {"requests": len(ms), "errors": errors, "seconds": elapsed, "rps": len(ms) / elapsed,
            "p50_ms": statistics.median(ms) if ms else 0.0, "p95_ms": p95, "max_ms": ms[-1] if ms else 0.0}


# --- the run -----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--memories", type=int, default=200, help="memories in the book (default 200)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per page (default 10)")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per page first (default 1)")
    parser.add_argument("--rounds", type=int, default=4, help="slices the pages take turns in (default 4)")
    parser.add_argument("--keep-alive", action="store_true",
                        help="reuse connections (off: runserver's two writes per response then wait ~40 ms for "
                             "the client's delayed ACK, and every page would measure that)")
    parser.add_argument("--server", choices=["auto", "runserver", "gunicorn"], default="auto",
                        help="auto: gunicorn when it is installed, else runserver")
    args = parser.parse_args(argv)
    if args.memories < 1 or args.clients < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--memories, --clients and --rounds must be at least 1, --seconds above 0")

    server_kind = args.server
    if server_kind == "auto":
        server_kind = "gunicorn" if _installed("gunicorn") else "runserver"
    elif server_kind == "gunicorn" and not _installed("gunicorn"):
        raise SystemExit("gunicorn is not installed in this Python (it is not a Lifebook dependency)")
    cpus = os.cpu_count() or 1

    scratch = Path(tempfile.mkdtemp(prefix="lifebook-bench-web-"))
    given = os.environ.get("DATABASE_URL", "")
    on_postgres = given.startswith(("postgres://", "postgresql://"))
    database_url = fresh_postgres_database(given) if on_postgres else f"sqlite:///{scratch / 'bench.sqlite3'}"
    env = bench_environment(scratch, database_url)
    os.environ.clear()
    os.environ.update(env)
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections
        from django.urls import NoReverseMatch, reverse

        started = time.perf_counter()
        call_command("migrate", verbosity=0, interactive=False)
        log(f"migrated {'PostgreSQL' if on_postgres else 'SQLite'} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        user, patient = build_book(args.memories)
        log(f"wrote a book of {args.memories} memories in {time.perf_counter() - started:.1f} s")

        # "logged_in": the dashboard, a one-card page: what any page behind the login costs (session, user,
        # access, template), so the book's own cost can be told apart from the login's.
        pages = {"book": reverse("patient_book", kwargs={"patient_id": patient.pk}), "baseline": reverse("healthz"),
                 "logged_in": reverse("dashboard")}
        figures = {
            "memories": args.memories, "clients": args.clients, "cpu_count": cpus,
            "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus,
            "server": server_kind, "database": "postgresql" if on_postgres else "sqlite",
            "seconds_per_page": args.seconds, "rounds": args.rounds, "keep_alive": args.keep_alive, "pages": pages,
            "queries_per_book_page": count_queries(user, pages["book"]),
            "queries_per_carousel_page": None, "carousel_skipped": None,
            "load_average_before": list(os.getloadavg()),
        }
        # The carousel is measured when it exists and works; its absence or failure never stops the book's figures.
        try:
            carousel = reverse("book_carousel", kwargs={"patient_id": patient.pk})
            figures["queries_per_carousel_page"] = count_queries(user, carousel)
            pages["carousel"] = carousel
        except NoReverseMatch:
            figures["carousel_skipped"] = "no URL named book_carousel(patient_id)"
        except Exception as error:  # noqa: BLE001 - reported, not raised: it is another page's bug
            figures["carousel_skipped"] = f"{type(error).__name__}: {error}"
        if figures["carousel_skipped"]:
            log(f"carousel not measured: {figures['carousel_skipped']}")
        connections.close_all()

        server_log = open(scratch / "server.log", "w")
        port = free_port()
        server = start_server(server_command(server_kind, port, cpus), env, server_log, port)
        log(f"{server_kind} answers on port {port}; logging {args.clients} clients in")
        browsers = [Browser(port, args.keep_alive) for _ in range(args.clients)]
        with ThreadPoolExecutor(max_workers=args.clients) as pool:
            list(pool.map(lambda b: b.log_in(reverse("login")), browsers))
            status, page = browsers[0].request("GET", pages["book"])
            shown = len(set(TITLE.findall(page.decode())))
            if status != 200 or shown != args.memories:
                raise SystemExit(f"the book page answered {status} showing {shown} of {args.memories} memories")
            figures["book_page_kb"] = len(page) / 1024

            if args.warmup > 0:
                for path in pages.values():
                    load(pool, browsers, path, args.warmup)
            samples = {name: ([], 0, 0.0) for name in pages}
            names = list(pages)
            for round_ in range(args.rounds):
                for name in names[round_ % len(names):] + names[:round_ % len(names)]:
                    latencies, errors, elapsed = load(pool, browsers, pages[name], args.seconds / args.rounds)
                    done = samples[name]
                    samples[name] = (done[0] + latencies, done[1] + errors, done[2] + elapsed)
                log(f"round {round_ + 1}/{args.rounds} done")
        for browser in browsers:
            browser.close()

        measured = {name: summary(*sample) for name, sample in samples.items()}
        for name in ("book", "baseline", "logged_in", "carousel"):
            for key in ("p50_ms", "p95_ms", "rps", "requests", "errors"):
                figures[f"{name}_{key}"] = measured[name][key] if name in measured else None
        figures["requests"] = sum(m["requests"] for m in measured.values())
        figures["errors"] = sum(m["errors"] for m in measured.values())
        figures["throughput_ratio"] = measured["book"]["rps"] / measured["baseline"]["rps"]
        figures["throughput_ratio_vs_logged_in"] = measured["book"]["rps"] / measured["logged_in"]["rps"]
        figures["measured"] = measured
        figures["load_average_after"] = list(os.getloadavg())
    finally:
        if server is not None:
            stop_server(server)
            server_log.close()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:
            pass
        if on_postgres:
            with postgres_admin(given) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        shutil.rmtree(scratch, ignore_errors=True)

    if args.json:
        print(json.dumps(figures))
    else:
        print_report(figures)
    return 0 if figures["errors"] == 0 else 1


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def print_report(f: dict) -> None:
    print(f"Book of {f['memories']} memories ({f['book_page_kb']:.0f} KB of HTML), {f['clients']} clients, "
          f"{f['server']} on {f['database']}, {f['cpu_count']} CPUs (load {f['load_average_before'][0]:.2f} before, "
          f"{f['load_average_after'][0]:.2f} after)")
    print(f"Queries per book page: {f['queries_per_book_page']}"
          + (f", per carousel page: {f['queries_per_carousel_page']}" if f["queries_per_carousel_page"] else ""))
    for name in ("book", "carousel", "logged_in", "baseline"):
        if f[f"{name}_rps"] is not None:
            print(f"  {name:9} {f[f'{name}_rps']:8.1f} req/s   p50 {f[f'{name}_p50_ms']:7.1f} ms   "
                  f"p95 {f[f'{name}_p95_ms']:7.1f} ms   {f[f'{name}_requests']} requests, {f[f'{name}_errors']} errors")
    print(f"Throughput ratio (book / baseline): {f['throughput_ratio']:.2f} (target >= 0.5); "
          f"book / logged-in one-card page: {f['throughput_ratio_vs_logged_in']:.2f}; errors: {f['errors']} (must be 0)")


if __name__ == "__main__":
    sys.exit(main())
