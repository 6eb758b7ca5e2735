"""Train one subject's LoRA adapter from its photos (pure PyTorch + diffusers + peft, no Django).

    trainer = Trainer(EngineOptions(base_model="tiny"))
    result = trainer.train(photos, token="sqgkhoju", class_word="man", is_person=True,
                           out_dir=Path("var/train/juan"), options=TrainingOptions(steps=2400))

The defaults are the thesis's: rank 16, alpha 32 on the UNet attention, lr 1e-4 constant, batch 1,
about 2400 steps for 10 photos, a checkpoint with sample pictures every 400 steps (over-training is as
real as under-training, so a person picks the best checkpoint by eye).

The output folder is the whole state of a training run:

    training.json                    what is being trained (a resume must match it)
    report.json                      the photo report, in plain words
    class_images/NNN.png             prior-preservation pictures from the base model (if asked)
    checkpoints/step-000400/         lora.safetensors, samples/sample-N.png, checkpoint.json,
                                     state.pt (optimizer, RNG, step: only the last K keep one)
    lora.safetensors                 the final adapter (and lora-kohya.safetensors if asked)

Running again with the same folder resumes from the newest state; the result is the same adapter as
an uninterrupted run (tested on CPU).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .engine import pick_device
from .checks import check_token  # noqa: F401  (part of this module's API)
from .errors import Cancelled, EngineInputError
from .lora_formats import read_metadata, save_diffusers_lora, save_kohya_lora
from .models import load_pipeline, model_identity, resolve_source
from .options import EngineOptions, TrainingOptions  # noqa: F401  (TrainingOptions is part of this module's API)
from .photos import PreparedSet, prepare_photos
from .steps import StepTimer

TRAINER_VERSION = 1
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
ADAPTER_NAME = "lifebook_training"
STEPS_PER_PHOTO = 240  # the thesis: ~2400 steps for 10 photos gave the best likeness
MIN_STEPS, MAX_STEPS = 1200, 4800
# Fixed prompts and seeds, so samples of different checkpoints are comparable picture by picture.
VALIDATION_PROMPTS = (
    "a photo of {subject}",
    "a close up portrait of {subject} smiling",
    "{subject} in a garden on a sunny day",
    "a watercolour painting of {subject}",
)
SAMPLE_SEEDS = (11, 22, 33, 44)


@dataclass
class Checkpoint:
    step: int
    folder: Path
    lora_path: Path
    samples: list[Path]
    loss: float | None
    has_state: bool

    @classmethod
    def read(cls, folder: Path) -> "Checkpoint":
        info = json.loads((folder / "checkpoint.json").read_text())
        return cls(step=info["step"], folder=folder, lora_path=folder / "lora.safetensors",
                   samples=[folder / name for name in info["samples"]], loss=info["loss"],
                   has_state=(folder / "state.pt").exists())


@dataclass
class TrainingResult:
    adapter_path: Path
    kohya_path: Path | None
    size_bytes: int
    steps: int
    checkpoints: list[Checkpoint]
    prepared: PreparedSet
    resumed_from: int | None
    losses: list[float] = field(default_factory=list)  # per step, of this run
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingProgress:
    # "class images", "caching", "training", "saving checkpoint", "making samples", "checkpoint" (saved)
    stage: str
    step: int
    total: int
    loss: float | None = None  # mean of the last few steps
    eta_seconds: float | None = None
    checkpoint: Checkpoint | None = None  # with stage "checkpoint": the one just written


ProgressCallback = Callable[[TrainingProgress], None]
CancelCheck = Callable[[], bool]


def default_steps(photo_count: int) -> int:
    return min(max(STEPS_PER_PHOTO * photo_count, MIN_STEPS), MAX_STEPS)


class Trainer:
    """Keeps one base model loaded; `train` adds a LoRA, trains it, and removes it again, so one
    worker process can run one training after another without reloading the model."""

    def __init__(self, engine_options: EngineOptions | None = None):
        self.engine_options = engine_options or EngineOptions.from_env()
        self.device, _ = pick_device(self.engine_options.device, self.engine_options.precision)
        self.source, self.is_demo_model = resolve_source(self.engine_options.base_model,
                                                        Path(self.engine_options.models_dir))
        self.model_name = (self.engine_options.base_model if self.engine_options.base_model in ("tiny", "sd15-random")
                           else self.source.name)
        self.identity = model_identity(self.source)
        self.mixed = _mixed_precision(self.device, self.engine_options.precision)
        # Frozen base weights in the half type on a GPU (half the memory); LoRA weights stay fp32.
        weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.mixed, torch.float32)
        self.pipe = load_pipeline(self.source, weight_dtype, self.engine_options.base_model_config)
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.to(self.device)
        for module in (self.pipe.unet, self.pipe.vae, self.pipe.text_encoder):
            module.requires_grad_(False)

    # --- the run -----------------------------------------------------------------

    def train(self, photos: list[tuple[str, Image.Image]], *, token: str, class_word: str, is_person: bool,
              out_dir: Path, options: TrainingOptions | None = None, progress: ProgressCallback | None = None,
              cancel: CancelCheck | None = None) -> TrainingResult:
        options = options or TrainingOptions()
        options.check()
        check_token(self.pipe.tokenizer, token, class_word)
        prepared = prepare_photos(photos, token=token, class_word=class_word, is_person=is_person,
                                  resolution=options.resolution)
        total = options.steps or default_steps(len(prepared.examples))
        out_dir = Path(out_dir)
        identity = dict(
            trainer_version=TRAINER_VERSION, token=token, class_word=class_word, is_person=is_person,
            base_model=self.model_name, base_model_identity=self.identity,
            photo_hashes=[e.content_hash for e in prepared.examples],
            options={k: v for k, v in asdict(options).items() if k not in ("steps", "export_kohya", "cache")},
        )
        self._claim_folder(out_dir, identity)
        _write_json(out_dir / "report.json", prepared.report.to_dict())
        run = _Run(self, options, prepared, token, class_word, out_dir, total, progress, cancel)
        try:
            return run.execute()
        finally:
            run.remove_adapters()

    def _claim_folder(self, out_dir: Path, identity: dict) -> None:
        """A folder holds one training: resume only what matches, never mix two trainings."""
        marker = out_dir / "training.json"
        if marker.exists():
            existing = json.loads(marker.read_text())
            if existing != identity:
                changed = sorted(k for k in identity if existing.get(k) != identity[k])
                raise EngineInputError(
                    f"{out_dir} already holds a different training (it differs in: {', '.join(changed)}). "
                    "Choose another folder, or delete this one to start again."
                )
        else:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_json(marker, identity)
        for partial in out_dir.glob("checkpoints/*.partial"):  # left by a crash mid-save
            shutil.rmtree(partial, ignore_errors=True)


class _Run:
    """One call of Trainer.train: set-up, the step loop, checkpoints. Split out so each part is short."""

    def __init__(self, trainer: Trainer, options, prepared, token, class_word, out_dir, total, progress, cancel):
        self.trainer, self.options, self.prepared = trainer, options, prepared
        self.pipe, self.device = trainer.pipe, trainer.device
        self.token, self.class_word, self.out_dir, self.total = token, class_word, out_dir, total
        self.progress, self.cancel = progress or (lambda update: None), cancel or (lambda: False)
        self.mixed = trainer.mixed
        self.generator = torch.Generator("cpu").manual_seed(options.seed)
        self.losses: list[float] = []  # this run's, one per step
        self.earlier_losses: list[float] = []  # from the run this one resumes
        self.resumed_from = None
        from diffusers import DDPMScheduler

        self.noise_scheduler = DDPMScheduler.from_config(self.pipe.scheduler.config)

    # set-up

    def add_adapters(self) -> None:
        from peft import LoraConfig

        # The same seed gives the same starting weights, so two runs of one training agree.
        torch.manual_seed(self.options.seed)
        unet = self.pipe.unet
        unet.add_adapter(LoraConfig(r=self.options.rank, lora_alpha=self.options.alpha, init_lora_weights="gaussian",
                                    target_modules=UNET_TARGETS), adapter_name=ADAPTER_NAME)
        if self.options.train_text_encoder:
            self.pipe.text_encoder.add_adapter(
                LoraConfig(r=self.options.rank, lora_alpha=self.options.alpha, init_lora_weights="gaussian",
                           target_modules=TEXT_TARGETS), adapter_name=ADAPTER_NAME)
        for module in self.trained_modules():
            for parameter in module.parameters():
                if parameter.requires_grad:  # LoRA weights train in fp32 even over half-precision weights
                    parameter.data = parameter.data.float()
        if self.options.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            if self.options.train_text_encoder:
                text_encoder = self.pipe.text_encoder  # transformers renamed this in v5
                getattr(text_encoder, "activation_checkpointing_enable", text_encoder.gradient_checkpointing_enable)()

    def remove_adapters(self) -> None:
        from peft.tuners.tuners_utils import BaseTunerLayer

        if any(isinstance(m, BaseTunerLayer) for m in self.pipe.unet.modules()):
            self.pipe.unet.delete_adapters(ADAPTER_NAME)
        if any(isinstance(m, BaseTunerLayer) for m in self.pipe.text_encoder.modules()):
            self.pipe.text_encoder.delete_adapter(ADAPTER_NAME)  # transformers' name for it
        if self.options.gradient_checkpointing:
            self.pipe.unet.disable_gradient_checkpointing()
            text_encoder = self.pipe.text_encoder
            getattr(text_encoder, "activation_checkpointing_disable", text_encoder.gradient_checkpointing_disable)()
        self.pipe.unet.eval()
        self.pipe.text_encoder.eval()

    def trained_modules(self):
        return [self.pipe.unet] + ([self.pipe.text_encoder] if self.options.train_text_encoder else [])

    def make_optimizer(self):
        unet_params = [p for p in self.pipe.unet.parameters() if p.requires_grad]
        groups = [{"params": unet_params, "lr": self.options.learning_rate}]
        if self.options.train_text_encoder:
            groups.append({"params": [p for p in self.pipe.text_encoder.parameters() if p.requires_grad],
                           "lr": self.options.text_encoder_learning_rate})
        use_8bit = self.options.use_8bit_adam
        if use_8bit is None:
            use_8bit = self.device.type == "cuda" and _has_bitsandbytes()
        if use_8bit:
            if self.device.type != "cuda" or not _has_bitsandbytes():
                raise EngineInputError("8-bit Adam needs a CUDA GPU and the bitsandbytes package.")
            import bitsandbytes

            return bitsandbytes.optim.AdamW8bit(groups), "adamw-8bit"
        return torch.optim.AdamW(groups), "adamw"

    def encode_pixels(self, images: list[Image.Image]) -> torch.Tensor:
        vae = self.pipe.vae
        pixels = torch.stack([_to_tensor(image) for image in images]).to(self.device, vae.dtype)
        with torch.no_grad():
            # The distribution's mean: deterministic, so cached latents are the same in every run.
            return vae.encode(pixels).latent_dist.mean.float() * vae.config.scaling_factor

    def encode_text(self, captions: list[str]) -> torch.Tensor:
        tokenizer = self.pipe.tokenizer
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids.to(self.device)
        return self.pipe.text_encoder(ids)[0]

    def class_images(self) -> list[Image.Image]:
        """Prior preservation: pictures of the class ("a photo of a man") from the base model, kept in
        the folder so a resumed run reuses them."""
        folder = self.out_dir / "class_images"
        folder.mkdir(exist_ok=True)
        wanted = self.options.class_images
        images = []
        for index in range(wanted):
            path = folder / f"{index:03d}.png"
            if not path.exists():
                self._check_cancel(0)
                with torch.no_grad(), self._autocast():
                    picture = self.pipe(
                        f"a photo of a {self.class_word}", num_inference_steps=self.options.sample_steps,
                        guidance_scale=self.options.sample_guidance, width=self.options.resolution,
                        height=self.options.resolution, generator=torch.Generator("cpu").manual_seed(1000 + index),
                        callback_on_step_end=self._cancel_in_pipeline,
                    ).images[0]
                _save_image_atomically(picture, path)
                self.progress(TrainingProgress("class images", index + 1, wanted))
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        return images

    # the loop

    def execute(self) -> TrainingResult:
        options, examples = self.options, self.prepared.examples
        class_images = self.class_images() if options.prior_preservation else []
        self.add_adapters()
        optimizer, optimizer_name = self.make_optimizer()
        scaler = torch.amp.GradScaler("cuda") if self.mixed == "fp16" else None
        start = self.restore(optimizer, scaler)

        self.progress(TrainingProgress("caching", start, self.total))
        captions = [e.caption for e in examples]
        instance_images = [e.image for e in examples]
        cached_latents = self.encode_pixels(instance_images) if options.cache else None
        class_latents = self.encode_pixels(class_images) if class_images and options.cache else None
        text_cached = options.cache and not options.train_text_encoder
        with torch.no_grad():
            cached_text = self.encode_text(captions) if text_cached else None
            cached_class_text = (self.encode_text([f"a photo of a {self.class_word}"]) if text_cached and class_images
                                 else None)

        for module in self.trained_modules():
            module.train()
        timer = StepTimer()
        timer.start(start, time.monotonic())
        checkpoints = self.checkpoints()
        for step in range(start + 1, self.total + 1):
            self._check_cancel(step - 1)
            indices = _batch_indices(step, options.batch_size, len(examples), options.seed)
            latents = (cached_latents[indices] if cached_latents is not None
                       else self.encode_pixels([instance_images[i] for i in indices]))
            text = (cached_text[indices] if cached_text is not None
                    else self.encode_text([captions[i] for i in indices]))
            if class_images:
                class_indices = _batch_indices(step, options.batch_size, len(class_images), options.seed + 1)
                latents = torch.cat([latents, class_latents[class_indices] if class_latents is not None
                                     else self.encode_pixels([class_images[i] for i in class_indices])])
                class_text = (cached_class_text if cached_class_text is not None
                              else self.encode_text([f"a photo of a {self.class_word}"]))
                text = torch.cat([text, class_text.expand(len(class_indices), -1, -1)])
            with self._autocast():
                loss = self.loss(latents, text, prior=bool(class_images))
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise EngineInputError(f"Training diverged at step {step} (the loss is {value}); lower the learning rate.")
            self.losses.append(value)
            timer.step_done(step, time.monotonic())
            self.progress(TrainingProgress("training", step, self.total, _recent_mean(self.losses),
                                           timer.seconds_left(step, self.total)))
            if step % options.checkpoint_every == 0 or step == self.total:
                checkpoints = [c for c in checkpoints if c.step != step]
                checkpoints.append(self.save_checkpoint(step, optimizer, optimizer_name, scaler))
                self.prune_states(checkpoints)
                self.progress(TrainingProgress("checkpoint", step, self.total, _recent_mean(self.losses),
                                               checkpoint=checkpoints[-1]))
        return self.finish(checkpoints, optimizer_name)

    def loss(self, latents, text, *, prior: bool):
        noise = torch.randn(latents.shape, generator=self.generator).to(self.device)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (latents.shape[0],),
                                  generator=self.generator).to(self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        unet_dtype = self.pipe.unet.dtype
        prediction = self.pipe.unet(noisy.to(unet_dtype), timesteps, text.to(unet_dtype)).sample.float()
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        if prior:  # the second half of the batch is the class pictures
            prediction, prior_prediction = prediction.chunk(2)
            target, prior_target = target.chunk(2)
            timesteps = timesteps.chunk(2)[0]
            prior_loss = F.mse_loss(prior_prediction, prior_target)
        per_sample = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
        if self.options.snr_gamma:
            from diffusers.training_utils import compute_snr

            snr = compute_snr(self.noise_scheduler, timesteps)
            weights = torch.clamp(snr, max=self.options.snr_gamma) / snr
            if self.noise_scheduler.config.prediction_type == "v_prediction":
                weights = torch.clamp(snr, max=self.options.snr_gamma) / (snr + 1)
            per_sample = per_sample * weights
        loss = per_sample.mean()
        if prior:
            loss = loss + self.options.prior_loss_weight * prior_loss
        return loss

    # checkpoints and resume

    def lora_weights(self) -> tuple[dict, dict | None]:
        from peft import get_peft_model_state_dict

        unet = get_peft_model_state_dict(self.pipe.unet, adapter_name=ADAPTER_NAME)
        text = (get_peft_model_state_dict(self.pipe.text_encoder, adapter_name=ADAPTER_NAME)
                if self.options.train_text_encoder else None)
        return unet, text

    def metadata(self, step: int) -> dict[str, str]:
        report = self.prepared.report
        return {
            "lifebook.subject_token": self.token, "lifebook.class_word": self.class_word,
            "lifebook.base_model": self.trainer.model_name, "lifebook.base_model_identity": self.trainer.identity,
            "lifebook.rank": str(self.options.rank), "lifebook.alpha": str(self.options.alpha),
            "lifebook.steps": str(step), "lifebook.total_steps": str(self.total),
            "lifebook.resolution": str(self.options.resolution),
            "lifebook.text_encoder": str(self.options.train_text_encoder).lower(),
            "lifebook.photo_hashes": json.dumps([p.content_hash for p in report.photos if p.used]),
            "lifebook.trainer_version": str(TRAINER_VERSION),
        }

    def save_checkpoint(self, step, optimizer, optimizer_name, scaler) -> Checkpoint:
        """Written into a `.partial` folder and renamed, so a crash never leaves half a checkpoint."""
        self.progress(TrainingProgress("saving checkpoint", step, self.total, _recent_mean(self.losses)))
        final = self.out_dir / "checkpoints" / f"step-{step:06d}"
        partial = final.with_name(final.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "samples").mkdir(parents=True)
        unet_lora, text_lora = self.lora_weights()
        save_diffusers_lora(unet_lora, partial / "lora.safetensors", rank=self.options.rank, alpha=self.options.alpha,
                            target_modules=UNET_TARGETS, metadata=self.metadata(step),
                            text_encoder_lora=text_lora, text_target_modules=TEXT_TARGETS)
        # Sample pictures take a while (minutes on a busy GPU): the page says so instead of a frozen step.
        self.progress(TrainingProgress("making samples", step, self.total, _recent_mean(self.losses)))
        samples = self.render_samples(partial / "samples")
        state = {
            "step": step, "optimizer_name": optimizer_name, "optimizer": optimizer.state_dict(),
            "unet_lora": {k: v.detach().float().cpu() for k, v in unet_lora.items()},
            "text_lora": {k: v.detach().float().cpu() for k, v in (text_lora or {}).items()},
            "generator": self.generator.get_state(), "losses": self.earlier_losses + self.losses,
            "scaler": scaler.state_dict() if scaler else None,
        }
        torch.save(state, partial / "state.pt")
        _write_json(partial / "checkpoint.json", {
            "step": step, "total": self.total, "loss": _recent_mean(self.losses),
            "samples": [str(p.relative_to(partial)) for p in samples],
            "prompts": [p.format(subject=f"{self.token} {self.class_word}") for p in VALIDATION_PROMPTS],
            "seeds": list(SAMPLE_SEEDS),
        })
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        return Checkpoint.read(final)

    def render_samples(self, folder: Path) -> list[Path]:
        subject = f"{self.token} {self.class_word}"
        side = self.options.sample_resolution or self.options.resolution
        paths = []
        for module in self.trained_modules():
            module.eval()
        try:
            for index, (prompt, seed) in enumerate(zip(VALIDATION_PROMPTS, SAMPLE_SEEDS), start=1):
                with torch.no_grad(), self._autocast():
                    picture = self.pipe(
                        prompt.format(subject=subject), num_inference_steps=self.options.sample_steps,
                        guidance_scale=self.options.sample_guidance, width=side, height=side, generator=torch.Generator("cpu").manual_seed(seed),
                        callback_on_step_end=self._cancel_in_pipeline,
                    ).images[0]
                path = folder / f"sample-{index}.png"
                picture.save(path)
                paths.append(path)
        finally:
            for module in self.trained_modules():
                module.train()
        return paths

    def checkpoints(self) -> list[Checkpoint]:
        folders = sorted(p for p in (self.out_dir / "checkpoints").glob("step-*")
                         if p.is_dir() and not p.name.endswith(".partial") and (p / "checkpoint.json").exists())
        return [Checkpoint.read(folder) for folder in folders]

    def restore(self, optimizer, scaler) -> int:
        """Continue from the newest checkpoint that has a readable training state; 0 if none."""
        from peft import set_peft_model_state_dict

        for checkpoint in reversed(self.checkpoints()):
            if not checkpoint.has_state or checkpoint.step > self.total:
                continue
            try:
                state = torch.load(checkpoint.folder / "state.pt", map_location="cpu", weights_only=True)
            except Exception:  # a state cut short by a crash: fall back to the one before
                continue
            set_peft_model_state_dict(self.pipe.unet, state["unet_lora"], adapter_name=ADAPTER_NAME)
            if self.options.train_text_encoder:
                set_peft_model_state_dict(self.pipe.text_encoder, state["text_lora"], adapter_name=ADAPTER_NAME)
            optimizer.load_state_dict(state["optimizer"])
            if scaler and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            self.generator.set_state(state["generator"])
            self.earlier_losses = list(state["losses"])
            self.resumed_from = state["step"]
            return state["step"]
        return 0

    def prune_states(self, checkpoints: list[Checkpoint]) -> None:
        with_state = [c for c in checkpoints if (c.folder / "state.pt").exists()]
        for checkpoint in with_state[:-self.options.keep_states]:
            (checkpoint.folder / "state.pt").unlink(missing_ok=True)
            checkpoint.has_state = False

    def finish(self, checkpoints: list[Checkpoint], optimizer_name: str) -> TrainingResult:
        last = max((c for c in checkpoints if c.step <= self.total), key=lambda c: c.step)
        adapter = self.out_dir / "lora.safetensors"
        _copy_atomically(last.lora_path, adapter)
        kohya = None
        if self.options.export_kohya:
            unet_lora, text_lora = self.lora_weights()
            kohya = save_kohya_lora(unet_lora, self.options.alpha, self.out_dir / "lora-kohya.safetensors",
                                    metadata=self.metadata(last.step), text_encoder_lora=text_lora)
        metadata = read_metadata(adapter)
        _write_json(self.out_dir / "result.json", {
            "adapter": adapter.name, "size_bytes": adapter.stat().st_size, "steps": last.step,
            "optimizer": optimizer_name, "mixed_precision": self.mixed, "resumed_from": self.resumed_from,
            "checkpoints": [c.step for c in checkpoints],
        })
        return TrainingResult(adapter, kohya, adapter.stat().st_size, last.step, checkpoints, self.prepared,
                              self.resumed_from, self.losses, metadata)

    # helpers

    def _check_cancel(self, step: int) -> None:
        if self.cancel():
            raise Cancelled(f"Training cancelled after step {step}.")

    def _cancel_in_pipeline(self, _pipe, step_index, _timestep, _tensors):
        if self.cancel():  # samples and class pictures take many steps: stop inside them too
            raise Cancelled("Training cancelled while drawing pictures.")
        return {}

    def _autocast(self):
        if self.mixed in ("fp16", "bf16"):
            return torch.autocast(self.device.type, dtype=torch.float16 if self.mixed == "fp16" else torch.bfloat16)
        return torch.autocast(self.device.type, enabled=False)


def _mixed_precision(device: torch.device, precision: str | None) -> str:
    """fp16/bf16 mixed precision on CUDA (bf16 when the GPU has it: no loss scaling needed);
    fp32 elsewhere, where half types are slow or unsupported for training."""
    if device.type != "cuda" or precision == "fp32":
        return "no"
    if precision is None:
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return precision


def _has_bitsandbytes() -> bool:
    try:
        import bitsandbytes  # noqa: F401
    except Exception:  # not installed, or installed without a usable CUDA build
        return False
    return True


def _batch_indices(step: int, batch_size: int, count: int, seed: int) -> list[int]:
    """Which photos step `step` trains on: every photo once per epoch, in an order fixed by the seed
    and the epoch, so a resumed run sees exactly the photos the uninterrupted run would have."""
    indices = []
    for sample in range((step - 1) * batch_size, step * batch_size):
        epoch, position = divmod(sample, count)
        order = torch.randperm(count, generator=torch.Generator("cpu").manual_seed(seed * 100_003 + epoch))
        indices.append(int(order[position]))
    return indices


def _recent_mean(losses: list[float], window: int = 20) -> float | None:
    recent = losses[-window:]
    return sum(recent) / len(recent) if recent else None


def _to_tensor(image: Image.Image) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)


def _write_json(path: Path, data) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2))
    os.replace(temporary, path)


def _save_image_atomically(image: Image.Image, path: Path) -> None:
    temporary = path.with_name(path.stem + ".tmp" + path.suffix)
    image.save(temporary)
    os.replace(temporary, path)


def _copy_atomically(source: Path, target: Path) -> None:
    temporary = target.with_name(target.name + ".tmp")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
