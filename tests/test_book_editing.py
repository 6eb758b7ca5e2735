"""Editing the book on its page: rename and delete chapters, put chapters and memories in order, move a
memory to another chapter, hide and show memories; and the book page's query count."""

import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import CareTeamMember
from lifebook.book_views import STALE
from lifebook.models import Chapter, Memory
from tests import factories

pytestmark = pytest.mark.django_db

FETCH = {"HTTP_X_REQUESTED_WITH": "fetch"}  # what static/js/reorder.js sends
HTMX = {"HTTP_HX_REQUEST": "true"}
# The book page's queries: session, user, patient, role, chapters, memories (+ pictures), their subjects,
# the subject list. A query per chapter or memory would blow far past this with the 30-memory book.
BOOK_PAGE_MAX_QUERIES = 12


@pytest.fixture
def editor_client(client, owner):
    client.force_login(owner)
    return client


def _titles(chapter):
    return list(chapter.memories.order_by("position").values_list("title", flat=True))


def _ids(items):
    return ",".join(str(item.pk) for item in items)


@pytest.fixture
def chapter(patient):
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    for title in "abcd":
        factories.MemoryFactory(chapter=chapter, title=title)
    return chapter


def _memories(chapter):
    return list(chapter.memories.order_by("position"))


# --- the book page's query count --------------------------------------------------------------------

def _build_book(patient, memories, chapters):
    subjects = [factories.SubjectFactory(patient=patient, name=name) for name in ("Ana", "Toby", "The basilica")]
    book_chapters = [factories.ChapterFactory(patient=patient) for _ in range(chapters)]
    for i in range(memories):
        memory = factories.MemoryFactory(chapter=book_chapters[i % chapters], hidden=(i % 5 == 4))
        memory.subjects.set(subjects[: 1 + i % 3])
        memory.chosen_image = factories.MemoryImageFactory(memory=memory, from_demo_model=(i % 2 == 0))
        memory.save()


def _count_book_page_queries(client, patient):
    cache.clear()  # count a full render, not the rendered book kept from the last visit (lifebook.book_cache)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("patient_book", args=[patient.pk]))
    assert page.status_code == 200
    return len(queries), page.content.decode()


@pytest.mark.parametrize("role", ["owner", "therapist"])
def test_the_book_page_runs_the_same_queries_for_a_small_and_a_large_book(
        client, django_assert_max_num_queries, role):
    small, large = factories.PatientFactory(name="Small Book"), factories.PatientFactory(name="Large Book")
    user = factories.UserFactory(username=f"reader-{role}")
    for patient in (small, large):
        factories.MembershipFactory(patient=patient, user=user, role=role)
    _build_book(small, memories=2, chapters=1)
    _build_book(large, memories=30, chapters=6)
    client.force_login(user)
    client.get(reverse("patient_book", args=[small.pk]))  # warm caches (session, content types)

    small_count, _ = _count_book_page_queries(client, small)
    large_count, large_page = _count_book_page_queries(client, large)
    assert large_count == small_count
    cache.clear()
    with django_assert_max_num_queries(BOOK_PAGE_MAX_QUERIES):
        client.get(reverse("patient_book", args=[large.pk]))
    # The large page really shows the large book (so the count is not low because nothing rendered).
    shown = 24 if role == "therapist" else 30  # every fifth memory is hidden; therapists never see those
    assert large_page.count('class="memory') == shown
    assert "With Ana, The basilica, Toby" in large_page and "Generated picture (demo model)" in large_page
    assert ("Move up" in large_page) is (role == "owner")


# --- renaming and deleting a chapter ------------------------------------------------------------------

def test_renaming_a_chapter_without_javascript_saves_and_returns_focus_to_its_rename_link(
        editor_client, patient, chapter):
    url = reverse("chapter_edit", args=[patient.pk, chapter.pk])
    form_page = editor_client.get(url).content.decode()
    assert "Rename “Youth”" in form_page and 'name="title"' in form_page
    response = editor_client.post(url, {"title": "Growing up in Valencia", "life_stage": "youth"})
    chapter.refresh_from_db()
    assert (chapter.title, chapter.life_stage) == ("Growing up in Valencia", "youth")
    assert response["Location"] == (reverse("patient_book", args=[patient.pk])
                                    + f"?focus=chapter-{chapter.pk}-rename")
    book = editor_client.get(response["Location"]).content.decode()
    assert "The chapter is now called “Growing up in Valencia”." in book
    assert f'id="chapter-{chapter.pk}-rename" href="{url}" hx-get="{url}"' in book
    assert 'hx-swap="outerHTML" autofocus>Rename' in book


def test_renaming_with_htmx_swaps_the_heading_and_announces_it(editor_client, patient, chapter):
    url = reverse("chapter_edit", args=[patient.pk, chapter.pk])
    form = editor_client.get(url, **HTMX)
    assert form.status_code == 200
    assert 'hx-post="%s"' % url in form.content.decode() and "autofocus" in form.content.decode()
    assert "<html" not in form.content.decode()  # a fragment, not a page
    response = editor_client.post(url, {"title": "Adulthood", "life_stage": "adulthood"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and f'id="chapter-head-{chapter.pk}"' in html and ">Adulthood" in html
    assert json.loads(response["HX-Trigger"]) == {
        "book-announce": {"message": "The chapter is now called “Adulthood”."}}
    assert 'value="up"' in html  # the heading comes back with its move buttons


def test_an_empty_title_is_refused_in_plain_words_and_changes_nothing(editor_client, patient, chapter):
    url = reverse("chapter_edit", args=[patient.pk, chapter.pk])
    page = editor_client.post(url, {"title": "   ", "life_stage": ""})
    assert page.status_code == 200 and "Give the chapter a title" in page.content.decode()
    assert "Rename “Youth”" in page.content.decode()  # the page still names the chapter by its saved title
    inline = editor_client.post(url, {"title": "", "life_stage": "not-a-stage"}, **HTMX)
    assert inline.status_code == 400 and "Give the chapter a title" in inline.content.decode()
    assert "Select a valid choice" in inline.content.decode()
    chapter.refresh_from_db()
    assert (chapter.title, chapter.life_stage) == ("Youth", "")


def test_cancel_puts_the_heading_back(editor_client, patient, chapter):
    html = editor_client.get(reverse("chapter_heading", args=[patient.pk, chapter.pk]), **HTMX).content.decode()
    assert ">Youth</h3>" in html and "autofocus" in html


def test_an_empty_chapter_can_be_deleted(editor_client, patient):
    empty = factories.ChapterFactory(patient=patient, title="Old age")
    form = editor_client.get(reverse("chapter_edit", args=[patient.pk, empty.pk])).content.decode()
    assert "Delete this chapter" in form
    response = editor_client.post(reverse("chapter_delete", args=[patient.pk, empty.pk]), follow=True)
    assert not Chapter.objects.filter(pk=empty.pk).exists()
    assert "The chapter “Old age” was deleted." in response.content.decode()


def test_a_chapter_with_memories_is_never_deleted(editor_client, patient, chapter):
    form = editor_client.get(reverse("chapter_edit", args=[patient.pk, chapter.pk])).content.decode()
    assert "Move or delete its memories first" in form and "Delete this chapter</button>" not in form
    response = editor_client.post(reverse("chapter_delete", args=[patient.pk, chapter.pk]), follow=True)
    assert "“Youth” still has memories. Move or delete its memories first." in response.content.decode()
    assert Chapter.objects.filter(pk=chapter.pk).exists() and _titles(chapter) == list("abcd")
    inline = editor_client.post(reverse("chapter_delete", args=[patient.pk, chapter.pk]), **HTMX)
    assert inline.status_code == 400 and Chapter.objects.filter(pk=chapter.pk).exists()


# --- moving one place up or down ----------------------------------------------------------------------

def test_move_down_without_javascript_moves_one_place_and_keeps_focus_on_the_same_button(
        editor_client, patient, chapter):
    a, b, c, d = _memories(chapter)
    response = editor_client.post(reverse("memory_move", args=[patient.pk, b.pk]),
                                  {"direction": "down", "seen": _ids([a, b, c, d])})
    assert _titles(chapter) == list("acbd")
    assert response["Location"].endswith(f"?focus=memory-{b.pk}-down")
    book = editor_client.get(response["Location"]).content.decode()
    assert "‘b’ moved to position 3 of 4." in book
    assert f'id="memory-{b.pk}-down" autofocus>' in book
    # The forms now carry the new order, so the next move is not mistaken for a stale one.
    assert f'name="seen" value="{_ids([a, c, b, d])}"' in book


def test_moving_past_either_edge_changes_nothing(editor_client, patient, chapter):
    a, b, c, d = _memories(chapter)
    seen = _ids([a, b, c, d])
    first = editor_client.post(reverse("memory_move", args=[patient.pk, a.pk]), {"direction": "up", "seen": seen},
                               follow=True)
    assert "‘a’ is already first." in first.content.decode()
    last = editor_client.post(reverse("memory_move", args=[patient.pk, d.pk]), {"direction": "down", "seen": seen},
                              **FETCH)
    assert last.json() == {"message": "‘d’ is already last."}
    assert _titles(chapter) == list("abcd")
    book = editor_client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    # The edge buttons stay focusable (so focus can stay on them) but say they do nothing.
    assert f'id="memory-{a.pk}-up" aria-disabled="true"' in book
    assert f'id="memory-{d.pk}-down" aria-disabled="true"' in book
    assert f'id="memory-{b.pk}-up">' in book


def test_chapters_move_up_and_down_too(editor_client, patient, chapter):
    later = factories.ChapterFactory(patient=patient, title="Adulthood")
    response = editor_client.post(reverse("chapter_move", args=[patient.pk, later.pk]),
                                  {"direction": "up", "seen": _ids([chapter, later])}, follow=True)
    assert list(patient.chapters.values_list("title", flat=True)) == ["Adulthood", "Youth"]
    assert "‘Adulthood’ moved to position 1 of 2." in response.content.decode()


def test_a_move_from_a_stale_page_is_refused_and_changes_nothing(editor_client, patient, chapter):
    a, b, c, d = _memories(chapter)
    seen_before = _ids([a, b, c, d])
    # Someone else put d first meanwhile: the same memories, another order.
    editor_client.post(reverse("memory_order", args=[patient.pk, chapter.pk]), {"order": _ids([d, a, b, c])}, **FETCH)
    response = editor_client.post(reverse("memory_move", args=[patient.pk, b.pk]),
                                  {"direction": "down", "seen": seen_before}, follow=True)
    assert STALE in response.content.decode()
    assert _titles(chapter) == list("dabc")


# --- the whole order at once (dragging) ---------------------------------------------------------------

def test_a_full_order_from_the_script_is_saved(editor_client, patient, chapter):
    a, b, c, d = _memories(chapter)
    response = editor_client.post(reverse("memory_order", args=[patient.pk, chapter.pk]),
                                  {"order": _ids([c, a, d, b]), "seen": _ids([a, b, c, d])}, **FETCH)
    assert response.status_code == 200 and response.json() == {"order": [c.pk, a.pk, d.pk, b.pk]}
    assert _titles(chapter) == list("cadb")


def test_chapters_take_a_full_order_too_and_without_javascript_it_says_so(editor_client, patient, chapter):
    later = factories.ChapterFactory(patient=patient, title="Adulthood")
    response = editor_client.post(reverse("chapter_order", args=[patient.pk]), {"order": [later.pk, chapter.pk]},
                                  follow=True)
    assert "The new order is saved." in response.content.decode()
    assert list(patient.chapters.values_list("title", flat=True)) == ["Adulthood", "Youth"]


@pytest.mark.parametrize("change", ["reordered", "added", "removed"])
def test_a_stale_full_order_is_a_409_and_changes_nothing(editor_client, patient, chapter, change):
    a, b, c, d = _memories(chapter)
    page_order = [a, b, c, d]
    if change == "reordered":  # someone else moved d first meanwhile
        editor_client.post(reverse("memory_order", args=[patient.pk, chapter.pk]), {"order": _ids([d, a, b, c])},
                           **FETCH)
    elif change == "added":
        factories.MemoryFactory(chapter=chapter, title="e")
    else:
        Memory.objects.filter(pk=d.pk).delete()  # (d.delete() would forget d's id)
    before = _titles(chapter)
    url = reverse("memory_order", args=[patient.pk, chapter.pk])
    response = editor_client.post(url, {"order": _ids([b, a, c, d]), "seen": _ids(page_order)}, **FETCH)
    assert response.status_code == 409 and response.json() == {"detail": STALE}
    assert _titles(chapter) == before
    # Without the script: the same refusal as a message on the book page.
    page = editor_client.post(url, {"order": _ids([b, a, c, d]), "seen": _ids(page_order)}, follow=True)
    assert STALE in page.content.decode() and _titles(chapter) == before


def test_an_unreadable_order_is_a_400_in_plain_words(editor_client, patient, chapter):
    url = reverse("memory_order", args=[patient.pk, chapter.pk])
    for order in ("", "1,two,3", "9" * 40, "²"):
        response = editor_client.post(url, {"order": order}, **FETCH)
        assert response.status_code == 400 and "could not be read" in response.json()["detail"]
    assert _titles(chapter) == list("abcd")


def test_a_memory_id_from_another_chapter_is_not_part_of_this_order(editor_client, patient, chapter):
    elsewhere = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    a, b, c, d = _memories(chapter)
    response = editor_client.post(reverse("memory_order", args=[patient.pk, chapter.pk]),
                                  {"order": _ids([elsewhere, a, b, c])}, **FETCH)
    assert response.status_code == 409 and _titles(chapter) == list("abcd")
    assert Memory.objects.get(pk=elsewhere.pk).chapter_id != chapter.pk


# --- moving a memory to another chapter ---------------------------------------------------------------

def test_a_memory_moves_to_the_end_of_another_chapter(editor_client, patient, chapter):
    later = factories.ChapterFactory(patient=patient, title="Adulthood")
    factories.MemoryFactory(chapter=later, title="x")
    b = chapter.memories.get(title="b")
    response = editor_client.post(reverse("memory_move", args=[patient.pk, b.pk]), {"chapter": later.pk})
    assert _titles(later) == ["x", "b"] and _titles(chapter) == list("acd")
    assert response["Location"].endswith(f"#memory-{b.pk}")
    book = editor_client.get(response["Location"]).content.decode()
    assert "‘b’ moved to “Adulthood”, position 2 of 2." in book


def test_a_memory_cannot_move_into_another_book(editor_client, patient, chapter, stranger):
    theirs = factories.ChapterFactory(patient=CareTeamMember.objects.get(user=stranger).patient)
    b = chapter.memories.get(title="b")
    for target in (theirs.pk, "nonsense", ""):
        response = editor_client.post(reverse("memory_move", args=[patient.pk, b.pk]), {"chapter": target}, **FETCH)
        assert response.status_code == 400 and "Choose one of this book’s chapters" in response.json()["detail"]
    assert _titles(chapter) == list("abcd") and not theirs.memories.exists()


def test_another_chapter_is_chosen_on_the_memorys_own_page(editor_client, patient, chapter):
    later = factories.ChapterFactory(patient=patient, title="Adulthood")
    a = chapter.memories.get(title="a")
    page = editor_client.get(reverse("memory_page", args=[patient.pk, a.pk])).content.decode()
    assert f'<option value="{later.pk}">Adulthood</option>' in page and "moves the memory to the end" in page


# --- hiding and showing -------------------------------------------------------------------------------

def test_hiding_a_memory_keeps_it_for_editors_and_takes_it_out_of_the_therapists_book(
        editor_client, patient, chapter, therapist):
    b = chapter.memories.get(title="b")
    response = editor_client.post(reverse("memory_visibility", args=[patient.pk, b.pk]), {"hidden": "1"}, follow=True)
    b.refresh_from_db()
    assert b.hidden and Memory.objects.filter(pk=b.pk).exists()
    page = response.content.decode()
    assert "‘b’ is hidden from the book. It is kept, and you can show it again." in page
    card = page[page.index(f'id="memory-{b.pk}"') - 40:]
    card = card[:card.index("</li>")]
    assert 'class="memory is-hidden"' in card and "Hidden from the book</span>" in card and "Show in the book" in card

    therapist_client = Client()
    therapist_client.force_login(therapist)
    therapists_book = therapist_client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    assert ">a</h4>" in therapists_book and ">b</h4>" not in therapists_book

    editor_client.post(reverse("memory_visibility", args=[patient.pk, b.pk]), {"hidden": "0"})
    b.refresh_from_db()
    assert not b.hidden
    assert ">b</h4>" in therapist_client.get(reverse("patient_book", args=[patient.pk])).content.decode()


def test_hiding_with_htmx_swaps_the_card_and_announces_it(editor_client, patient, chapter):
    b = chapter.memories.get(title="b")
    response = editor_client.post(reverse("memory_visibility", args=[patient.pk, b.pk]), {"hidden": "1"}, **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith("<li")
    assert 'class="memory is-hidden"' in html and f'id="memory-{b.pk}-visibility">Show in the book' in html
    assert json.loads(response["HX-Trigger"])["book-announce"]["message"].startswith("‘b’ is hidden")
    assert f'id="memory-{b.pk}-up">' in html and "position" not in html  # its move buttons come back too


def test_the_memory_page_has_the_toggle_and_returns_to_itself(editor_client, patient, chapter):
    b = chapter.memories.get(title="b")
    page_url = reverse("memory_page", args=[patient.pk, b.pk])
    assert "Hide from the book" in editor_client.get(page_url).content.decode()
    response = editor_client.post(reverse("memory_visibility", args=[patient.pk, b.pk]),
                                  {"hidden": "1", "return_to": "memory"})
    assert response["Location"] == page_url
    page = editor_client.get(page_url).content.decode()
    assert "Show in the book" in page and "Hidden from the book</span>" in page


def test_a_bad_visibility_value_changes_nothing(editor_client, patient, chapter):
    b = chapter.memories.get(title="b")
    response = editor_client.post(reverse("memory_visibility", args=[patient.pk, b.pk]), {"hidden": "maybe"}, **FETCH)
    assert response.status_code == 400 and "Hide from the book" in response.json()["detail"]
    b.refresh_from_db()
    assert not b.hidden


# --- who may do all this ------------------------------------------------------------------------------

def _every_edit_request(patient, chapter):
    memory = chapter.memories.first()
    seen = _ids(_memories(chapter))
    return [
        (reverse("chapter_edit", args=[patient.pk, chapter.pk]), {"title": "Taken over"}),
        (reverse("chapter_delete", args=[patient.pk, chapter.pk]), {}),
        (reverse("chapter_order", args=[patient.pk]), {"order": chapter.pk}),
        (reverse("chapter_move", args=[patient.pk, chapter.pk]), {"direction": "down"}),
        (reverse("memory_order", args=[patient.pk, chapter.pk]), {"order": seen[::-1]}),
        (reverse("memory_move", args=[patient.pk, memory.pk]), {"direction": "down", "seen": seen}),
        (reverse("memory_move", args=[patient.pk, memory.pk]), {"chapter": chapter.pk}),
        (reverse("memory_visibility", args=[patient.pk, memory.pk]), {"hidden": "1"}),
    ]


@pytest.mark.parametrize("who", ["therapist", "stranger"])
def test_therapists_and_other_families_get_404_on_every_change(client, patient, chapter, therapist, stranger, who):
    empty = factories.ChapterFactory(patient=patient, title="Empty")
    client.force_login(therapist if who == "therapist" else stranger)
    for url, data in _every_edit_request(patient, chapter) + [
            (reverse("chapter_delete", args=[patient.pk, empty.pk]), {})]:
        assert client.post(url, data).status_code == 404, url
        assert client.post(url, data, **FETCH).status_code == 404, url
    assert client.get(reverse("chapter_edit", args=[patient.pk, chapter.pk])).status_code == 404
    assert client.get(reverse("chapter_heading", args=[patient.pk, chapter.pk]), **HTMX).status_code == 404
    chapter.refresh_from_db()
    assert chapter.title == "Youth" and Chapter.objects.filter(pk=empty.pk).exists()
    assert _titles(chapter) == list("abcd") and not chapter.memories.filter(hidden=True).exists()


def test_therapists_see_the_book_without_any_editing_controls(client, patient, chapter, therapist):
    client.force_login(therapist)
    page = client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    assert ">a</h4>" in page
    for control in ("Move up", "Move down", "Rename", "Hide from the book", "Move to chapter", "reorder.js",
                    "data-reorder"):
        assert control not in page, control


def test_the_book_page_wires_the_script_to_every_list(editor_client, patient, chapter):
    page = editor_client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    assert "js/reorder.js" in page and 'id="book-status" class="book-status" role="status"' in page
    assert f'data-order-url="{reverse("chapter_order", args=[patient.pk])}"' in page
    assert f'data-order-url="{reverse("memory_order", args=[patient.pk, chapter.pk])}"' in page
    assert page.count("data-reorder-item") == 5  # one chapter and its four memories


def test_move_buttons_submit_their_lists_one_hidden_form_with_the_seen_order(editor_client, patient, chapter):
    """Without JavaScript a button posts the form named by its form= attribute, to its formaction: that form
    must exist once per list and carry the CSRF token and the order the page showed."""
    import re as regex

    book = editor_client.get(reverse("patient_book", args=[patient.pk])).content.decode()
    forms = dict(regex.findall(r'<form id="([^"]+)" method="post" data-move-form hidden>.*?name="seen" value="([^"]*)"',
                               book))
    memories = _memories(chapter)
    assert forms == {"chapter-moves": str(chapter.pk), chapter.move_form_id: ",".join(str(m.pk) for m in memories)}
    # one per list, one per hide/show button, and the header's log-out form
    assert book.count('name="csrfmiddlewaretoken"') == len(forms) + len(memories) + 1
    for memory in memories:
        action = reverse("memory_move", args=[patient.pk, memory.pk])
        assert f'form="{chapter.move_form_id}" formaction="{action}" name="direction" value="down"' in book
