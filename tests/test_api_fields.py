"""Every field sent to the API is honoured or refused with a 400 that names it.

DRF drops fields a serializer does not know, and read-only ones, without a word: `mask_mode=not_masked`
was answered 202 and the picture was repainted as "masked"; `negative_prompt` was accepted and never
stored. Now every writable endpoint refuses such fields by name (`lifebook.api.serializers.StrictInput`),
and the engine's inpaint settings and the negative prompt are real fields, with their ranges in the schema.
"""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generation import calls
from generation.models import GenerationJob, JobState, TrainingJob
from lifebook.models import Chapter, Memory, Patient
from tests.test_api import (RESOURCES, book, changing_actions, client_for, create,  # noqa: F401  (book: a fixture)
                             prepare_create)

pytestmark = pytest.mark.django_db

UNKNOWN = "There is no field of this name here, so nothing would be done with it. " \
          "The fields are listed in the API schema (/api/schema/)."
READ_ONLY = "Lifebook sets this field itself; leave it out."
MODELS = {"patients": Patient, "chapters": Chapter, "memories": Memory, "training-jobs": TrainingJob,
          "generation-jobs": GenerationJob}


def painted_mask(box=(8, 8, 24, 24)):
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, box)
    buffer = io.BytesIO()
    mask.save(buffer, "PNG")
    return SimpleUploadedFile("mask.png", buffer.getvalue(), content_type="image/png")


def rows(name, book):
    model = MODELS.get(name) or type(book[RESOURCES[name][0]])
    return model.objects.count()


@pytest.mark.parametrize("name", [name for name, (_, payload, _) in RESOURCES.items() if payload])
def test_an_unknown_field_is_refused_by_name_and_nothing_is_created(name, book, owner):
    client = client_for(owner)
    prepare_create(name, book)
    before = rows(name, book)
    payload = RESOURCES[name][1](book)
    payload["colour"] = "blue"
    multipart = any(hasattr(v, "read") for v in payload.values())
    response = client.post(f"/api/{name}/", payload, format="multipart" if multipart else "json")
    assert response.status_code == 400
    assert response.json() == {"colour": [UNKNOWN]}
    assert rows(name, book) == before


@pytest.mark.parametrize("name", [name for name, (_, _, change) in RESOURCES.items() if change])
def test_an_unknown_field_in_a_change_is_refused_and_nothing_changes(name, book, owner):
    obj = book[RESOURCES[name][0]]
    change = RESOURCES[name][2]
    before = client_for(owner).get(f"/api/{name}/{obj.pk}/").json()
    response = client_for(owner).patch(f"/api/{name}/{obj.pk}/", {**change, "colour": "blue"}, format="json")
    assert response.status_code == 400 and response.json() == {"colour": [UNKNOWN]}
    assert client_for(owner).get(f"/api/{name}/{obj.pk}/").json() == before


@pytest.mark.parametrize("name, body", [
    ("memories", {"position": 3}),
    ("chapters", {"position": 0}),
    ("patients", {"photo_consent_at": "2020-01-01T00:00:00Z"}),
    ("generation-jobs", {"state": "succeeded"}),
    ("generation-jobs", {"parameters": {"steps": 1}}),
])
def test_a_read_only_field_is_refused_by_name(name, body, book, owner):
    key, _, change = RESOURCES[name]
    if change:
        response = client_for(owner).patch(f"/api/{name}/{book[key].pk}/", body, format="json")
    else:
        response = client_for(owner).post(f"/api/{name}/", {**RESOURCES[name][1](book), **body}, format="json")
    assert response.status_code == 400
    assert response.json() == {next(iter(body)): [READ_ONLY]}


def test_every_action_refuses_what_it_does_not_take(book, owner, patient):
    client = client_for(owner)
    for url, body in changing_actions(book, patient):
        response = client.post(url, {**body, "when": "now"}, format="json")
        assert response.status_code == 400 and response.json() == {"when": [UNKNOWN]}, url
    book["generation"].refresh_from_db()
    book["memory"].refresh_from_db()
    assert book["generation"].state == JobState.QUEUED and book["memory"].chosen_image is None


def test_a_memory_moves_to_another_chapter_by_its_id(book, owner, patient):
    other = Chapter.objects.create(patient=patient, title="Later")
    client = client_for(owner)
    assert client.post(f"/api/memories/{book['memory'].pk}/move/", {"position": 0, "chapter": 2**70},
                       format="json").status_code == 400
    moved = client.post(f"/api/memories/{book['memory'].pk}/move/", {"position": 0, "chapter": other.pk},
                        format="json")
    assert moved.status_code == 200 and moved.json()["chapter"] == other.pk


def test_the_browsable_apis_form_token_is_not_a_field(book, owner):
    response = client_for(owner).post("/api/chapters/", {"patient": book["patient"].pk, "title": "Old age",
                                                         "csrfmiddlewaretoken": "abc"}, format="multipart")
    assert response.status_code == 201


# --- the picture settings -----------------------------------------------------------------------------


def test_inpaint_settings_and_the_negative_prompt_are_honoured(book, owner):
    response = client_for(owner).post("/api/generation-jobs/", {
        "memory": book["memory"].pk, "kind": "inpaint", "source_image": book["picture"].pk,
        "mask_upload": painted_mask(), "mask_mode": "not_masked", "masked_content": "fill", "mask_blur": 8,
        "only_masked": "false", "padding": 16, "negative_prompt": "rain, umbrellas"}, format="multipart")
    assert response.status_code == 202, response.content
    job = GenerationJob.objects.get(pk=response.json()["id"])
    assert response.json()["parameters"] == job.parameters
    wanted = dict(mask_mode="not_masked", masked_content="fill", mask_blur=8, only_masked=False, padding=16,
                  negative_prompt="rain, umbrellas")
    assert {k: job.parameters[k] for k in wanted} == wanted
    # ...and the worker passes them to the engine's inpaint as they are.
    call = calls.call_for(job, source=Image.new("RGB", (64, 64)), mask=Image.new("L", (64, 64)))
    assert call.operation == "inpaint" and {k: call.kwargs[k] for k in wanted} == wanted


def test_settings_left_out_of_a_form_stay_unset(book, owner):
    response = client_for(owner).post("/api/generation-jobs/", {"memory": book["memory"].pk}, format="multipart")
    assert response.status_code == 202, response.content
    assert "only_masked" not in response.json()["parameters"]


@pytest.mark.parametrize("body, field, words", [
    ({"strength": 0.5}, "strength", "Only a picture made from a sketch or another picture"),
    ({"mask_mode": "not_masked"}, "mask_mode", "Only repainting a part of a picture (inpaint) uses mask_mode."),
    ({"mask_blur": 65}, "mask_blur", "Ensure this value is less than or equal to 64."),
    ({"masked_content": "sand"}, "masked_content", '"sand" is not a valid choice.'),
    ({"negative_prompt": "xq " * 320}, "detail", "The negative prompt is too long"),
])
def test_a_setting_the_job_would_not_use_is_refused_by_name(book, owner, body, field, words):
    response = client_for(owner).post("/api/generation-jobs/", {"memory": book["memory"].pk, **body}, format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field] and words in response.json()[field][0]
    assert GenerationJob.objects.count() == 1  # the book's own job only


def test_an_inpaint_the_engine_would_refuse_is_a_400_not_a_failed_job(book, owner, private_media_root):
    response = client_for(owner).post("/api/generation-jobs/", {
        "memory": book["memory"].pk, "kind": "inpaint", "source_image": book["picture"].pk,
        "mask_upload": painted_mask(), "steps": 1, "strength": 0.75}, format="multipart")
    assert response.status_code == 400
    assert response.json() == {"detail": ["strength 0.75 with 1 steps leaves no step to run; raise either."]}
    assert GenerationJob.objects.count() == 1
    assert not list(private_media_root.rglob("mask/*"))


def test_the_schema_gives_every_inpaint_setting_with_its_range(client, owner):
    client.force_login(owner)
    schema = json.loads(client.get("/api/schema/", {"format": "json"}).content)
    components = schema["components"]["schemas"]
    fields = components["GenerationJobRequest"]["properties"]
    # No other field is taken, and the schema says so for every request body.
    assert all(schema_["additionalProperties"] is False for name, schema_ in components.items()
               if name.endswith("Request") and name not in ("AuthTokenRequest", "CheckpointRequest"))
    assert (fields["mask_blur"]["minimum"], fields["mask_blur"]["maximum"]) == (0, 64)
    assert (fields["padding"]["minimum"], fields["padding"]["maximum"]) == (0, 512)
    assert fields["only_masked"]["type"] == "boolean"
    assert fields["negative_prompt"]["maxLength"] == 1000
    enums = {name: components[fields[name]["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
             for name in ("mask_mode", "masked_content")}
    assert enums == {"mask_mode": ["masked", "not_masked"],
                     "masked_content": ["original", "fill", "latent_noise", "latent_nothing"]}
