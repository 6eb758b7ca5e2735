"""Positions of chapters in a book and memories in a chapter.

Positions are unique per parent (a database constraint). Every change locks
the parent row first, so two caregivers reordering at once are serialised
instead of interleaved: the second one either applies to the order the first
left, or is refused with a clear message when the set of items changed under
it. Nothing is lost, and no two items ever share a position.
"""

from django.db import transaction
from django.db.models import Max


class OrderingConflict(Exception):
    """The items changed while the caregiver was reordering them."""


def _lock(parent):
    # select_for_update locks the row on PostgreSQL; SQLite runs in
    # IMMEDIATE mode (settings), so any write transaction is already exclusive.
    type(parent).objects.select_for_update().filter(pk=parent.pk).first()


def next_position(siblings) -> int:
    """The position after the last sibling. Call inside a transaction holding the parent lock."""
    last = siblings.aggregate(last=Max("position"))["last"]
    return 0 if last is None else last + 1


def save_with_next_position(item, parent, siblings):
    """Save a new item at the end of its parent's list."""
    with transaction.atomic():
        _lock(parent)
        item.position = next_position(siblings)
        item.save()
    return item


def reorder(parent, siblings, ordered_ids, expected=None):
    """Give `siblings` the order of `ordered_ids` (all of them, each once).

    With `expected` (the order the caregiver's page showed), only if that is still the stored order: a
    move made on a stale page ("one up") would otherwise quietly undo someone else's reorder."""
    ordered_ids = [int(pk) for pk in ordered_ids]
    with transaction.atomic():
        _lock(parent)
        if expected is not None and list(siblings.values_list("pk", flat=True)) != [int(pk) for pk in expected]:
            raise OrderingConflict("The book changed meanwhile; reload and try again.")
        items = {item.pk: item for item in siblings.select_for_update()}
        if len(ordered_ids) != len(set(ordered_ids)) or set(ordered_ids) != set(items):
            raise OrderingConflict(
                "The list changed while you were reordering it (someone else may be editing). "
                "Reload the page to see the latest order, then try again."
            )
        _assign_positions(siblings, [items[pk] for pk in ordered_ids])


def move_to(item, parent, siblings, index: int):
    """Put an item (already in, or moving into, `parent`) at `index` among `siblings`."""
    with transaction.atomic():
        _lock(parent)
        others = [s for s in siblings.select_for_update() if s.pk != item.pk]
        index = max(0, min(index, len(others)))
        _assign_positions(siblings, others[:index] + [item] + others[index:])


def _assign_positions(siblings, ordered_items):
    # Two steps, so the unique (parent, position) constraint never sees a clash
    # midway: first move everything past the current maximum, then into place.
    model = siblings.model
    offset = (next_position(siblings) or 0) + len(ordered_items) + 1
    for i, item in enumerate(ordered_items):
        item.position = offset + i
    model.objects.bulk_update(ordered_items, ["position"] + _parent_fields(ordered_items))
    for i, item in enumerate(ordered_items):
        item.position = i
    model.objects.bulk_update(ordered_items, ["position"])
    if ordered_items:  # bulk_update sends no signals: say so to the book's page cache ourselves
        from .book_cache import book_changed

        book_changed(_patient_id(ordered_items[0]))


def _patient_id(item):
    return item.patient_id if hasattr(item, "patient_id") else item.chapter.patient_id


def _parent_fields(items):
    # move_to may change an item's chapter; it is saved together with its position.
    return ["chapter"] if items and hasattr(items[0], "chapter_id") else []
