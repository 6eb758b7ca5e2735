import threading

import pytest
from django.db import connection, connections

from lifebook import positions
from lifebook.models import Chapter, Memory
from tests import factories


def _order(chapter):
    return list(chapter.memories.order_by("position").values_list("title", flat=True))


@pytest.fixture
def chapter(db):
    chapter = factories.ChapterFactory()
    for title in "abcd":
        Memory.objects.create(chapter=chapter, title=title)
    return chapter


def test_reorder_gives_the_requested_order(chapter):
    ids = dict(chapter.memories.values_list("title", "pk"))
    positions.reorder(chapter, chapter.memories.all(), [ids[t] for t in "dbca"])
    assert _order(chapter) == list("dbca")
    assert sorted(chapter.memories.values_list("position", flat=True)) == [0, 1, 2, 3]


def test_reorder_refuses_a_list_that_no_longer_matches(chapter):
    ids = dict(chapter.memories.values_list("title", "pk"))
    Memory.objects.create(chapter=chapter, title="e")  # added by someone else meanwhile
    with pytest.raises(positions.OrderingConflict, match="Reload the page"):
        positions.reorder(chapter, chapter.memories.all(), [ids[t] for t in "dcba"])
    assert _order(chapter) == list("abcde")  # nothing lost, nothing moved


def test_reorder_refuses_repeated_ids(chapter):
    ids = dict(chapter.memories.values_list("title", "pk"))
    with pytest.raises(positions.OrderingConflict):
        positions.reorder(chapter, chapter.memories.all(), [ids["a"], ids["a"], ids["b"], ids["c"]])


def test_move_to_another_chapter_puts_the_memory_where_asked(chapter):
    other = factories.ChapterFactory(patient=chapter.patient)
    Memory.objects.create(chapter=other, title="x")
    Memory.objects.create(chapter=other, title="y")
    moving = chapter.memories.get(title="b")
    moving.chapter = other
    positions.move_to(moving, other, other.memories.all(), 1)
    assert _order(other) == ["x", "b", "y"]
    assert _order(chapter) == ["a", "c", "d"]


def test_chapters_reorder_within_their_patient(db):
    patient = factories.PatientFactory()
    chapters = [Chapter.objects.create(patient=patient, title=t) for t in ("Youth", "Adulthood", "Old age")]
    positions.reorder(patient, patient.chapters.all(), [chapters[2].pk, chapters[0].pk, chapters[1].pk])
    assert list(patient.chapters.values_list("title", flat=True)) == ["Old age", "Youth", "Adulthood"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_reorders_and_additions_never_duplicate_a_position():
    if connection.vendor != "postgresql":
        pytest.skip("SQLite's in-memory test database is not shared between threads; PostgreSQL runs this in CI")
    chapter = factories.ChapterFactory()
    for title in "abcdef":
        Memory.objects.create(chapter=chapter, title=title)
    ids = list(chapter.memories.order_by("position").values_list("pk", flat=True))
    start = threading.Barrier(6)
    errors = []

    def reorder(order):
        start.wait()
        try:
            for _ in range(5):
                try:
                    positions.reorder(chapter, Memory.objects.filter(chapter=chapter), order)
                except positions.OrderingConflict:
                    pass  # an addition got in first: the caller is told to reload
        except Exception as exc:  # anything else (an IntegrityError) fails the test
            errors.append(exc)
        finally:
            connections.close_all()

    def add(prefix):
        start.wait()
        try:
            for i in range(3):
                Memory.objects.create(chapter=Chapter.objects.get(pk=chapter.pk), title=f"{prefix}{i}")
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reorder, args=(order,)) for order in
               (ids[::-1], ids[1:] + ids[:1], ids[2:] + ids[:2], ids)]
    threads += [threading.Thread(target=add, args=(p,)) for p in "xy"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    memory_positions = list(Memory.objects.filter(chapter=chapter).values_list("position", flat=True))
    assert len(memory_positions) == 12 and len(set(memory_positions)) == 12


def test_a_memory_saved_with_another_chapter_goes_last_there(chapter):
    """The memory page's form and the API's PATCH both just save the memory with its new chapter."""
    other = factories.ChapterFactory(patient=chapter.patient)
    residents = [factories.MemoryFactory(chapter=other, title=f"there {i}") for i in range(2)]
    moving = chapter.memories.first()
    moving.chapter, moving.title = other, "moved"
    moving.save()
    assert list(other.memories.values_list("title", flat=True)) == ["there 0", "there 1", "moved"]
    assert [m.position for m in other.memories.all()] == [0, 1, 2] and residents
