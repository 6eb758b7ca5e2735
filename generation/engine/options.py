"""Options of the engine and the trainer, and the parts of a request: plain data, no torch, so a web
process can build and check a request before it is queued (generation.calls)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import EngineInputError


@dataclass(frozen=True)
class EngineOptions:
    base_model: str = "tiny"
    models_dir: Path = Path("var/models")
    base_model_config: str | None = None  # configs for a single-file checkpoint, offline
    device: str | None = None  # cuda / mps / cpu; automatic when None
    precision: str | None = None  # fp16 / bf16 / fp32; automatic when None (fp16 on CUDA, fp32 on CPU)
    attention_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: bool = False
    max_resident_adapters: int = 8

    @classmethod
    def from_env(cls, **overrides) -> "EngineOptions":
        def flag(name):
            return os.environ.get(name, "").lower() in ("1", "true", "yes", "on")

        values = dict(
            base_model=os.environ.get("LIFEBOOK_BASE_MODEL", "tiny"),
            models_dir=Path(os.environ.get("LIFEBOOK_MODELS_DIR", "var/models")),
            base_model_config=os.environ.get("LIFEBOOK_BASE_MODEL_CONFIG") or None,
            device=os.environ.get("LIFEBOOK_DEVICE") or None,
            precision=os.environ.get("LIFEBOOK_PRECISION") or None,
            attention_slicing=flag("LIFEBOOK_ATTENTION_SLICING"),
            vae_tiling=flag("LIFEBOOK_VAE_TILING"),
            cpu_offload=flag("LIFEBOOK_CPU_OFFLOAD"),
            max_resident_adapters=int(os.environ.get("LIFEBOOK_MAX_RESIDENT_ADAPTERS", "8")),
        )
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Adapter:
    """A trained subject adapter for one call: its id, how strongly to apply it, and its file
    (needed the first time; afterwards the engine keeps it resident)."""

    id: str
    weight: float = 1.0
    path: str | Path | None = None


@dataclass(frozen=True)
class Region:
    """For compose: one subject's part of the picture, drawn with only its own adapter active. For the face
    pass of txt2img and img2img: whose face to look for, and where."""

    adapter: Adapter
    prompt: str  # this branch's words: the subject's token and class word, the scene, the style words
    box: tuple[int, int, int, int]  # left, top, right, bottom in the output's pixels
    layout_prompt: str = ""  # the words while the layout forms (the class word, no token); "" = prompt
    face: bool = False  # a person: the face pass repaints the face found inside `box`


@dataclass(frozen=True)
class TrainingOptions:
    steps: int | None = None  # None: STEPS_PER_PHOTO per usable photo, within MIN_STEPS..MAX_STEPS
    resolution: int = 512
    rank: int = 16
    alpha: float = 32.0
    learning_rate: float = 1e-4  # constant schedule
    batch_size: int = 1
    checkpoint_every: int = 400
    keep_states: int = 2  # training states (optimizer, RNG) kept; every checkpoint keeps weights and samples
    seed: int = 0
    gradient_checkpointing: bool = False
    use_8bit_adam: bool | None = None  # None: when bitsandbytes and CUDA are both there
    snr_gamma: float | None = None  # Min-SNR weighting (5.0 is the paper's value); None: plain MSE
    train_text_encoder: bool = False
    text_encoder_learning_rate: float = 5e-5
    prior_preservation: bool = False
    class_images: int = 100
    prior_loss_weight: float = 1.0
    sample_steps: int = 20
    sample_guidance: float = 8.0
    sample_resolution: int | None = None  # side of the checkpoint samples; None: the training resolution
    export_kohya: bool = False
    cache: bool = True  # cache VAE latents and text embeddings; off only to measure what caching saves

    def check(self) -> None:
        def whole(name, low, high=None):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low or (high and value > high):
                limit = f"from {low} to {high}" if high else f"{low} or more"
                raise EngineInputError(f"{name} must be a whole number {limit}, not {value!r}.")

        if self.steps is not None:
            whole("steps", 1, 100_000)
        whole("resolution", 64, 1024)
        if self.resolution % 8:
            raise EngineInputError(f"resolution must be a multiple of 8, not {self.resolution}.")
        whole("rank", 1, 256)
        whole("batch_size", 1, 64)
        whole("checkpoint_every", 1)
        whole("keep_states", 1)
        whole("class_images", 1, 10_000)
        whole("sample_steps", 1, 150)
        if self.sample_resolution is not None:
            whole("sample_resolution", 64, 1024)
            if self.sample_resolution % 8:
                raise EngineInputError(f"sample_resolution must be a multiple of 8, not {self.sample_resolution}.")
        for name in ("alpha", "learning_rate", "text_encoder_learning_rate", "prior_loss_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                raise EngineInputError(f"{name} must be a number above 0, not {value!r}.")
        if self.snr_gamma is not None and not (isinstance(self.snr_gamma, (int, float)) and self.snr_gamma > 0):
            raise EngineInputError(f"snr_gamma must be above 0 (5.0 is usual) or None, not {self.snr_gamma!r}.")
