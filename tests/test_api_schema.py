"""The API's contract: a valid OpenAPI 3 schema, a docs page served from local files, and no 5xx anywhere.

The last test fuzzes every operation of the live schema with schemathesis on a live server, as the owner
of a book that has some data in it (see `Book`), and asserts only that nothing answers 5xx. It is marked
slow: about 75 seconds on two cores. Knobs (environment):
  SCHEMATHESIS_MAX_EXAMPLES=N   hypothesis examples per operation and per mode (positive/negative), default 10;
  SCHEMATHESIS_COVERAGE=0       skip schemathesis' deterministic coverage cases;
  SCHEMATHESIS_ALL_CHECKS=1     also run schemathesis' default checks (schema conformance, status codes,
                                negative data rejection...) and print what fails, without asserting it;
  SCHEMATHESIS_VERBOSE=1        with ALL_CHECKS, print the first failing request of each kind.
Run it with -s to see the status codes each operation answered.
"""

import io
import json
import os
import re
from collections import Counter, defaultdict
from datetime import timedelta
from html.parser import HTMLParser

import pytest
import requests
from django.contrib.staticfiles import finders
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.templatetags.static import static
from django.test import Client
from django.utils import timezone
from openapi_spec_validator import validate
from PIL import Image

from accounts.models import Invitation
from generation.models import GenerationJob, JobState, TrainingCheckpoint, TrainingJob
from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CDN_MARKERS = ("cdn.", "unpkg", "jsdelivr", "cdnjs", "googleapis")


# --- 1. the schema ------------------------------------------------------------------------------------


def fetch_schema(client):
    response = client.get("/api/schema/", {"format": "json"}, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:500]
    assert "json" in response["Content-Type"]
    return json.loads(response.content)


@pytest.mark.django_db
def test_the_schema_is_valid_openapi_3_and_documents_every_operation(client, owner):
    client.force_login(owner)
    document = fetch_schema(client)

    assert document["openapi"].startswith("3.")
    validate(document)  # raises OpenAPIValidationError with the offending path

    problems = []
    operations = 0
    for path, item in document["paths"].items():
        assert path.startswith("/api/"), path
        path_level = item.get("parameters", [])
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operations += 1
            label = f"{method.upper()} {path}"
            if not (operation.get("description") or "").strip():
                problems.append(f"{label}: no description")
            codes = [str(code) for code in operation.get("responses", {})]
            if not any(re.fullmatch(r"2(\d\d|XX)", code) for code in codes):
                problems.append(f"{label}: no 2xx response (has {codes})")
            parameters = path_level + operation.get("parameters", [])
            takes_an_id = "{" in path or any(parameter.get("in") == "path" for parameter in parameters)
            if takes_an_id and "404" not in codes:
                problems.append(f"{label}: takes an id but documents no 404 (has {codes})")
    assert operations > 40, f"only {operations} operations: is the router still mounted under /api/?"
    assert not problems, "Schema problems:\n" + "\n".join(problems)


# --- 2. the docs page -----------------------------------------------------------------------------------


class AssetRefs(HTMLParser):
    """Every <script src> and <link href> on a page."""

    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.refs.append(attrs["src"])
        elif tag == "link" and attrs.get("href"):
            self.refs.append(attrs["href"])


@pytest.mark.django_db
def test_the_docs_page_uses_only_local_static_files_and_they_are_served(client, owner, settings):
    client.force_login(owner)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for marker in CDN_MARKERS:
        assert marker not in html.lower(), f"the docs page mentions {marker!r}: it must not load from a CDN"

    parser = AssetRefs()
    parser.feed(html)
    static_prefix = static("")  # STATIC_URL as the page writes it, e.g. "/static/"
    assert parser.refs, "the docs page references no script or stylesheet at all"
    # Swagger UI's init script is the page's own ?script URL (no inline script under the CSP); the rest is static.
    init_scripts = [ref for ref in parser.refs if ref.startswith("/api/docs/?script")]
    assert len(init_scripts) == 1, f"no (or several) init scripts in {parser.refs}"
    parser.refs.remove(init_scripts[0])
    for ref in parser.refs:
        assert not re.match(r"^(https?:)?//", ref), f"{ref} is not a local file"
        assert ref.startswith(static_prefix), f"{ref} is not under STATIC_URL ({static_prefix})"
    bundle = [ref for ref in parser.refs if ref.endswith("swagger-ui-bundle.js")]
    assert len(bundle) == 1, f"no (or several) swagger-ui-bundle.js in {parser.refs}"
    init = client.get(init_scripts[0])
    assert init.status_code == 200 and "javascript" in init["Content-Type"]
    assert "/api/schema/" in init.content.decode(), "the docs page does not load our schema"

    # Serve static files the way `make run` does (WhiteNoise, straight from the finders: nothing is
    # collected in tests). The middleware reads these settings when a new client builds its handler.
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    static_client = Client()
    for ref in parser.refs:
        found = finders.find(ref[len(static_prefix):])
        assert found, f"{ref} is not among the static files (is drf_spectacular_sidecar installed?)"
        served = static_client.get(ref)
        assert served.status_code == 200, f"{ref} is not served ({served.status_code})"
        body = b"".join(served.streaming_content) if served.streaming else served.content
        with open(found, "rb") as f:
            assert body == f.read(), f"{ref} is served with other content than {found}"
    served = static_client.get(bundle[0])
    assert "javascript" in served["Content-Type"]
    b"".join(served.streaming_content)  # close the file


# --- 3. schemathesis against the live server -------------------------------------------------------------
#
# Two phases per operation, as `schemathesis run` does it:
#   coverage: schemathesis' deterministic edge cases (missing fields, wrong types, a bare number as the
#             JSON body, boundary values...), positive and negative, with the {id} pointed at a real row;
#   fuzzing:  hypothesis, MAX_EXAMPLES positive and MAX_EXAMPLES negative cases; each one, by a coin flip,
#             either goes out as generated or is pointed at the book (its {id}, the ids in its query and
#             body, a real picture in its file fields).
# A request that may have changed the book (a 2xx to anything but GET) gets a fresh book for the next one,
# so DELETE /api/patients/{id}/ and the like are tested like everything else without emptying the rest.

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))  # per operation and per mode
COVERAGE = os.environ.get("SCHEMATHESIS_COVERAGE", "1") == "1"


def png_bytes(size=(320, 320), color=(90, 140, 200)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


class Book:
    """A patient of `owner` with one of everything, so that generated requests can name real rows."""

    def __init__(self, owner, n):
        self.patient = factories.PatientFactory(name=f"Juan {n}")
        factories.MembershipFactory(patient=self.patient, user=owner, role="owner")
        helper = factories.UserFactory(username=f"helper{n}")
        self.member = factories.MembershipFactory(patient=self.patient, user=helper, role="caregiver")
        self.newcomer = factories.UserFactory(username=f"newcomer{n}")  # has an account, not on the team yet
        self.invitation = Invitation.objects.create(patient=self.patient, email=f"invited{n}@example.org",
                                                    invited_by=owner)
        self.subject = factories.SubjectFactory(patient=self.patient)
        self.photo = add_reference_photo(self.subject, image_upload(), user=owner)
        self.training = TrainingJob.objects.create(subject=self.subject, state=JobState.SUCCEEDED,
                                                   finished_at=timezone.now() - timedelta(minutes=5))
        self.checkpoint = TrainingCheckpoint(job=self.training, step=10)
        self.checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
        self.checkpoint.samples = [default_storage.save(
            f"patients/{self.patient.pk}/subjects/{self.subject.pk}/adapters/s.png", ContentFile(png_bytes((64, 64))))]
        self.checkpoint.save()
        self.chapter = factories.ChapterFactory(patient=self.patient)
        self.other_chapter = factories.ChapterFactory(patient=self.patient)
        self.memory = factories.MemoryFactory(chapter=self.chapter, scene="Juan with his mother Ana at the beach")
        self.memory.subjects.add(self.subject)
        self.image = factories.MemoryImageFactory(memory=self.memory)
        self.generation = GenerationJob.objects.create(memory=self.memory, kind=GenerationJob.Kind.TXT2IMG,
                                                       created_by=owner, parameters={"prompt": "", "steps": 20})

    def id_for(self, path):
        """The row a path's {id} means, e.g. /api/memories/{id}/move/ -> the memory (None: no such row here)."""
        resource = path.strip("/").split("/")[1]
        row = {
            "patients": self.patient, "care-team": self.member, "care-team-invitations": self.invitation,
            "subjects": self.subject, "photos": self.photo,
            "chapters": self.chapter, "memories": self.memory, "memory-images": self.image,
            "training-jobs": self.training, "checkpoints": self.checkpoint, "generation-jobs": self.generation,
        }.get(resource)
        return row.pk if row else None

    def references(self):
        """Values for fields and query parameters that name other rows."""
        return {
            "patient": self.patient.pk, "subject": self.subject.pk, "inpaint_subject": self.subject.pk,
            "chapter": self.chapter.pk, "memory": self.memory.pk, "source_image": self.image.pk,
            "job": self.training.pk, "subjects": [self.subject.pk],
            "order": [self.other_chapter.pk, self.chapter.pk], "email": self.newcomer.email,
        }

    def point_at(self, case, *, everything):
        """Make a case name this book's rows: its {id}; with `everything`, also the references in its
        query and body, and real pictures in its file fields. Returns whether anything changed."""
        changed = False
        if "id" in (case.path_parameters or {}) and self.id_for(case.operation.path) is not None:
            case.path_parameters["id"] = self.id_for(case.operation.path)
            changed = True
        if not everything:
            return changed
        references = self.references()
        for name in list(case.query or {}):
            if name in references and not isinstance(references[name], list):
                case.query[name] = references[name]
                changed = True
        if isinstance(case.body, dict):
            multipart = (case.media_type or "").startswith("multipart/")
            for name in list(case.body):
                if name in references:
                    case.body[name] = references[name]
                    changed = True
                elif multipart and name in ("image", "source_upload", "mask_upload"):
                    case.body[name] = png_bytes()  # a real picture instead of random bytes
                    changed = True
        return changed


class TokenAuth(requests.auth.AuthBase):
    """The owner's DRF token, given to requests as `auth=`: schemathesis then knows it is the credential."""

    def __init__(self, key):
        self.key = key

    def __call__(self, request):
        request.headers["Authorization"] = f"Token {self.key}"
        return request


class Run:
    """Sends cases to the live server and keeps what came back."""

    def __init__(self, base_url, owner, token):
        self.base_url, self.owner = base_url, owner
        self.headers = {"Authorization": f"Token {token.key}"}  # for the curl commands in reports only
        self.auth = TokenAuth(token.key)
        self.all_checks = os.environ.get("SCHEMATHESIS_ALL_CHECKS") == "1"
        self.server_errors = []  # (label, status, curl, body)
        self.statuses = defaultdict(Counter)  # label -> status -> count
        self.other_failures = defaultdict(Counter)  # check failure title -> label -> count (opt-in)
        self.first_messages = {}  # (title, label) -> the first such failure, with its request
        self.books = 0
        self.book = None

    def fresh_book(self):
        self.books += 1
        self.book = Book(self.owner, self.books)

    def send(self, case, label, *, changed):
        from schemathesis.checks import not_a_server_error
        from schemathesis.errors import FailureGroup

        response = case.call(base_url=self.base_url, auth=self.auth, timeout=30)
        self.statuses[label][response.status_code] += 1
        if case.method.upper() not in ("GET", "HEAD", "OPTIONS") and 200 <= response.status_code < 300:
            self.fresh_book()  # it may have changed or deleted the book: the next case gets a new one
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except FailureGroup:
            self.server_errors.append((label, response.status_code, case.as_curl_command(headers=self.headers),
                                       response.content[:300].decode(errors="replace")))
        # Opt-in: every default check. A negative case pointed at the book may no longer be negative where
        # schemathesis thinks it is, so those are left out.
        negative = case.meta is not None and not case.meta.generation.mode.is_positive
        if self.all_checks and response.status_code < 500 and not (changed and negative):
            try:
                case.validate_response(response, transport_kwargs={"auth": self.auth, "base_url": self.base_url})
            except FailureGroup as group:
                for failure in group.exceptions:
                    self.other_failures[failure.title][label] += 1
                    self.first_messages.setdefault((failure.title, label), (
                        f"{failure.message}\n    {case.as_curl_command(headers=self.headers)}\n"
                        f"    -> {response.status_code} {response.content[:200]!r}"))

    def report(self):
        lines = [f"Statuses per operation ({len(self.statuses)} operations, {self.books} books):"]
        lines += [f"  {label}: {dict(sorted(counts.items()))}" for label, counts in self.statuses.items()]
        if self.other_failures:
            lines.append("Other schemathesis checks that fail (not asserted):")
            for title, labels in sorted(self.other_failures.items()):
                lines.append(f"  {title}: " + ", ".join(f"{label} x{n}" for label, n in labels.most_common()))
            if os.environ.get("SCHEMATHESIS_VERBOSE") == "1":
                for (title, label), message in self.first_messages.items():
                    lines.append(f"\n[{title}] {label}\n    {message}")
        return "\n".join(lines)


@pytest.fixture
def queued_tasks(monkeypatch):
    """Job submissions reach `dispatch()` after commit as in production, but their Celery messages are
    recorded here instead of landing in the shared var/celery queue (where a real worker would pick up
    job ids of this throwaway database). The submission throttle (120/hour) would otherwise answer 429
    to most of the few hundred submissions the run makes."""
    from generation import tasks
    from lifebook.api.base import JobThrottle

    # DRF copies DEFAULT_THROTTLE_RATES into the class when it is defined: overriding settings is not enough.
    monkeypatch.setattr(JobThrottle, "THROTTLE_RATES", {**JobThrottle.THROTTLE_RATES, "jobs": "100000/hour"})
    sent = []
    for task in (tasks.train, tasks.generate):
        monkeypatch.setattr(task, "apply_async",
                            lambda *args, _name=task.name, **kwargs: sent.append((_name, args, kwargs)))
    return sent


@pytest.fixture
def hypothesis_home(tmp_path):
    """Hypothesis keeps caches (unicode tables, constants) in ./.hypothesis: put them in tmp_path instead."""
    from hypothesis import configuration

    configuration.set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    configuration.set_hypothesis_home_dir(None)  # back to the default (or HYPOTHESIS_STORAGE_DIRECTORY)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_no_operation_answers_with_a_server_error(live_server, owner, queued_tasks, hypothesis_home):
    import schemathesis
    from django.core.cache import cache
    from hypothesis import HealthCheck, Phase, given, settings, strategies as st
    from hypothesis.errors import Unsatisfiable
    from rest_framework.authtoken.models import Token
    from schemathesis import GenerationMode
    from schemathesis.errors import SerializationNotPossible

    cache.clear()  # the job-submission throttle counts per user in the cache
    token = Token.objects.create(user=owner)
    run = Run(live_server.url, owner, token)
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/?format=json", headers=run.headers,
                                           timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    not_generated = []

    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        run.fresh_book()  # every operation starts on an untouched book

        if COVERAGE:
            for case in schema.iter_coverage_cases(
                    operation, generation_modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                    generation_config=schema.config.generation_for(operation=operation)):
                run.send(case, label, changed=run.book.point_at(case, everything=False))

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode), real=st.booleans())
            def fuzz(case, real):
                run.send(case, label, changed=real and run.book.point_at(case, everything=True))

            try:
                fuzz()
            except (Unsatisfiable, SerializationNotPossible) as exc:  # e.g. nothing to negate
                not_generated.append(f"{label} ({mode.value}): {type(exc).__name__}: {str(exc)[:200]}")

    print("\n" + run.report() + f"\n{len(queued_tasks)} Celery messages recorded.")
    if not_generated:
        print("Not generated:\n  " + "\n  ".join(not_generated))

    untested = [f"{op.method.upper()} {op.path}" for op in operations
                if f"{op.method.upper()} {op.path}" not in run.statuses]
    assert not untested, f"no request was sent for {untested}"
    assert not run.server_errors, f"{len(run.server_errors)} server error(s):\n\n" + "\n\n".join(
        f"{label} -> {status}\n{curl}\n{body}" for label, status, curl, body in run.server_errors)
