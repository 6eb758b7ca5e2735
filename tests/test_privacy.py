"""Another caregiver gets a 404 on every URL that names a patient's data, media included; a therapist gets a
404 on every URL that names a hidden memory (its pages, pictures, jobs, files, renditions and API rows), and
no URL answers 500 to OPTIONS or HEAD, whoever asks."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.test import APIRequestFactory, force_authenticate

from accounts.models import Invitation
from generation import jobs
from generation.models import GenerationJob, Notice, TrainingCheckpoint, TrainingJob
from lifebook import renditions
from lifebook.uploads import add_reference_photo, add_uploaded_memory_image
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


def _named_patterns(resolver=None, prefix="", namespace=""):
    """(name, route) of every named URL in the project, admin excluded (staff only)."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if getattr(entry, "app_name", None) == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _named_patterns(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield namespace + entry.name, prefix + str(entry.pattern)


@pytest.fixture
def book(patient):
    """One of everything, so each patient-scoped URL has an object to point at."""
    subject = factories.SubjectFactory(patient=patient)
    photo = add_reference_photo(subject, image_upload())
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    image = factories.MemoryImageFactory(memory=memory)
    training = TrainingJob.objects.create(subject=subject, state="succeeded")
    checkpoint = TrainingCheckpoint(job=training, step=1)
    checkpoint.adapter.save("lora.safetensors", ContentFile(b"weights"), save=False)
    checkpoint.save()
    invitation = Invitation.objects.create(patient=patient, email="new@example.com")
    # A notice belongs to one person (the one who started the job): anyone else's dismiss is a 404.
    notice = Notice.objects.create(user=patient.care_team.get(role="owner").user, patient=patient, kind="training",
                                   job_id=training.pk, subject=subject, outcome="succeeded",
                                   job_finished_at=timezone.now())
    api_objects = {  # the API's router names (api:<basename>-detail, ...) -> the object they point at
        "patient": patient, "care-team": patient.care_team.first(), "subject": subject, "photo": photo,
        "chapter": memory.chapter, "memory": memory, "memory-image": image, "training-job": training,
        "checkpoint": checkpoint, "generation-job": GenerationJob.objects.create(memory=memory, kind="txt2img"),
        "care-team-invitation": invitation,
    }
    return {"patient_id": patient.pk, "subject_id": subject.pk, "photo_id": photo.pk, "job_id": training.pk,
            "memory_id": memory.pk, "image_id": image.pk, "chapter_id": memory.chapter.pk,
            "member_id": patient.care_team.first().pk,
            "invitation_id": invitation.pk,
            "notice_id": notice.pk,
            "checkpoint_id": checkpoint.pk, "paths": [photo.image.name, image.image.name],
            "picture_paths": [image.image.name], "api": api_objects}


# URLs with parameters that hold no patient data.
# "invitation": its token is the key; a bad one is a friendly 404 (tests/test_team_pages.py).
# "address_confirm": a signed link that confirms an account's email address (tests/test_account_existence.py).
NOT_PATIENT_DATA = {"password_reset_confirm", "invitation", "address_confirm"}


# The API's rows that belong to a memory (hidden from a therapist with it), and those that do not.
API_OF_A_MEMORY = {"memory", "memory-image", "generation-job"}
API_NOT_OF_A_MEMORY = {"patient", "care-team", "care-team-invitation", "subject", "photo", "chapter", "training-job", "checkpoint"}


def _api_basename(name):
    basename = name.removeprefix("api:").rsplit("-", 1)[0]
    for suffix in ("-chapter", "-move", "-choose", "-cancel"):  # actions: api:<basename>-<action>
        basename = basename.removesuffix(suffix)
    return basename


def _patient_scoped(book):
    """(name, route, url) of every named URL with parameters, pointed at the book's objects."""
    for name, route in _named_patterns():
        if "<" not in route or name in NOT_PATIENT_DATA:
            continue
        if name == "media":
            for path in book["paths"]:
                yield name, route, reverse("media", kwargs={"path": path})
            continue
        if name == "rendition":  # resized copies of a stored picture, checked like media
            for path in book["picture_paths"]:
                yield name, route, reverse("rendition", kwargs={"width": 480, "path": path})
            continue
        kwargs = {}
        if name.startswith("api:") and "<pk>" in route:
            kwargs["pk"] = book["api"][_api_basename(name)].pk
        for param in ("patient_id", "subject_id", "photo_id", "job_id", "checkpoint_id", "memory_id", "image_id",
                      "chapter_id", "member_id", "invitation_id", "notice_id"):
            if f"{param}>" in route:
                kwargs[param] = book[param]
        if "memory_id" in kwargs and "job_id" in kwargs:  # a picture job of that memory, not a training
            kwargs["job_id"] = book["api"]["generation-job"].pk
        # A new URL with another parameter must be added here, so it cannot escape this test.
        assert route.count("<") == len(kwargs), f"teach test_privacy about the parameters of {name}: {route}"
        yield name, route, reverse(name, kwargs=kwargs)


def patient_scoped_urls(book):
    return [url for _, _, url in _patient_scoped(book)]


def names_a_memory(name, route):
    """Whether this URL points at a memory or at something of one (a picture, a job, a file)."""
    if name.startswith("api:") and "<pk>" in route:
        basename = _api_basename(name)
        assert basename in API_OF_A_MEMORY | API_NOT_OF_A_MEMORY, (
            f"teach test_privacy whether api:{basename} belongs to a memory (API_OF_A_MEMORY) or not")
        return basename in API_OF_A_MEMORY
    return name in ("media", "rendition") or "memory_id>" in route or "image_id>" in route


def parameterless_urls():
    return [reverse(name) for name, route in _named_patterns() if "<" not in route]


def test_the_list_of_patient_urls_is_not_empty(book):
    urls = patient_scoped_urls(book)
    assert any("/media/" in u for u in urls) and any(u.startswith(f"/patients/{book['patient_id']}/") for u in urls)


def test_the_owner_reaches_every_patient_url(client, owner, book):
    client.force_login(owner)
    for url in patient_scoped_urls(book):
        expected = (200, 405)  # actions take POST only
        assert client.get(url).status_code in expected, url


def test_another_caregiver_gets_404_on_every_patient_url(client, stranger, book):
    client.force_login(stranger)
    for url in patient_scoped_urls(book):
        statuses = {client.get(url).status_code, client.post(url).status_code}
        # 405 (a method the URL never takes, whatever the id) reveals nothing; the other method must 404.
        assert 404 in statuses and statuses <= {404, 405}, (url, statuses)


def test_an_anonymous_visitor_never_gets_patient_data(client, book):
    for url in patient_scoped_urls(book):
        response = client.get(url)
        assert response.status_code in ((401, 403) if url.startswith("/api/") else (302, 404, 405)), url
        if response.status_code == 302:
            assert response["Location"].startswith(reverse("login"))


def test_a_therapist_cannot_reach_edit_pages(client, therapist, book):
    client.force_login(therapist)
    assert client.get(reverse("patient_book", args=[book["patient_id"]])).status_code == 200
    assert client.get(reverse("patient_edit", args=[book["patient_id"]])).status_code == 404


def test_the_walk_covers_downloading_a_copy_of_a_book(book):
    """Downloading a copy (web and API) names a patient, so every check above covers it too."""
    urls = patient_scoped_urls(book)
    assert reverse("book_export", args=[book["patient_id"]]) in urls
    assert reverse("api:patient-export", kwargs={"pk": book["patient_id"]}) in urls


# --- A therapist and a hidden memory ------------------------------------------------------------------------
# Hiding keeps distressing material for the people who edit the book; a therapist (who may only view) must
# not meet it anywhere: pages, API rows and lists, the API's HTML forms, files and their renditions.

HIDDEN_TITLE = "The hospital ward"
HIDDEN_PROMPT = "oxygen mask by the bed"


def png_upload(color="white", size=(64, 64)):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return SimpleUploadedFile("drawing.png", buffer.getvalue(), content_type="image/png")


def memory_with_everything(memory, user, prompt):
    """Rows and files of every kind a memory has, made the way the product makes them: a generated picture,
    an uploaded real photo, a sketch job (its source file) and an inpaint job (its mask; the picture is its
    result), and renditions of both pictures. Returns what `_patient_scoped` needs to point at them."""
    picture = factories.MemoryImageFactory(memory=memory)
    photo = add_uploaded_memory_image(memory, image_upload(), user=user)
    sketch = jobs.submit_generation(memory, kind="img2img", user=user, prompt=prompt, source_upload=png_upload("gray"))
    inpaint = jobs.submit_generation(memory, kind="inpaint", user=user, prompt=prompt, source_image=picture,
                                     mask_upload=png_upload())
    inpaint.results.add(picture)
    pictures = [picture.image.name, photo.image.name]
    copies = [renditions.ensure_rendition(name, 480) for name in pictures]
    files = pictures + [sketch.source_file.name, inpaint.mask_file.name] + copies
    assert all(f"/memories/{memory.pk}/" in name for name in files)
    return {"memory_id": memory.pk, "image_id": picture.pk, "paths": files, "picture_paths": pictures,
            "rows": {"memory": [memory], "memory-image": [picture, photo], "generation-job": [sketch, inpaint]},
            "api": {"memory": memory, "memory-image": picture, "generation-job": inpaint}}


@pytest.fixture
def memories(book, owner):
    """The book's memory (visible) and a hidden one in the same chapter, each with everything a memory has;
    for each, `book` pointed at it."""
    from lifebook.models import Memory

    visible = Memory.objects.get(pk=book["memory_id"])
    hidden = factories.MemoryFactory(chapter=visible.chapter, title=HIDDEN_TITLE, hidden=True,
                                     scene="Juan in hospital")
    result = {}
    for key, memory in (("visible", visible), ("hidden", hidden)):
        parts = memory_with_everything(memory, owner, HIDDEN_PROMPT if memory.hidden else "a sunny day")
        result[key] = {**book, **parts, "api": {**book["api"], **parts["api"]}}
    return result


def memory_urls(book):
    return [url for name, route, url in _patient_scoped(book) if names_a_memory(name, route)]


def test_the_walk_covers_a_memorys_pages_api_rows_files_and_renditions(memories):
    urls = memory_urls(memories["hidden"])
    memory_id = memories["hidden"]["memory_id"]
    assert any(url.startswith(f"/patients/{memories['hidden']['patient_id']}/memories/{memory_id}/") for url in urls)
    for kind in ("memories", "memory-images", "generation-jobs"):
        assert any(url.startswith(f"/api/{kind}/") for url in urls), kind
    assert sum(url.startswith("/media/") for url in urls) == 6  # 2 pictures, a sketch, a mask, 2 renditions
    assert sum(url.startswith("/renditions/") for url in urls) == 2


def test_the_owner_reaches_every_url_of_a_hidden_memory(client, owner, memories):
    client.force_login(owner)
    for url in memory_urls(memories["hidden"]):
        assert client.get(url).status_code in (200, 405), url  # actions take POST only


def test_a_therapist_gets_404_on_every_url_of_a_hidden_memory(client, therapist, memories):
    client.force_login(therapist)
    for url in memory_urls(memories["hidden"]):
        statuses = {client.get(url).status_code, client.post(url).status_code}
        if url.startswith("/api/"):
            statuses |= {client.patch(url, {}, content_type="application/json").status_code,
                         client.delete(url).status_code}
        assert 404 in statuses and statuses <= {404, 405}, (url, statuses)


def test_a_therapist_still_reads_the_visible_memory_its_files_and_renditions(client, therapist, memories):
    client.force_login(therapist)
    readable = {url for url in memory_urls(memories["visible"]) if client.get(url).status_code == 200}
    book = memories["visible"]
    expected = {reverse("media", kwargs={"path": path}) for path in book["paths"]}
    expected |= {reverse("rendition", kwargs={"width": 480, "path": path}) for path in book["picture_paths"]}
    expected |= {reverse(f"api:{basename}-detail", args=[book["api"][basename].pk]) for basename in API_OF_A_MEMORY}
    assert expected <= readable, expected - readable


def test_media_of_a_hidden_memory_is_404_with_a_token_too(therapist, memories):
    """Integrators follow the API's media URLs with their token: the same rule holds."""
    client = Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=therapist).key}")
    for key, expected in (("visible", 200), ("hidden", 404)):
        for url in memory_urls(memories[key]):
            if url.startswith(("/media/", "/renditions/")):
                assert client.get(url).status_code == expected, (key, url)


def _api_lists():
    return [(name, _api_basename(name)) for name, _ in _named_patterns()
            if name.startswith("api:") and name.endswith("-list")]


def _shows_nothing_of(body, book):
    return HIDDEN_TITLE not in body and HIDDEN_PROMPT not in body and not any(path in body for path in book["paths"])


def test_api_lists_never_include_a_hidden_memory_or_anything_of_it(client, therapist, owner, memories):
    hidden, visible = memories["hidden"], memories["visible"]
    client.force_login(therapist)
    filters = [{}, {"memory": hidden["memory_id"]}, {"patient": hidden["patient_id"]},
               {"chapter": hidden["api"]["memory"].chapter_id}]
    for name, basename in _api_lists():
        for query in filters:
            response = client.get(reverse(name), {**query, "page_size": 200})
            assert response.status_code == 200, (name, query)  # a filter a list does not have is ignored
            assert _shows_nothing_of(response.content.decode(), hidden), (name, query)
            if basename in API_OF_A_MEMORY:
                ids = {row["id"] for row in response.json()["results"]}
                assert not ids & {row.pk for row in hidden["rows"][basename]}, (name, query)
        if basename in API_OF_A_MEMORY:  # the visible memory's rows are still listed
            ids = {row["id"] for row in client.get(reverse(name), {"page_size": 200}).json()["results"]}
            assert {row.pk for row in visible["rows"][basename]} <= ids, name
    client.force_login(owner)  # who edits the book still sees everything
    for basename in API_OF_A_MEMORY:
        ids = {row["id"] for row in client.get(reverse(f"api:{basename}-list"), {"page_size": 200}).json()["results"]}
        assert {row.pk for row in hidden["rows"][basename]} <= ids, basename


def test_no_page_or_api_answer_a_therapist_reads_mentions_a_hidden_memory(client, therapist, memories):
    client.force_login(therapist)
    hidden = memories["hidden"]
    urls = parameterless_urls() + patient_scoped_urls(memories["visible"])
    read = 0
    for url in urls:
        response = client.get(url)
        kind = response.get("Content-Type", "")
        if response.status_code == 200 and ("html" in kind or "json" in kind):
            read += 1
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert _shows_nothing_of(body.decode(), hidden), url
    assert read > 10


def test_the_api_forms_never_offer_a_hidden_memory_or_its_pictures(therapist, memories):
    """The browsable API (on with DEBUG) draws a form for each list with a <select> per related field; its
    choices are the serializer's relations. Rendered here as DEBUG would, whatever the test settings say."""
    from lifebook.api.urls import router

    factory = APIRequestFactory()
    offered = 0
    for prefix, viewset, basename in router.registry:
        if not ({"get", "post"} <= set(viewset.http_method_names) and hasattr(viewset, "create")):
            continue
        view = viewset.as_view({"get": "list", "post": "create"}, renderer_classes=[BrowsableAPIRenderer])
        request = factory.get(f"/api/{prefix}/", HTTP_ACCEPT="text/html")
        force_authenticate(request, user=therapist)
        response = view(request)
        response.render()
        html = response.content.decode()
        assert response.status_code == 200 and "<form" in html, prefix
        assert _shows_nothing_of(html, memories["hidden"]), prefix
        offered += memories["visible"]["api"]["memory"].title in html
    assert offered >= 2  # the memory-images and generation-jobs forms offer the visible memory


# --- OPTIONS and HEAD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner", "therapist", "stranger", "anonymous"])
def test_options_and_head_never_answer_500(who, request, memories):
    client = Client(raise_request_exception=False)
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    urls = parameterless_urls() + patient_scoped_urls(memories["visible"]) + memory_urls(memories["hidden"])
    for url in urls:
        for method in (client.options, client.head):
            assert method(url).status_code < 500, (who, method.__name__, url)


def test_the_api_answers_a_browser_in_json_only(client, owner, book):
    """With DEBUG off there is no browsable API (HTML with forms): a browser's Accept gets JSON everywhere."""
    client.force_login(owner)
    urls = [url for url in parameterless_urls() + patient_scoped_urls(book)
            if url.startswith("/api/") and url != reverse("api:docs")]
    accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    answered = [client.get(url, HTTP_ACCEPT=accept) for url in urls]
    assert sum(response.status_code == 200 for response in answered) > 10
    for url, response in zip(urls, answered):
        assert "html" not in response.get("Content-Type", ""), url


def test_an_anonymous_visitor_gets_nothing_from_the_api_and_its_docs(client):
    for name, route in _named_patterns():
        if not name.startswith("api:") or "<" in route or name == "api:token":
            continue
        response = client.get(reverse(name))
        if name == "api:docs":  # a page: sent to log in
            assert response.status_code == 302 and response["Location"].startswith(reverse("login")), name
        else:
            assert response.status_code in (401, 403) and response.json()["detail"], name


# Only a book's owners (and staff) reach these: the care team's other members get 404 on the web pages and 403 on
# the API, as on the care team's change pages. A new owner-only URL belongs here.
OWNER_ONLY = {"book_audit": 404, "book_erase": 404, "api:patient-audit": 403, "book_export": 403,
              "api:patient-export": 403}


@pytest.mark.parametrize("role", ["caregiver", "therapist"])
def test_owner_only_urls_refuse_the_rest_of_the_care_team(client, book, role):
    user = factories.UserFactory(username=f"a-{role}")
    factories.MembershipFactory(patient_id=book["patient_id"], user=user, role=role)
    client.force_login(user)
    names = {name for name, _ in _named_patterns()}
    assert set(OWNER_ONLY) <= names
    for name, status in OWNER_ONLY.items():
        kwargs = {"pk": book["patient_id"]} if name.startswith("api:") else {"patient_id": book["patient_id"]}
        url = reverse(name, kwargs=kwargs)
        assert client.get(url).status_code == status, url
        assert client.post(url).status_code in (status, 405), url
    assert client.delete(f"/api/patients/{book['patient_id']}/").status_code == 403  # erasing through the API
