"""Who is where in a memory's pictures: one box per learned-or-not person, pet or object.

A composed picture draws each subject in its own box with only its own likeness (see
generation.planning). Boxes are stored on the memory as fractions of the picture,
`[{"subject": 12, "box": [left, top, right, bottom]}, ...]`, so one layout fits any picture size; an empty
list means "automatic". Places and styles have no box: they are the background.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .models import Memory, Subject

REGION_KINDS = (Subject.Kind.PERSON, Subject.Kind.PET, Subject.Kind.OBJECT)
MIN_SIDE = 0.1  # of the picture's width and height: smaller boxes are too small to draw anyone in
# The automatic layout: people stand (tall boxes); pets and objects are low, in the lower half.
STANDING_TOP, LOW_TOP, MARGIN = 0.08, 0.5, 0.02
# Named places for the keyboard and no-JavaScript editor: where across the picture, and how near.
POSITIONS = {"left": 0.25, "centre": 0.5, "right": 0.75}
SIZES = {"near": 0.5, "far": 0.3}  # the box's width as a share of the picture's (near: larger)


def region_subjects(memory) -> list[Subject]:
    """The memory's subjects that get a box, in the order planning uses (kind, name, number)."""
    return list(memory.subjects.filter(kind__in=REGION_KINDS).order_by("kind", "name", "pk"))


def default_layout(subjects) -> list[dict]:
    """People side by side, standing; each pet low and just after the first person (beside them); objects
    low, last. Widths: a person 1 share, a pet or object 0.7."""
    subjects = [s for s in subjects if s.kind in REGION_KINDS]
    people = [s for s in subjects if s.kind == Subject.Kind.PERSON]
    pets = [s for s in subjects if s.kind == Subject.Kind.PET]
    objects = [s for s in subjects if s.kind == Subject.Kind.OBJECT]
    order = people[:1] + pets + people[1:] + objects
    shares = [1.0 if s.kind == Subject.Kind.PERSON else 0.7 for s in order]
    total, left, layout = sum(shares), 0.0, []
    for subject, share in zip(order, shares):
        right = left + share / total
        top = STANDING_TOP if subject.kind == Subject.Kind.PERSON else LOW_TOP
        layout.append({"subject": subject.pk, "box": _rounded([left + MARGIN, top, right - MARGIN, 1.0])})
        left = right
    return layout


def box_from_choices(position: str, size: str, kind: str) -> list[float]:
    """The keyboard editor's choices as a box: centred at `position`, `size` wide, standing or low."""
    width = SIZES[size]
    centre = POSITIONS[position]
    left = min(max(centre - width / 2, 0.0), 1.0 - width)
    top = STANDING_TOP if kind == Subject.Kind.PERSON else LOW_TOP
    if size == "far":  # further away: smaller and higher up, its feet above the picture's bottom
        top, bottom = top + (1.0 - top) * 0.25, 0.85
    else:
        bottom = 1.0
    return _rounded([left, top, left + width, bottom])


def validate_layout(subjects, value) -> list[dict]:
    """`value` checked against `subjects` (those of the memory). Returns the cleaned list; raises
    ValidationError with one plain sentence per problem, naming the subject."""
    subjects = [s for s in subjects if s.kind in REGION_KINDS]
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(_("The layout must be a list of boxes, one for each person, pet or object."))
    if not value:
        return []
    by_id = {s.pk: s for s in subjects}
    errors, cleaned, seen = [], [], set()
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"subject", "box"}:
            errors.append(_('Each box must be written as {"subject": number, "box": [left, top, right, bottom]}.'))
            continue
        subject = by_id.get(entry["subject"]) if isinstance(entry["subject"], int) else None
        if subject is None:
            errors.append(_("Subject %(subject)s is not a person, pet or object of this memory.")
                          % {"subject": entry["subject"]})
            continue
        name = str(subject.name)
        if subject.pk in seen:
            errors.append(_("%(name)s has two boxes; give each one box.") % {"name": name})
            continue
        seen.add(subject.pk)
        box = entry["box"]
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
            errors.append(_("%(name)s's box must be four numbers from 0 to 1: left, top, right, bottom.")
                          % {"name": name})
            continue
        left, top, right, bottom = box
        if min(box) < 0 or max(box) > 1:
            errors.append(_("%(name)s's box goes outside the picture.") % {"name": name})
        elif right <= left or bottom <= top:
            errors.append(_("%(name)s's box is back to front: its right must be right of its left, and its "
                            "bottom below its top.") % {"name": name})
        elif right - left < MIN_SIDE or bottom - top < MIN_SIDE:
            errors.append(_("%(name)s's box is too small: make it at least a tenth of the picture wide and "
                            "tall.") % {"name": name})
        else:
            cleaned.append({"subject": subject.pk, "box": _rounded(box)})
    for subject in subjects:
        if subject.pk not in seen:
            errors.append(_("%(name)s has no box: place everyone in the memory, or go back to automatic.")
                          % {"name": str(subject.name)})
    if errors:
        raise ValidationError(errors)
    return cleaned


def layout_for(memory) -> list[tuple[Subject, tuple[float, float, float, float]]]:
    """What pictures use: the saved box of each of the memory's region subjects; a subject added since
    the layout was saved gets its automatic place, and boxes of subjects no longer in it are ignored."""
    subjects = region_subjects(memory)
    boxes = {entry["subject"]: entry["box"] for entry in default_layout(subjects)}
    for entry in memory.layout or []:
        if entry.get("subject") in boxes:
            boxes[entry["subject"]] = entry["box"]
    return [(subject, tuple(boxes[subject.pk])) for subject in subjects]


def without_removed(memory) -> bool:
    """Drop the boxes of subjects no longer in the memory. Returns whether anything changed."""
    keep = {s.pk for s in region_subjects(memory)}
    kept = [entry for entry in memory.layout or [] if entry.get("subject") in keep]
    if kept == (memory.layout or []):
        return False
    memory.layout = kept
    return True


def on_subjects_change(sender, instance, action, reverse, pk_set=None, **kwargs):
    """A subject taken out of a memory takes its box with it, whichever path removed it (form, API, admin).
    (A subject taken out of every memory at once is left to layout_for, which ignores boxes of absent subjects.)"""
    if action not in ("post_remove", "post_clear") or (reverse and action == "post_clear"):
        return
    memories = Memory.objects.filter(pk__in=pk_set) if reverse else [instance]
    for memory in memories:
        if without_removed(memory):
            Memory.objects.filter(pk=memory.pk).update(layout=memory.layout)


def pixel_box(fractions, width: int, height: int) -> tuple[int, int, int, int]:
    """A box in fractions as pixels, on whole 8-pixel blocks (the model's grid), inside the picture and at
    least one block wide and tall."""
    left, top, right, bottom = fractions

    def snap(value, side):
        return min(side, max(0, round(value * side / 8) * 8))

    left, right = snap(left, width), snap(right, width)
    top, bottom = snap(top, height), snap(bottom, height)
    if right - left < 8:
        right = min(width, left + 8)
        left = right - 8
    if bottom - top < 8:
        bottom = min(height, top + 8)
        top = bottom - 8
    return left, top, right, bottom


def _rounded(box) -> list[float]:
    return [round(float(v), 4) for v in box]
