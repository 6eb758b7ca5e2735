"""Who is where: the layout of a memory's composed pictures (lifebook.layout), its page and its API field."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from lifebook.layout import box_from_choices, default_layout, layout_for, pixel_box, validate_layout
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), scene="A walk by the sea")
    ana = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman")
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    tobi = factories.SubjectFactory(patient=patient, name="Tobi", kind="pet", class_word="dog")
    house = factories.SubjectFactory(patient=patient, name="The house", kind="place", class_word="house")
    memory.subjects.add(ana, juan, tobi, house)
    return memory, ana, juan, tobi, house


def test_the_automatic_layout_puts_people_side_by_side_and_the_pet_low_beside_the_first(people):
    memory, ana, juan, tobi, house = people
    boxes = {entry["subject"]: entry["box"] for entry in default_layout([ana, juan, tobi, house])}
    assert set(boxes) == {ana.pk, juan.pk, tobi.pk}  # a place is the background: no box
    assert boxes[ana.pk][2] <= boxes[tobi.pk][0] and boxes[tobi.pk][2] <= boxes[juan.pk][0]  # Ana, Tobi, Juan
    assert boxes[tobi.pk][1] >= 0.5 > boxes[ana.pk][1]  # the dog is low; people stand
    assert validate_layout([ana, juan, tobi], default_layout([ana, juan, tobi]))  # it passes its own checks


@pytest.mark.parametrize("change, message", [
    (lambda l, s: l[0].update(box=[-0.1, 0, 0.5, 1]), "Ana's box goes outside the picture."),
    (lambda l, s: l[0].update(box=[0, 0, 0.05, 1]), "Ana's box is too small"),
    (lambda l, s: l[0].update(box=[0.5, 0, 0.2, 1]), "Ana's box is back to front"),
    (lambda l, s: l[0].update(box="left"), "Ana's box must be four numbers"),
    (lambda l, s: l.append(dict(l[0])), "Ana has two boxes"),
    (lambda l, s: l.pop(0), "Ana has no box"),
    (lambda l, s: l.append({"subject": s.pk, "box": [0, 0, 1, 1]}), "is not a person, pet or object of this memory"),
    (lambda l, s: l.append({"subject": 1}), "Each box must be written as"),
])
def test_a_bad_layout_is_refused_naming_the_subject_and_the_problem(people, change, message):
    memory, ana, juan, tobi, house = people
    layout = [{"subject": ana.pk, "box": [0, 0, 0.5, 1]}, {"subject": juan.pk, "box": [0.5, 0, 1, 1]},
              {"subject": tobi.pk, "box": [0.3, 0.6, 0.6, 1]}]
    change(layout, house)
    with pytest.raises(ValidationError) as refusal:
        validate_layout([ana, juan, tobi, house], layout)
    assert any(message in text for text in refusal.value.messages), refusal.value.messages


def test_pictures_use_the_saved_boxes_and_give_newcomers_an_automatic_place(people, patient):
    memory, ana, juan, tobi, house = people
    memory.layout = [{"subject": ana.pk, "box": [0.6, 0.1, 0.95, 1.0]}, {"subject": juan.pk, "box": [0, 0, 0.4, 1]},
                     {"subject": tobi.pk, "box": [0.4, 0.6, 0.6, 1]}]
    memory.save()
    luis = factories.SubjectFactory(patient=patient, name="Luis")
    memory.subjects.add(luis)
    boxes = {subject.pk: box for subject, box in layout_for(memory)}
    assert boxes[ana.pk] == (0.6, 0.1, 0.95, 1.0) and boxes[juan.pk] == (0, 0, 0.4, 1)
    assert set(boxes) == {ana.pk, juan.pk, tobi.pk, luis.pk}
    assert pixel_box(boxes[ana.pk], 512, 256) == (304, 24, 488, 256)  # whole 8-pixel blocks


def test_a_subject_taken_out_of_the_memory_takes_its_box_with_it(people):
    memory, ana, juan, tobi, house = people
    memory.layout = default_layout([ana, juan, tobi])
    memory.save()
    memory.subjects.remove(juan)
    memory.refresh_from_db()
    assert {entry["subject"] for entry in memory.layout} == {ana.pk, tobi.pk}
    tobi.memories.remove(memory)  # from the other side too
    memory.refresh_from_db()
    assert {entry["subject"] for entry in memory.layout} == {ana.pk}


# --- the page -----------------------------------------------------------------------------------------


def page(memory):
    return reverse("memory_layout", args=[memory.chapter.patient_id, memory.pk])


def test_the_keyboard_choices_place_each_subject_and_are_saved(client, owner, people):
    memory, ana, juan, tobi, house = people
    client.force_login(owner)
    response = client.post(page(memory), {"place-%d" % ana.pk: "right/near", "place-%d" % juan.pk: "left/far",
                                          "place-%d" % tobi.pk: "centre/far", "action": "save"})
    assert response.status_code == 302
    memory.refresh_from_db()
    boxes = {entry["subject"]: entry["box"] for entry in memory.layout}
    assert boxes == {ana.pk: box_from_choices("right", "near", "person"),
                     juan.pk: box_from_choices("left", "far", "person"),
                     tobi.pk: box_from_choices("centre", "far", "pet")}
    # The memory's page shows it small, in words too.
    shown = client.get(reverse("memory_page", args=[memory.chapter.patient_id, memory.pk])).content.decode()
    assert "Ana: on the right, near" in shown and "Juan: on the left, further away" in shown
    # Back to automatic.
    client.post(page(memory), {"action": "automatic"})
    memory.refresh_from_db()
    assert memory.layout == []


def test_a_dragged_box_is_saved_exactly_and_a_bad_one_saves_nothing(client, owner, people):
    memory, ana, juan, tobi, house = people
    client.force_login(owner)
    form = {"place-%d" % ana.pk: "custom", "box-%d" % ana.pk: "0.05,0.1,0.45,1",
            "place-%d" % juan.pk: "right/near", "place-%d" % tobi.pk: "centre/far", "action": "save"}
    assert client.post(page(memory), form).status_code == 302
    memory.refresh_from_db()
    assert {"subject": ana.pk, "box": [0.05, 0.1, 0.45, 1.0]} in memory.layout
    saved = memory.layout
    form["box-%d" % ana.pk] = "0.05,0.1,0.09,1"
    response = client.post(page(memory), form)
    assert response.status_code == 400
    assert "Ana&#x27;s box is too small" in response.content.decode() or "Ana's box is too small" in response.content.decode()
    memory.refresh_from_db()
    assert memory.layout == saved


def test_therapists_and_other_families_cannot_open_the_layout(client, therapist, stranger, people):
    memory = people[0]
    for user in (therapist, stranger):
        client.force_login(user)
        assert client.get(page(memory)).status_code == 404
        assert client.post(page(memory), {"action": "automatic"}).status_code == 404


# --- the API --------------------------------------------------------------------------------------------


def test_the_api_takes_a_layout_and_refuses_a_bad_one_naming_the_subject(owner, people):
    memory, ana, juan, tobi, house = people
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/memories/{memory.pk}/"
    good = [{"subject": ana.pk, "box": [0, 0.1, 0.5, 1]}, {"subject": juan.pk, "box": [0.5, 0.1, 1, 1]},
            {"subject": tobi.pk, "box": [0.35, 0.6, 0.65, 1]}]
    response = api.patch(url, {"layout": good}, format="json")
    assert response.status_code == 200 and response.json()["layout"] == good
    bad = [dict(good[0], box=[0, 0.1, 1.5, 1]), good[1]]
    response = api.patch(url, {"layout": bad}, format="json")
    assert response.status_code == 400
    assert response.json()["layout"] == ["Ana's box goes outside the picture.",
                                         "Tobi has no box: place everyone in the memory, or go back to automatic."]
    memory.refresh_from_db()
    assert memory.layout == good
    # A new memory's layout is checked against the subjects it is created with.
    created = api.post("/api/memories/", {"chapter": memory.chapter_id, "title": "Tea", "subjects": [ana.pk],
                                          "layout": [{"subject": ana.pk, "box": [0.2, 0.1, 0.8, 1]}]}, format="json")
    assert created.status_code == 201, created.json()
    refused = api.post("/api/memories/", {"chapter": memory.chapter_id, "title": "Tea", "subjects": [ana.pk],
                                          "layout": [{"subject": juan.pk, "box": [0.2, 0.1, 0.8, 1]}]}, format="json")
    assert refused.status_code == 400 and "is not a person, pet or object of this memory" in refused.json()["layout"][0]
