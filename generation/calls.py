"""A picture job as one engine call, built in one place for the two that need it: the worker runs the
call (`generation.runner`), and a submission checks it with the engine's own checks before the job is
queued (`generation.jobs`). So what is refused at submission is exactly what the engine would refuse.

Nothing here loads torch or a model: `generation.engine.checks` and the tokenizer are enough.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from lifebook.layout import layout_for, pixel_box

from .engine import checks
from .engine.errors import EngineInputError
from .engine.options import Adapter, EngineOptions, Region
from .models import GenerationJob
from .planning import NEGATIVE_PROMPT, Plan, adapter_for, plan_for

Kind = GenerationJob.Kind

# What a job gets when its submission does not say (stored in job.parameters at submission).
# face_pass: a learned person's face is repainted on its own at the end (the engine's face pass).
GENERATION_DEFAULTS = {
    Kind.TXT2IMG: dict(steps=20, guidance=8.0, width=512, height=512, num_images=4, face_pass=True),
    Kind.IMG2IMG: dict(steps=30, guidance=8.5, strength=0.75, num_images=4, face_pass=True),
    # "Fix a part": the painted part is repainted on its own at full size ("only masked"), A1111-style.
    Kind.INPAINT: dict(steps=30, guidance=7.5, strength=0.75, num_images=4, mask_mode="masked",
                       masked_content="original", mask_blur=4, only_masked=True, padding=32),
    # Several learned subjects, each drawn in its own region (see docs/ARCHITECTURE.md for the values).
    Kind.COMPOSE: dict(steps=30, guidance=7.5, width=512, height=512, num_images=4, layout_fraction=0.25,
                       face_pass=True),
}
# A sketch with several learned subjects is composed too; these are its settings beyond img2img's.
SKETCH_COMPOSE = dict(layout_fraction=0.25)


@dataclass
class Call:
    operation: str  # the Engine method: txt2img, img2img, inpaint or compose
    kwargs: dict  # its arguments, except progress and cancel
    repeat: int = 1  # compose makes one picture a call: it is called this many times, seeds seed, seed+1...


def call_for(job: GenerationJob, *, plan=None, source=None, mask=None, adapter_file=lambda checkpoint: None) -> Call:
    """The engine call for `job` (saved or not). `source` is the picture or sketch to start from and `mask`
    the painted mask, as PIL images; `adapter_file(checkpoint)` gives an adapter's local file (the worker
    needs it, a check does not)."""
    plan = plan or plan_for(job.memory)
    p = {**GENERATION_DEFAULTS[job.kind], **job.parameters}
    extra = p.get("prompt", "")
    common = dict(negative_prompt=p.get("negative_prompt", NEGATIVE_PROMPT), steps=p["steps"],
                  guidance=p["guidance"], seed=p.get("seed"))

    def adapter(checkpoint):
        return Adapter(checkpoint.engine_adapter_id, 1.0, adapter_file(checkpoint))

    adapters = [adapter(x.checkpoint) for x in plan.learned]

    def faces(width, height):
        """One learned person in a one-branch picture: their face is looked for anywhere in it and repainted
        with their adapter alone (a composed picture does this itself, per region)."""
        if not p.get("face_pass"):
            return []
        return [Region(adapter(x.checkpoint), plan.region_prompt(x, extra), (0, 0, width, height), face=True)
                for x in plan.faces]

    if job.kind == Kind.COMPOSE:
        if not plan.uses_compose:
            raise EngineInputError("This memory no longer has two learned subjects; make the picture from the description.")
        return _compose(job, plan, p, extra, common, adapter, width=p["width"], height=p["height"])
    if job.kind == Kind.TXT2IMG:
        return Call("txt2img", dict(prompt=plan.prompt(extra), adapters=adapters, num_images=p.get("num_images", 1),
                                    width=p["width"], height=p["height"], faces=faces(p["width"], p["height"]),
                                    **common))
    if source is None:
        raise EngineInputError("The picture to start from is no longer there; start again from the memory's page.")
    # Unless asked for a size, the picture's own, cut down to whole 8-pixel blocks.
    size = dict(width=p.get("width") or _eighths(source.width), height=p.get("height") or _eighths(source.height))
    if job.kind == Kind.IMG2IMG:
        if plan.uses_compose:  # a sketch of several loved ones: composed from the sketch, on the same layout
            return _compose(job, plan, {**SKETCH_COMPOSE, **p}, extra, common, adapter, image=source,
                            strength=p["strength"], **size)
        return Call("img2img", dict(image=source, prompt=plan.prompt(extra), adapters=adapters,
                                    num_images=p.get("num_images", 1), strength=p["strength"],
                                    faces=faces(size["width"], size["height"]), **size, **common))
    # inpaint: only the chosen subject's adapter, and a prompt naming only them
    if mask is None:
        raise EngineInputError("The painted area is no longer there; paint it again from the memory's page.")
    subject_adapters, prompt = [], f"a photo of {plan.scene}"
    if job.inpaint_subject:
        checkpoint = adapter_for(job.inpaint_subject)
        if checkpoint:
            subject_adapters = [adapter(checkpoint)]
            prompt = f"a photo of {job.inpaint_subject.token} {job.inpaint_subject.class_word}, {plan.scene}"
        else:
            prompt = f"a photo of a {job.inpaint_subject.class_word}, {plan.scene}"
    if extra:
        prompt = f"{prompt}, {extra}"
    return Call("inpaint", dict(image=source, mask=mask, prompt=prompt, adapters=subject_adapters,
                                num_images=p.get("num_images", 1), strength=p["strength"],
                                **{name: p[name] for name in ("mask_mode", "masked_content", "mask_blur",
                                                              "only_masked", "padding")},
                                **size, **common))


def _compose(job, plan: Plan, p: dict, extra: str, common: dict, adapter, *, width: int, height: int, **start) -> Call:
    """Each learned person, pet or object in its box of the memory's layout, with only its own adapter; the
    place and styles in the background. One picture a call, made `num_images` times."""
    boxes = dict((subject.pk, box) for subject, box in layout_for(job.memory))
    regions = [Region(adapter(x.checkpoint), plan.region_prompt(x, extra), pixel_box(boxes[x.named.pk], width, height),
                      layout_prompt=plan.region_prompt(x, extra, layout=True), face=x.is_person)
               for x in plan.regions]
    return Call("compose", dict(scene_prompt=plan.scene_prompt(extra), regions=regions,
                                scene_adapters=[adapter(x.checkpoint) for x in plan.background],
                                width=width, height=height, layout_fraction=p["layout_fraction"],
                                face_pass=p.get("face_pass", True), **start, **common),
                repeat=p.get("num_images", 1))


def check(call: Call, tokenizer=None) -> None:
    """The engine's own checks of `call`, with no model loaded. Raises EngineInputError."""
    k = {name: value for name, value in call.kwargs.items() if name not in ("adapters", "faces")}
    if call.operation == "txt2img":
        checks.txt2img(k.pop("prompt"), tokenizer=tokenizer, **k)
    elif call.operation == "img2img":
        checks.img2img(k.pop("image").size, k.pop("prompt"), tokenizer=tokenizer, **k)
    elif call.operation == "inpaint":
        checks.inpaint(k.pop("image").size, k.pop("mask"), k.pop("prompt"), tokenizer=tokenizer, **k)
    else:
        scene, image = k.pop("scene_adapters"), k.pop("image", None)
        checks.compose(k.pop("scene_prompt"), k.pop("regions"), scene_adapter_ids=[a.id for a in scene],
                       image_size=image.size if image is not None else None, tokenizer=tokenizer, **k)


def tokenizer():
    """The base model's tokenizer, to measure prompts as the engine will (None when it is not here)."""
    options = EngineOptions.from_env(base_model=settings.LIFEBOOK_BASE_MODEL,
                                     models_dir=Path(settings.LIFEBOOK_MODELS_DIR))
    return _tokenizer(options.base_model, str(options.models_dir), options.base_model_config)


@functools.lru_cache(maxsize=4)
def _tokenizer(base_model, models_dir, config_dir):
    from .engine.models import load_tokenizer

    return load_tokenizer(base_model, Path(models_dir), config_dir)


def _eighths(value: int) -> int:
    return max(64, min(2048, value - value % 8))
