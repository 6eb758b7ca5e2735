"""Editing the book on its own page: rename or delete a chapter, put chapters and memories in order,
move a memory to another chapter, hide a memory from the book (or show it again).

Only editors (owner, caregiver, staff) reach these views; therapists and other families get 404
(`get_patient_for(..., edit=True)`). Every change is a POST that works as a plain form; the book
page's script (static/js/reorder.js) and htmx only make them quicker.

Orders go through `lifebook.positions`, the same service as the API. Each form also sends `seen`,
the order the page showed; `positions.reorder(..., expected=seen)` compares it with the stored order under
the parent's lock, so a move made on a page that someone else's change has made stale is refused
("reload and try again") instead of quietly undoing that change.
"""

import json
import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from accounts.access import get_patient_for

from . import positions
from .forms import ChapterForm
from .memory_views import memory_for
from .models import Chapter, Memory

STALE = "The book changed meanwhile; reload and try again."
UNREADABLE = "That order could not be read. Reload the page and try again."
END_OF_CHAPTER = 2**31  # positions.move_to clamps it to "after the last memory"
FOCUS = re.compile(r"^(chapter|memory)-(\d{1,18})-(up|down|rename|chapter|visibility)$")


# --- small helpers -------------------------------------------------------------------------------

def focus_from(request):
    """Which control the book page should focus after a move made without JavaScript (`?focus=memory-12-up`).

    The page puts `autofocus` on it, so a keyboard user carries on from the same button."""
    match = FOCUS.match(request.GET.get("focus", ""))
    return {"kind": match[1], "pk": int(match[2]), "control": match[3]} if match else None


def ids_text(ids):
    """The `seen` value of a move form: ids in page order, comma-separated."""
    return ",".join(str(pk) for pk in ids)


def _parse_ids(values):
    """A list of ids from form values (repeated fields and/or comma-separated); None if it isn't one."""
    ids = []
    for value in values:
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            # ASCII digits only ("²" is a digit to isdigit(), not to int()); 18 of them fit a bigint.
            if not (part.isascii() and part.isdigit()) or len(part) > 18:
                return None
            ids.append(int(part))
    return ids


def _from_script(request):
    """The book page's script sends fetch requests (X-Requested-With: fetch) and reads JSON back."""
    return request.headers.get("X-Requested-With") == "fetch"


def _book_url(patient_id, focus=None, anchor=None):
    """The book page, scrolled to `anchor`, or with `focus` on a control (which scrolls to it too: with both,
    browsers would skip autofocus, since a #fragment that names an element wins)."""
    url = reverse("patient_book", args=[patient_id])
    if focus:
        return f"{url}?focus={focus}"
    return url + (f"#{anchor}" if anchor else "")


def _refuse(request, message, status, back):
    """A refusal in plain words: JSON for the script, a message on the page it came from otherwise."""
    if _from_script(request):
        return JsonResponse({"detail": message}, status=status)
    if request.htmx:
        return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    messages.error(request, message)
    return redirect(back)


def _announce(response, message):
    """Tell the page's live region what happened (reorder.js listens for this htmx event)."""
    response["HX-Trigger"] = json.dumps({"book-announce": {"message": message}})
    return response


def _ordinal(index, count):
    return f"position {index} of {count}"


# --- chapters ------------------------------------------------------------------------------------

def _chapter_for(user, patient_id, chapter_id):
    patient = get_patient_for(user, patient_id, edit=True)
    return patient, get_object_or_404(patient.chapters, pk=chapter_id)


def _chapter_head_context(patient, chapter, **extra):
    """What templates/lifebook/_chapter_head.html needs outside the book page's loop."""
    order = list(patient.chapters.values_list("pk", flat=True))
    return {"patient": patient, "chapter": chapter, "may_edit": True, "index": order.index(chapter.pk) + 1,
            "count": len(order), "chapter_seen": ids_text(order), **extra}


class ChapterRenameForm(ChapterForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["title"].error_messages["required"] = "Give the chapter a title, for example “Youth”."
        self.fields["title"].help_text = ""


def _rename_form(request, chapter):
    # Ids carry the chapter, so two open forms (or the heading's ids) never clash on one page.
    return ChapterRenameForm(request.POST or None, instance=chapter, auto_id=f"chapter-{chapter.pk}-%s")


@login_required
def chapter_edit(request, patient_id, chapter_id):
    """Rename a chapter (title and life stage). htmx swaps the heading for this form and back; without
    JavaScript it is a page of its own. The same place offers deleting the chapter when it is empty."""
    patient, chapter = _chapter_for(request.user, patient_id, chapter_id)
    title = chapter.title  # the form writes onto the instance even when the input is refused
    form = _rename_form(request, chapter)
    if request.method == "POST" and form.is_valid():
        chapter = form.save()
        message = f"The chapter is now called “{chapter.title}”."
        if request.htmx:
            focus = {"kind": "chapter", "pk": chapter.pk, "control": "rename"}
            return _announce(render(request, "lifebook/_chapter_head.html",
                                    _chapter_head_context(patient, chapter, focus=focus)), message)
        messages.success(request, message)
        return redirect(_book_url(patient.pk, focus=f"chapter-{chapter.pk}-rename", anchor=f"chapter-{chapter.pk}"))
    context = {"patient": patient, "chapter": chapter, "title": title, "form": form,
               "has_memories": chapter.memories.exists()}
    if request.htmx:
        form.fields["title"].widget.attrs["autofocus"] = True
        return render(request, "lifebook/_chapter_rename.html", context, status=400 if form.errors else 200)
    return render(request, "lifebook/chapter_edit.html", context)


@login_required
@require_safe
def chapter_heading(request, patient_id, chapter_id):
    """The chapter's heading with its controls: what "Cancel" on the inline rename form puts back."""
    patient, chapter = _chapter_for(request.user, patient_id, chapter_id)
    focus = {"kind": "chapter", "pk": chapter.pk, "control": "rename"}
    return render(request, "lifebook/_chapter_head.html", _chapter_head_context(patient, chapter, focus=focus))


@login_required
@require_POST
def chapter_delete(request, patient_id, chapter_id):
    """Delete a chapter, only when it has no memories: deleting a chapter must never take memories with it."""
    patient, chapter = _chapter_for(request.user, patient_id, chapter_id)
    with transaction.atomic():
        # Writing or moving a memory into this chapter locks it too, so none can arrive between
        # the check and the delete.
        Chapter.objects.select_for_update().filter(pk=chapter.pk).first()
        has_memories = chapter.memories.exists()
        if not has_memories:
            chapter.delete()
    if has_memories:
        return _refuse(request, f"“{chapter.title}” still has memories. Move or delete its memories first.", 400,
                       reverse("chapter_edit", args=[patient.pk, chapter_id]))
    messages.success(request, f"The chapter “{chapter.title}” was deleted.")
    return redirect(_book_url(patient.pk, anchor="chapters-heading"))


@login_required
@require_POST
def chapter_order(request, patient_id):
    """Every chapter id in the new order (from dragging); `seen` is the order the page showed."""
    patient = get_patient_for(request.user, patient_id, edit=True)
    return _save_order(request, patient, patient.chapters.all(), _book_url(patient.pk, anchor="chapters-heading"))


@login_required
@require_POST
def chapter_move(request, patient_id, chapter_id):
    """Move a chapter one place up or down (the "Move up" / "Move down" buttons without JavaScript)."""
    patient, chapter = _chapter_for(request.user, patient_id, chapter_id)
    return _move_one(request, patient.pk, patient, patient.chapters.all(), chapter, "chapter")


# --- memories ------------------------------------------------------------------------------------

def _memory_for(user, patient_id, memory_id):
    memory = memory_for(user, patient_id, memory_id)  # editors only: therapists and other families get 404
    return memory.chapter.patient, memory


@login_required
@require_POST
def memory_order(request, patient_id, chapter_id):
    """Every memory id of one chapter in the new order (from dragging); `seen` is the order the page showed."""
    patient, chapter = _chapter_for(request.user, patient_id, chapter_id)
    return _save_order(request, chapter, chapter.memories.all(), _book_url(patient.pk, anchor=f"chapter-{chapter.pk}"))


@login_required
@require_POST
def memory_move(request, patient_id, memory_id):
    """`direction` up/down moves a memory one place in its chapter; `chapter` moves it to the end of
    another chapter of the same book (as the API's move does)."""
    patient, memory = _memory_for(request.user, patient_id, memory_id)
    if "chapter" in request.POST:
        return _move_to_chapter(request, patient, memory)
    return _move_one(request, patient.pk, memory.chapter, memory.chapter.memories.all(), memory, "memory")


@login_required
@require_POST
def memory_visibility(request, patient_id, memory_id):
    """Hide a memory from the book (`hidden=1`) or show it again (`hidden=0`). Hidden memories are kept:
    editors still see them, dimmed; therapists, the carousel and the PDF leave them out."""
    patient, memory = _memory_for(request.user, patient_id, memory_id)
    back_to_memory = request.POST.get("return_to") == "memory"
    back = (reverse("memory_page", args=[patient.pk, memory.pk]) if back_to_memory else
            _book_url(patient.pk, focus=f"memory-{memory.pk}-visibility", anchor=f"memory-{memory.pk}"))
    wanted = request.POST.get("hidden")
    if wanted not in ("0", "1"):
        return _refuse(request, "Choose “Hide from the book” or “Show in the book”.", 400, back)
    memory.hidden = wanted == "1"
    memory.save(update_fields=["hidden", "updated_at"])
    message = (f"‘{memory.title}’ is hidden from the book. It is kept, and you can show it again."
               if memory.hidden else f"‘{memory.title}’ is back in the book.")
    if request.htmx and not back_to_memory:
        return _announce(_memory_card(request, patient, memory), message)
    messages.success(request, message)
    return redirect(back)


def _memory_card(request, patient, memory):
    """One memory's card as the book page shows it to an editor (for htmx to swap in)."""
    memory = Memory.objects.select_related("chosen_image", "chapter").prefetch_related("subjects").get(pk=memory.pk)
    chapter = memory.chapter
    order = list(chapter.memories.values_list("pk", flat=True))
    chapter.memory_seen = ids_text(order)
    return render(request, "lifebook/_memory_card.html", {
        "patient": patient, "chapter": chapter, "memory": memory, "may_edit": True,
        "index": order.index(memory.pk) + 1, "count": len(order)})


def _move_to_chapter(request, patient, memory):
    anchor = f"memory-{memory.pk}"
    back = _book_url(patient.pk, anchor=anchor)
    target_id = _parse_ids([request.POST.get("chapter", "")])
    target = patient.chapters.filter(pk=target_id[0]).first() if target_id and len(target_id) == 1 else None
    if target is None:
        return _refuse(request, "Choose one of this book’s chapters (if one was just deleted, reload the page).",
                       400, back)
    if target.pk == memory.chapter_id:
        message, level = f"‘{memory.title}’ is already in “{target.title}”.", messages.INFO
    else:
        memory.chapter = target
        positions.move_to(memory, target, target.memories.all(), END_OF_CHAPTER)
        count = target.memories.count()
        message, level = f"‘{memory.title}’ moved to “{target.title}”, {_ordinal(count, count)}.", messages.SUCCESS
    if _from_script(request):
        return JsonResponse({"message": message})
    messages.add_message(request, level, message)
    return redirect(back)


# --- shared by chapters and memories ---------------------------------------------------------------

def _save_order(request, parent, siblings, back):
    order = _parse_ids(request.POST.getlist("order"))
    seen = _parse_ids(request.POST.getlist("seen")) if "seen" in request.POST else None
    if not order or ("seen" in request.POST and not seen):
        return _refuse(request, UNREADABLE, 400, back)
    try:
        positions.reorder(parent, siblings, order, expected=seen)
    except positions.OrderingConflict:
        return _refuse(request, STALE, 409, back)
    if _from_script(request):
        return JsonResponse({"order": order})
    messages.success(request, "The new order is saved.")
    return redirect(back)


def _move_one(request, patient_id, parent, siblings, item, kind):
    direction = request.POST.get("direction")
    anchor = f"{kind}-{item.pk}"
    back = _book_url(patient_id, focus=f"{anchor}-{direction}" if direction in ("up", "down") else None,
                     anchor=anchor)
    if direction not in ("up", "down"):
        return _refuse(request, "Choose “Move up” or “Move down”.", 400, back)
    if request.POST.get("seen"):
        seen = _parse_ids(request.POST.getlist("seen"))
    else:  # a client that did not say what it saw moves relative to the stored order
        seen = list(siblings.values_list("pk", flat=True))
    if seen is None:
        return _refuse(request, UNREADABLE, 400, back)
    if item.pk not in seen:
        return _refuse(request, STALE, 409, back)
    here = seen.index(item.pk)
    there = here - 1 if direction == "up" else here + 1
    if not 0 <= there < len(seen):
        message = f"‘{item.title}’ is already {'first' if direction == 'up' else 'last'}."
        level = messages.INFO
    else:
        order = list(seen)
        order[here], order[there] = order[there], order[here]
        try:
            positions.reorder(parent, siblings, order, expected=seen)
        except positions.OrderingConflict:
            return _refuse(request, STALE, 409, back)
        message = f"‘{item.title}’ moved to {_ordinal(there + 1, len(order))}."
        level = messages.SUCCESS
    if _from_script(request):
        return JsonResponse({"message": message})
    messages.add_message(request, level, message)
    return redirect(back)


def editing_context(request, chapters):
    """What the book page adds for editors: the orders its move forms send back as `seen`, and the
    control to focus after a move made without JavaScript. Reads only the already-prefetched rows."""
    for chapter in chapters:
        chapter.memory_seen = ids_text(memory.pk for memory in chapter.memories.all())
    return {"chapter_seen": ids_text(chapter.pk for chapter in chapters), "focus": focus_from(request)}
