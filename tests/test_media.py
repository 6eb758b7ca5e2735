import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from lifebook.uploads import add_reference_photo
from tests import factories
from tests.conftest import image_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def photo(patient):
    return add_reference_photo(factories.SubjectFactory(patient=patient), image_upload())


def test_the_care_team_gets_the_file_privately(client, owner, photo):
    client.force_login(owner)
    response = client.get(photo.image.url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == photo.image.open("rb").read()
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_the_file_url_is_the_access_checked_view(photo):
    assert photo.image.url == reverse("media", kwargs={"path": photo.image.name})


def test_a_therapist_may_see_the_pictures(client, therapist, photo):
    client.force_login(therapist)
    assert client.get(photo.image.url).status_code == 200


def test_staff_may_see_every_file(client, photo):
    client.force_login(factories.UserFactory(username="admin", is_staff=True))
    assert client.get(photo.image.url).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "secret_key",
        "../secret_key",
        "patients/{pid}/../../secret_key",
        "patients/{pid}/subjects/../../../x.jpg",
        "patients/{pid}/missing.jpg",
        "patients/notanumber/x.jpg",
        "other/{pid}/x.jpg",
    ],
)
def test_paths_outside_a_patients_folder_are_404(client, owner, photo, path):
    client.force_login(owner)
    assert client.get("/media/" + path.format(pid=photo.subject.patient_id)).status_code == 404


def test_files_of_another_patient_are_404_even_for_a_logged_in_caregiver(client, stranger, photo):
    client.force_login(stranger)
    assert client.get(photo.image.url).status_code == 404


def test_the_production_backend_hands_the_file_to_the_web_server(client, owner, photo, settings):
    from django_sendfile.utils import _get_sendfile

    settings.SENDFILE_BACKEND = "django_sendfile.backends.nginx"
    settings.SENDFILE_URL = "/protected-media"
    _get_sendfile.cache_clear()  # django-sendfile2 caches the backend it loaded
    client.force_login(owner)
    try:
        response = client.get(photo.image.url)
    finally:
        _get_sendfile.cache_clear()
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == "/protected-media/" + photo.image.name


def test_media_cannot_be_changed_through_the_view(client, owner, photo):
    client.force_login(owner)
    assert client.post(photo.image.url).status_code == 405


# --- A hidden memory's files --------------------------------------------------------------------------------


@pytest.fixture
def hidden_picture(patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), hidden=True)
    return factories.MemoryImageFactory(memory=memory)


def test_a_therapist_gets_404_for_a_hidden_memorys_picture_and_its_renditions(client, therapist, hidden_picture):
    from lifebook import renditions

    copy = renditions.ensure_rendition(hidden_picture.image.name, 480)
    client.force_login(therapist)
    assert client.get(hidden_picture.image.url).status_code == 404
    assert client.get(reverse("media", kwargs={"path": copy})).status_code == 404
    assert client.get(renditions.rendition_url(hidden_picture.image.name, 480)).status_code == 404


def test_who_edits_the_book_gets_a_hidden_memorys_picture(client, owner, hidden_picture):
    client.force_login(owner)
    assert client.get(hidden_picture.image.url).status_code == 200


def test_a_hidden_memorys_job_files_are_404_to_a_therapist(client, owner, therapist, hidden_picture):
    from generation import jobs
    from tests.test_privacy import png_upload

    memory = hidden_picture.memory
    job = jobs.submit_generation(memory, kind="inpaint", user=owner, source_image=hidden_picture,
                                 mask_upload=png_upload())
    sketch = jobs.submit_generation(memory, kind="img2img", user=owner, source_upload=png_upload("gray"))
    for name in (job.mask_file.name, sketch.source_file.name):
        client.force_login(therapist)
        assert client.get(reverse("media", kwargs={"path": name})).status_code == 404, name
        client.force_login(owner)
        assert client.get(reverse("media", kwargs={"path": name})).status_code == 200, name


def test_a_file_in_another_memorys_folder_is_404(client, owner, patient, hidden_picture):
    """The memory named in the path must be one of this patient's: a path cannot borrow another book's memory."""
    other = factories.MemoryFactory()  # another patient's memory
    name = f"patients/{patient.pk}/memories/{other.pk}/x.png"
    default_storage.save(name, ContentFile(b"\x89PNG"))
    client.force_login(owner)
    assert client.get(reverse("media", kwargs={"path": name})).status_code == 404


# --- API tokens -----------------------------------------------------------------------------------------------


def token_client(user):
    from django.test import Client
    from rest_framework.authtoken.models import Token

    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


def test_an_api_token_fetches_the_media_urls_the_api_gives(owner, photo):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(owner)
    url = api.get(f"/api/photos/{photo.pk}/").json()["url"]
    response = token_client(owner).get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert body == photo.image.open("rb").read()
    assert "Authorization" in response["Vary"]


def test_an_api_token_fetches_renditions(owner, patient):
    from lifebook import renditions

    picture = factories.MemoryImageFactory(memory=factories.MemoryFactory(chapter=factories.ChapterFactory(
        patient=patient)))
    response = token_client(owner).get(renditions.rendition_url(picture.image.name, 480))
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"


def test_a_token_gets_only_its_owners_files(stranger, photo):
    assert token_client(stranger).get(photo.image.url).status_code == 404


@pytest.mark.parametrize("header", ["Token not-a-real-key", "Token", "Token a b", "Bearer abc", "Basic Zm9vOmJhcg=="])
def test_a_bad_or_foreign_authorization_header_is_404_not_500(client, photo, header):
    assert client.get(photo.image.url, HTTP_AUTHORIZATION=header).status_code == 404


def test_an_inactive_users_token_gets_nothing(owner, photo):
    client = token_client(owner)
    owner.is_active = False
    owner.save()
    assert client.get(photo.image.url).status_code == 404
