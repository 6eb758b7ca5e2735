"""The life-book rules that turn a memory into an engine request, so a caregiver never writes a token.

* Every subject named in the memory brings its chosen adapter and its token ("sqgkhoju man").
* A subject with life-stage variants (Juan young, Juan adult, Juan today) is swapped for the variant
  matching the chapter's life stage, when that variant has been trained.
* People, pets and objects that have been learned each get a region of the picture (the memory's layout,
  `lifebook.layout`); places and styles are the background. Two or more learned subjects, of any kind, make a
  composed picture: each region is drawn with only its own adapter, so no likeness blends into another.
* A learned person's face is repainted on its own at the end (the engine's face pass), unless a job says not to.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Exists, F, OuterRef

from lifebook.layout import REGION_KINDS
from lifebook.models import Memory, Subject

from .models import JobState, TrainingCheckpoint

NEGATIVE_PROMPT = "blurry, deformed, ugly, lowres, bad hands, extra fingers"


@dataclass
class Planned:
    subject: Subject  # the one drawn: the life-stage variant where there is one
    checkpoint: TrainingCheckpoint | None  # None: not trained yet, named in words only
    named: Subject | None = None  # the one the memory names (its layout box is under this one)

    def __post_init__(self):
        self.named = self.named or self.subject

    @property
    def phrase(self) -> str:
        if self.checkpoint:
            return f"{self.subject.token} {self.subject.class_word}"
        return f"a {self.subject.class_word}"

    @property
    def has_region(self) -> bool:
        return self.subject.kind in REGION_KINDS

    @property
    def is_person(self) -> bool:
        return self.subject.kind == Subject.Kind.PERSON


@dataclass
class Plan:
    scene: str
    regions: list[Planned] = field(default_factory=list)  # learned people, pets, objects: each their own region
    background: list[Planned] = field(default_factory=list)  # a learned place (one) and styles
    words: list[Planned] = field(default_factory=list)  # not learned yet (or a second place): named in words only

    @property
    def learned(self) -> list[Planned]:
        return self.regions + self.background

    @property
    def uses_compose(self) -> bool:
        """Two learned subjects of any kind (a style is not a likeness), at least one with a region."""
        likenesses = [p for p in self.learned if p.subject.kind != Subject.Kind.STYLE]
        return bool(self.regions) and len(likenesses) >= 2

    @property
    def untrained(self) -> list[Subject]:
        return [p.subject for p in self.words if p.checkpoint is None]

    @property
    def faces(self) -> list[Planned]:
        """Whose face the face pass repaints."""
        return [p for p in self.regions if p.is_person]

    def prompt(self, extra: str = "") -> str:
        """The whole scene, naming every subject (learned ones by token): for one-branch pictures."""
        return _with(_lead(self.scene, extra), [p.phrase for p in self.learned + self.words])

    def scene_prompt(self, extra: str = "") -> str:
        """A composed picture's background: the scene, the place and styles by token, the others in words
        (the regions draw the learned people, pets and objects)."""
        return _with(_lead(self.scene, extra), [p.phrase for p in self.background + self.words])

    def region_prompt(self, planned: Planned, extra: str = "", *, layout: bool = False) -> str:
        """One region: who it is (by token, or by class word alone while the layout forms), then the scene."""
        who = f"a {planned.subject.class_word}" if layout else planned.phrase
        return _lead(f"{who}, {self.scene}", extra)


def _lead(text: str, extra: str) -> str:
    """The caregiver's style words lead when given ("a soft oil painting, ..."); else it is a photo."""
    extra = extra.strip()
    return f"{extra}, {text}" if extra else f"a photo of {text}"


def _with(text: str, names: list[str]) -> str:
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
    for named in memory.subjects.order_by("kind", "name", "pk"):
        subject = variant_for_stage(named, stage)
        if subject.pk in seen:
            continue
        seen.add(subject.pk)
        planned = Planned(subject, adapter_for(subject), named)
        if not planned.checkpoint:
            plan.words.append(planned)
        elif planned.has_region:
            plan.regions.append(planned)
        elif subject.kind == Subject.Kind.PLACE and any(p.subject.kind == Subject.Kind.PLACE for p in plan.background):
            # One picture has one place: a second would share the background's branch with the first.
            plan.words.append(Planned(subject, None, named))
        else:
            plan.background.append(planned)
    return plan
