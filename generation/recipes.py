"""The demo recipe: the settings training and pictures use when the base model is the demo model.

The demo model (`tiny`, random weights) learns nothing and draws noise, so full-size settings only make a
newcomer wait: 2400 training steps at 512 px took hours on a small machine. With this recipe the whole
flow (10 photos learned, checkpoints to choose from, 4 pictures of a memory) takes a few minutes on 2 cores.

Decided in one place, at submission (`generation.jobs`), and stored in the job's parameters, so a job says
what it ran with. A real base model never gets it. An administrator's LIFEBOOK_TRAINING_OPTIONS and the
settings a request gives still win over it.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from .calls import GENERATION_DEFAULTS
from .engine.models import is_demo_model
from .models import GenerationJob

Kind = GenerationJob.Kind

# Trainer options (generation.engine.options.TrainingOptions): 64 px, 200 steps, a checkpoint every 50
# (four to choose from) with four small, quick samples each. About half a minute of CPU for 10 photos.
DEMO_TRAINING = dict(steps=200, resolution=64, rank=4, alpha=8.0, learning_rate=1e-3, checkpoint_every=50,
                     sample_steps=4, sample_resolution=64)
# Picture settings (generation.jobs.GENERATION_LIMITS names): small and few steps, a couple of seconds a job.
DEMO_PICTURES = {
    Kind.TXT2IMG: dict(steps=12, width=128, height=128),
    Kind.COMPOSE: dict(steps=12, width=128, height=128),
    Kind.IMG2IMG: dict(steps=12),
    Kind.INPAINT: dict(steps=12),
}


def uses_demo_model() -> bool:
    """Is the configured base model the demo model? Cheap: reads a name or a marker file, loads nothing."""
    return is_demo_model(settings.LIFEBOOK_BASE_MODEL, Path(settings.LIFEBOOK_MODELS_DIR))


def training_parameters(given: dict) -> dict:
    """A training job's parameters: the demo recipe under what the server's setting and the request give."""
    if not uses_demo_model():
        return dict(given)
    recipe = {name: value for name, value in DEMO_TRAINING.items() if name not in settings.LIFEBOOK_TRAINING_OPTIONS}
    return {**recipe, **given}


def generation_defaults(kind: str) -> dict:
    """What a picture job of `kind` gets when its submission does not say."""
    defaults = dict(GENERATION_DEFAULTS[kind])
    if uses_demo_model():
        defaults.update(DEMO_PICTURES[kind])
    return defaults
