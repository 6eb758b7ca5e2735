"""The life-book rules that turn a memory into an engine request, so a caregiver never writes a token.

* Every subject named in the memory brings its chosen adapter and its token ("sqgkhoju man").
* A subject with life-stage variants (Juan young, Juan adult, Juan today) is swapped for the variant
  matching the chapter's life stage, when that variant has been trained.
* Two or more trained people in one memory use compose, so their likenesses do not blend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef

from lifebook.models import Memory, Subject

from .models import JobState, TrainingCheckpoint

NEGATIVE_PROMPT = "blurry, deformed, ugly, lowres, bad hands, extra fingers"


@dataclass
class Planned:
    subject: Subject
    checkpoint: TrainingCheckpoint | None  # None: not trained yet, named in words only

    @property
    def phrase(self) -> str:
        if self.checkpoint:
            return f"{self.subject.token} {self.subject.class_word}"
        return f"a {self.subject.class_word}"


@dataclass
class Plan:
    scene: str
    people: list[Planned] = field(default_factory=list)  # trained people
    others: list[Planned] = field(default_factory=list)  # places, pets, objects, styles, untrained people

    @property
    def uses_compose(self) -> bool:
        return len(self.people) >= 2

    @property
    def untrained(self) -> list[Subject]:
        return [p.subject for p in self.people + self.others if p.checkpoint is None]

    def prompt(self, extra: str = "") -> str:
        """The whole scene, naming every subject by token: for txt2img and img2img."""
        names = [p.phrase for p in self.people + self.others]
        text = ", ".join(filter(None, [f"a photo of {self.scene}", extra.strip()]))
        return f"{text}, with {', '.join(names)}" if names else text

    def scene_prompt(self, extra: str = "") -> str:
        """compose's scene: the places and pets by token; the people are painted in afterwards."""
        names = [p.phrase for p in self.others]
        text = ", ".join(filter(None, [f"a photo of {self.scene}", extra.strip()]))
        return f"{text}, with {', '.join(names)}" if names else text


def adapter_for(subject: Subject) -> TrainingCheckpoint | None:
    """The subject's adapter in use: the checkpoint chosen most recently among its trainings."""
    return (TrainingCheckpoint.objects
            .filter(job__subject=subject, job__state=JobState.SUCCEEDED, job__chosen_checkpoint=F("pk"))
            .select_related("job").order_by("-job__chosen_at").first())


def trained_annotation():
    """For querysets of subjects: whether `adapter_for` would find one (the same rule, in one query)."""
    from .models import TrainingJob

    return Exists(TrainingJob.objects.filter(subject=OuterRef("pk"), state=JobState.SUCCEEDED,
                                             chosen_checkpoint__isnull=False))


def variant_for_stage(subject: Subject, life_stage: str) -> Subject:
    """Juan (adult) in a youth chapter becomes Juan (youth), if that variant exists and is trained."""
    if not subject.life_stage or not life_stage or subject.life_stage == life_stage:
        return subject
    variant = (Subject.objects.filter(patient_id=subject.patient_id, kind=subject.kind, name__iexact=subject.name,
                                      life_stage=life_stage).order_by("pk").first())
    if variant and adapter_for(variant):
        return variant
    return subject


def plan_for(memory: Memory) -> Plan:
    stage = memory.chapter.life_stage
    plan = Plan(scene=(memory.scene or memory.title).strip())
    seen = set()
    for subject in memory.subjects.order_by("kind", "name", "pk"):
        subject = variant_for_stage(subject, stage)
        if subject.pk in seen:
            continue
        seen.add(subject.pk)
        planned = Planned(subject, adapter_for(subject))
        if subject.kind == Subject.Kind.PERSON and planned.checkpoint:
            plan.people.append(planned)
        else:
            plan.others.append(planned)
    return plan


def person_boxes(count: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Side by side, left to right, each a full-height strip: the order of the memory's people."""
    edges = [round(i * width / count / 8) * 8 for i in range(count + 1)]
    return [(edges[i], 0, edges[i + 1], height) for i in range(count)]
