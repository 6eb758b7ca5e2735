import pytest
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
