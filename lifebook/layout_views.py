"""\"Who is where\": the page where a caregiver places each person, pet or object of a memory (lifebook.layout).

Dragging and resizing boxes needs JavaScript (static/js/layout-editor.js); the same form works without it,
and from a keyboard: each subject has a position (left, centre, right) and a distance (near, far).
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import layout
from .memory_views import memory_for

POSITION_WORDS = {"left": gettext_lazy("On the left"), "centre": gettext_lazy("In the middle"),
                  "right": gettext_lazy("On the right")}
SIZE_WORDS = {"near": gettext_lazy("Near (large)"), "far": gettext_lazy("Further away (small)")}
CUSTOM = "custom"


def describe(box) -> str:
    """A box in words, for the page's text list and screen readers."""
    left, top, right, bottom = box
    centre = (left + right) / 2
    where = _("on the left") if centre < 0.4 else _("on the right") if centre > 0.6 else _("in the middle")
    near = _("near") if right - left >= 0.4 else _("further away")
    return _("%(where)s, %(near)s") % {"where": where, "near": near}


def placed(memory):
    """Each region subject with its box (saved or automatic) and the box in words: for the page and its miniature."""
    return [{"subject": subject, "box": box, "words": describe(box),
             "svg": [round(v * 1000) for v in (box[0], box[1], box[2] - box[0], box[3] - box[1])],
             "handle": [round(box[2] * 1000) - 80, round(box[3] * 1000) - 80]}
            for subject, box in layout.layout_for(memory)]


def _choices(subject, box):
    """The keyboard editor's choices for one subject, each with the box it stands for, and which is selected."""
    options = []
    for position, position_words in POSITION_WORDS.items():
        for size, size_words in SIZE_WORDS.items():
            choice_box = layout.box_from_choices(position, size, subject.kind)
            options.append({"value": f"{position}/{size}", "label": f"{position_words}, {str(size_words).lower()}",
                            "box": ",".join(str(v) for v in choice_box), "selected": list(box) == choice_box})
    if not any(option["selected"] for option in options):
        options.append({"value": CUSTOM, "label": _("Where it is now"), "box": ",".join(map(str, box)),
                        "selected": True})
    return options


def _posted_layout(request, subjects):
    """The boxes the form sent: a named choice, or the exact box the dragging left (hidden field)."""
    entries = []
    for subject in subjects:
        choice = request.POST.get(f"place-{subject.pk}", "")
        position, _slash, size = choice.partition("/")
        if position in layout.POSITIONS and size in layout.SIZES:
            box = layout.box_from_choices(position, size, subject.kind)
        else:
            try:
                box = [float(v) for v in request.POST.get(f"box-{subject.pk}", "").split(",")]
            except ValueError:
                box = None
        entries.append({"subject": subject.pk, "box": box})
    return entries


@login_required
def memory_layout(request, patient_id, memory_id):
    memory = memory_for(request.user, patient_id, memory_id)
    subjects = layout.region_subjects(memory)
    errors = []
    if request.method == "POST":
        if request.POST.get("action") == "automatic":
            memory.layout = []
            memory.save(update_fields=["layout", "updated_at"])
            messages.success(request, _("Everyone is placed automatically again."))
            return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)
        try:
            memory.layout = layout.validate_layout(subjects, _posted_layout(request, subjects))
        except ValidationError as exc:
            errors = exc.messages
        else:
            memory.save(update_fields=["layout", "updated_at"])
            messages.success(request, _("Saved. New pictures of this memory will place everyone like this."))
            return redirect("memory_page", patient_id=patient_id, memory_id=memory_id)
    rows = placed(memory)
    for row in rows:
        row["choices"] = _choices(row["subject"], row["box"])
        row["box_value"] = ",".join(str(v) for v in row["box"])
    return render(request, "lifebook/memory_layout.html", {
        "memory": memory, "patient": memory.chapter.patient, "rows": rows, "errors": errors,
        "automatic": not memory.layout}, status=400 if errors else 200)
