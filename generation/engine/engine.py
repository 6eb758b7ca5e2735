"""The Engine: one per process, base model loaded once, adapters switched per call.

Every operation validates its input first (EngineInputError with a precise message), sets
exactly the adapters the call asks for, runs a diffusers pipeline, and returns the images with
the exact parameters and seeds, so any picture can be made again.
"""

from __future__ import annotations

import random
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from . import checks
from . import images as im
from .checks import MASK_MODES, MASKED_CONTENT  # noqa: F401  (part of this module's API)
from .errors import Cancelled, EngineError, EngineInputError
from .models import load_pipeline, model_identity, resolve_source
from .options import Adapter, EngineOptions, Region  # noqa: F401  (part of this module's API)
from .prompts import chunk_count, encode_prompts
from .routing import Group, routed

ENGINE_VERSION = 2  # 2: compose draws regions in one denoising loop, with the face pass
ADAPTER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# The face pass (ADetailer's idea): a found face is grown by this share of its size on every side, so the
# repaint takes in the hairline and chin, and blended in over FACE_MASK_BLUR pixels.
FACE_GROW = 0.2
FACE_MASK_BLUR = 4
FACE_PADDING = 32


@dataclass(frozen=True)
class Progress:
    stage: str
    step: int  # steps done so far, across all stages
    total: int
    preview: Image.Image  # cheap latent approximation, 1/8 of the output size


@dataclass
class Result:
    images: list[Image.Image]
    seeds: list[int]
    parameters: dict
    is_demo_model: bool
    notes: list[str] = field(default_factory=list)
    intermediates: list[tuple[str, Image.Image]] = field(default_factory=list)
    stages: list[dict] = field(default_factory=list)  # what ran, with the adapters that were really active

    @property
    def image(self) -> Image.Image:
        return self.images[0]

    @property
    def seed(self) -> int:
        return self.seeds[0]


ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]


def pick_device(device: str | None, precision: str | None) -> tuple[torch.device, torch.dtype]:
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    kind = torch.device(device).type
    if precision is None:
        precision = "fp32" if kind == "cpu" else "fp16"
    dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
    if precision not in dtypes:
        raise EngineInputError(f"Precision must be one of {', '.join(dtypes)}, not {precision!r}.")
    if kind == "cpu" and precision == "fp16":
        raise EngineInputError("fp16 is not supported on the CPU; use fp32 or bf16.")
    return torch.device(device), dtypes[precision]


class Engine:
    """Load once per process; then call txt2img / img2img / inpaint / compose as often as needed."""

    def __init__(self, options: EngineOptions | None = None):
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

        self.options = options or EngineOptions.from_env()
        self.device, self.dtype = pick_device(self.options.device, self.options.precision)
        path, self.is_demo_model = resolve_source(self.options.base_model, Path(self.options.models_dir))
        self.model_name = self.options.base_model if self.options.base_model in ("tiny", "sd15-random") else path.name
        self.model_identity = model_identity(path)  # adapters record the one they were trained on
        started = time.perf_counter()
        self.text_pipe = load_pipeline(path, self.dtype, self.options.base_model_config)
        # The other pipelines share the same modules: nothing is loaded twice.
        self.image_pipe = StableDiffusionImg2ImgPipeline.from_pipe(self.text_pipe)
        self.inpaint_pipe = StableDiffusionInpaintPipeline.from_pipe(self.text_pipe)
        self.pipelines = (self.text_pipe, self.image_pipe, self.inpaint_pipe)
        for pipe in self.pipelines:
            pipe.set_progress_bar_config(disable=True)
        self._savers_on = False
        offload = self.options.cpu_offload and self.device.type == "cuda"
        if not offload:
            self.text_pipe.to(self.device)
        self._enable_savers(slicing=self.options.attention_slicing, tiling=self.options.vae_tiling, offload=offload)
        self.load_seconds = time.perf_counter() - started
        self._adapters: OrderedDict[str, Path] = OrderedDict()
        self.vae_scale = self.text_pipe.vae_scale_factor

    # --- adapters -------------------------------------------------------------

    @property
    def resident_adapters(self) -> list[str]:
        """Loaded adapter ids, least recently used first."""
        return list(self._adapters)

    def load_adapter(self, adapter_id: str, path: str | Path) -> None:
        """Load a LoRA file (diffusers or kohya format) under `adapter_id`, keeping at most N resident."""
        self._ensure_loaded(Adapter(adapter_id, path=path), keep=())

    def unload_adapter(self, adapter_id: str) -> None:
        if adapter_id not in self._adapters:
            raise EngineInputError(f"Adapter {adapter_id!r} is not loaded.")
        self.text_pipe.delete_adapters(adapter_id)
        del self._adapters[adapter_id]

    def _ensure_loaded(self, adapter: Adapter, keep) -> None:
        if not ADAPTER_ID.match(str(adapter.id)):
            raise EngineInputError(f"Adapter id {adapter.id!r}: use 1-64 letters, digits, '-' or '_'.")
        if adapter.id in self._adapters:
            if adapter.path is None or Path(adapter.path) == self._adapters[adapter.id]:
                self._adapters.move_to_end(adapter.id)
                return
            self.unload_adapter(adapter.id)  # same id, new file (e.g. another checkpoint chosen)
        if adapter.path is None:
            raise EngineInputError(f"Unknown adapter {adapter.id!r}: it is not loaded and no file was given.")
        path = Path(adapter.path)
        if not path.is_file():
            raise EngineInputError(f"Adapter {adapter.id!r}: there is no file at {path}.")
        self._refuse_other_base_model(adapter.id, path)
        while len(self._adapters) >= self.options.max_resident_adapters:
            oldest = next((a for a in self._adapters if a not in keep), None)
            if oldest is None:
                break
            self.unload_adapter(oldest)
        try:
            self.text_pipe.load_lora_weights(str(path), adapter_name=adapter.id)
        except Exception as exc:  # peft/diffusers raise many kinds; the caller needs one clear message
            try:
                self.text_pipe.delete_adapters(adapter.id)
            except Exception:
                pass
            raise EngineInputError(
                f"Adapter {adapter.id!r}: {path.name} is not a LoRA this base model can use ({exc})."
            ) from exc
        self._adapters[adapter.id] = path

    def _refuse_other_base_model(self, adapter_id: str, path: Path) -> None:
        """An adapter only suits the weights it was trained against; ours record them (kohya files
        from other tools say nothing, and are tried as they are)."""
        from .lora_formats import read_metadata

        try:
            metadata = read_metadata(path) if path.suffix.lower() == ".safetensors" else {}
        except Exception:
            return  # unreadable: load_lora_weights says so in its own message
        trained_on = metadata.get("lifebook.base_model_identity")
        if trained_on and trained_on != self.model_identity:
            raise EngineInputError(
                f"Adapter {adapter_id!r} was trained on another base model "
                f"({metadata.get('lifebook.base_model', trained_on)}), not on {self.model_name}; "
                "train it again on this one."
            )

    def activate_adapters(self, adapters) -> dict[str, float]:
        """Make exactly these adapters active, at these weights (loading any not resident); every
        operation calls this first. Returns {id: weight}; raises if the UNet reports anything else."""
        adapters = list(adapters)
        ids = [a.id for a in adapters]
        if len(set(ids)) != len(ids):
            raise EngineInputError(f"An adapter is listed twice: {ids}.")
        for adapter in adapters:
            if not isinstance(adapter.weight, (int, float)) or not -2.0 <= adapter.weight <= 2.0:
                raise EngineInputError(f"Adapter {adapter.id!r}: weight must be between -2 and 2, not {adapter.weight!r}.")
        for adapter in adapters:
            self._ensure_loaded(adapter, keep=ids)
        layer = self._first_lora_layer()
        if adapters:
            if layer is not None and layer.disable_adapters:  # enable_lora walks every layer: only when needed
                self.text_pipe.enable_lora()
            self.text_pipe.set_adapters(ids, adapter_weights=[float(a.weight) for a in adapters])
        elif layer is not None and not layer.disable_adapters:
            self.text_pipe.disable_lora()
        active = self.active_adapters()
        if set(active) != set(ids):  # never generate with other adapters than asked
            raise EngineError(f"Asked for adapters {ids} but the model has {sorted(active)} active.")
        return {a.id: float(a.weight) for a in adapters}

    def active_adapters(self) -> list[str]:
        """The adapters the UNet's LoRA layers will actually apply now (read from the layers)."""
        layer = self._first_lora_layer()
        if layer is None or layer.disable_adapters:
            return []
        return sorted(a for a in layer.active_adapters if a in self._adapters)

    def _first_lora_layer(self):
        from peft.tuners.tuners_utils import BaseTunerLayer

        return next((m for m in self.text_pipe.unet.modules() if isinstance(m, BaseTunerLayer)), None)

    # --- operations -------------------------------------------------------------

    def txt2img(self, prompt: str, *, negative_prompt: str = "", steps: int = 20, guidance: float = 8.0,
                width: int = 512, height: int = 512, seed: int | None = None, adapters=(),
                num_images: int = 1, faces=(), face_strength: float = 0.4,
                progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> Result:
        """Text to picture. Defaults are the thesis's: 20 steps at CFG 8. `faces` (Regions): after the
        picture, the face pass repaints each one's face, found inside its box, with only its adapter."""
        checks.txt2img(prompt, negative_prompt=negative_prompt, steps=steps, guidance=guidance, width=width,
                       height=height, seed=seed, num_images=num_images, tokenizer=self.text_pipe.tokenizer)
        checks.faces(faces, steps=steps, strength=face_strength, width=width, height=height)
        seeds = _seeds(seed, num_images)
        total = steps + num_images * len(faces) * _face_denoise(steps, face_strength)
        active = self.activate_adapters(adapters)
        call = dict(num_inference_steps=steps, guidance_scale=guidance, width=width, height=height)
        images, tokens, notes = self._run(self.text_pipe, "picture", prompt, negative_prompt, seeds, call,
                                          total=total, progress=progress, cancel=cancel)
        parameters = self._record("txt2img", prompt, negative_prompt, seeds, active, tokens,
                                  steps=steps, guidance=guidance, width=width, height=height)
        result = Result(images, seeds, parameters, self.is_demo_model, notes,
                        stages=[{"stage": "picture", "active_adapters": self.active_adapters()}])
        return self._faces_after(result, faces, negative_prompt=negative_prompt, guidance=guidance, steps=steps,
                                 strength=face_strength, offset=steps, total=total, progress=progress, cancel=cancel)

    def img2img(self, image: Image.Image, prompt: str, *, strength: float = 0.75, negative_prompt: str = "",
                steps: int = 30, guidance: float = 8.5, width: int | None = None, height: int | None = None,
                seed: int | None = None, adapters=(), num_images: int = 1, faces=(), face_strength: float = 0.4,
                progress: ProgressCallback | None = None, cancel: CancelCheck | None = None) -> Result:
        """A sketch or any picture to a picture. Defaults are seed 000's: strength 0.75, 30 steps, CFG 8.5.
        `faces`: as for txt2img."""
        width, height = checks.img2img(image.size, prompt, strength=strength, negative_prompt=negative_prompt,
                                       steps=steps, guidance=guidance, width=width, height=height, seed=seed,
                                       num_images=num_images, tokenizer=self.text_pipe.tokenizer)
        checks.faces(faces, steps=steps, strength=face_strength, width=width, height=height)
        seeds = _seeds(seed, num_images)
        denoise = checks.denoise_steps(steps, strength)
        total = denoise + num_images * len(faces) * _face_denoise(steps, face_strength)
        active = self.activate_adapters(adapters)
        source = image.convert("RGB").resize((width, height), Image.LANCZOS)
        call = dict(image=source, strength=strength, num_inference_steps=steps, guidance_scale=guidance)
        images, tokens, notes = self._run(self.image_pipe, "picture", prompt, negative_prompt, seeds, call,
                                          total=total, progress=progress, cancel=cancel)
        parameters = self._record("img2img", prompt, negative_prompt, seeds, active, tokens, steps=steps,
                                  guidance=guidance, width=width, height=height, strength=strength)
        result = Result(images, seeds, parameters, self.is_demo_model, notes,
                        stages=[{"stage": "picture", "active_adapters": self.active_adapters()}])
        return self._faces_after(result, faces, negative_prompt=negative_prompt, guidance=guidance, steps=steps,
                                 strength=face_strength, offset=denoise, total=total, progress=progress, cancel=cancel)

    def inpaint(self, image: Image.Image, mask: Image.Image, prompt: str, *, mask_mode: str = "masked",
                masked_content: str = "original", strength: float = 0.75, mask_blur: int = 4,
                only_masked: bool = False, padding: int = 32, negative_prompt: str = "", steps: int = 30,
                guidance: float = 7.5, width: int | None = None, height: int | None = None,
                seed: int | None = None, adapters=(), num_images: int = 1,
                progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
                _stage: str = "repaint", _offset: int = 0, _total: int | None = None) -> Result:
        """Repaint the masked part (or everything but it), A1111-style; see docs/ARCHITECTURE.md."""
        plan = checks.inpaint(image.size, mask, prompt, mask_mode=mask_mode, masked_content=masked_content,
                              strength=strength, mask_blur=mask_blur, only_masked=only_masked, padding=padding,
                              negative_prompt=negative_prompt, steps=steps, guidance=guidance, width=width,
                              height=height, seed=seed, num_images=num_images, tokenizer=self.text_pipe.tokenizer)
        original = image.convert("RGB")
        hard_mask, soft_mask, width, height, box = plan.hard_mask, plan.soft_mask, plan.width, plan.height, plan.box
        work_image = original.crop(box).resize((width, height), Image.LANCZOS)
        work_hard = hard_mask.crop(box).resize((width, height), Image.NEAREST)
        work_soft = soft_mask.crop(box).resize((width, height), Image.LANCZOS)
        if masked_content == "fill":
            work_image = im.fill_masked(work_image, work_hard)

        seeds = _seeds(seed, num_images)
        active = self.activate_adapters(adapters)
        image_latents, masked_latents = self._inpaint_latents(work_image, work_hard, masked_content, seeds)
        call = dict(image=image_latents, mask_image=work_soft, masked_image_latents=masked_latents,
                    strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                    width=width, height=height)
        total = _total if _total is not None else checks.denoise_steps(steps, strength)
        generated, tokens, notes = self._run(self.inpaint_pipe, _stage, prompt, negative_prompt, seeds, call,
                                             total=total, progress=progress, cancel=cancel, offset=_offset)
        results = []
        for picture in generated:
            patch = picture.resize((box[2] - box[0], box[3] - box[1]), Image.LANCZOS)
            pasted = original.copy()
            pasted.paste(patch, box[:2])
            # Outside the (blurred) mask the original pixels come back exactly.
            results.append(im.composite(original, pasted, soft_mask))
        parameters = self._record(
            "inpaint", prompt, negative_prompt, seeds, active, tokens, steps=steps, guidance=guidance,
            width=width, height=height, strength=strength, mask_mode=mask_mode, masked_content=masked_content,
            mask_blur=mask_blur, only_masked=only_masked, padding=padding, crop_box=list(box),
        )
        return Result(results, seeds, parameters, self.is_demo_model, notes,
                      stages=[{"stage": _stage, "active_adapters": self.active_adapters()}])

    def compose(self, scene_prompt: str, regions, *, scene_adapters=(), negative_prompt: str = "",
                steps: int = 30, guidance: float = 7.5, width: int | None = None, height: int | None = None,
                seed: int | None = None, layout_fraction: float = 0.25, feather: int | None = None,
                face_pass: bool = True, face_strength: float = 0.4, image: Image.Image | None = None,
                strength: float = 0.75, progress: ProgressCallback | None = None,
                cancel: CancelCheck | None = None) -> Result:
        """Several subjects in one picture, each with only its own likeness (see docs/ARCHITECTURE.md).

        1. Layout: the first `layout_fraction` of the steps run with no adapter at all, each region worded by
           its class ("a man"), so the composition forms without any likeness.
        2. Regions: every step is one batched UNet call with a background branch (the scene's prompt and
           adapters) and one branch per region (its prompt, its adapter alone), each under guidance; the noise
           predictions are blended through feathered region masks.
        3. The face pass: each region marked `face` has its face found and repainted alone.
        `image` starts from a sketch or picture instead of noise, as img2img does (with `strength`). The size
        is width × height, else the image's own, else 512 × 512.
        """
        regions, scene_adapters = list(regions), list(scene_adapters)
        plan = checks.compose(scene_prompt, regions, scene_adapter_ids=[a.id for a in scene_adapters],
                              negative_prompt=negative_prompt, steps=steps, guidance=guidance, width=width,
                              height=height, seed=seed, layout_fraction=layout_fraction, feather=feather,
                              face_pass=face_pass, face_strength=face_strength, strength=strength,
                              image_size=image.size if image is not None else None, tokenizer=self.text_pipe.tokenizer)
        width, height = plan.width, plan.height
        (seed,) = _seeds(seed, 1)
        faces = [r for r in regions if r.face] if face_pass else []
        total = plan.denoise_steps + len(faces) * _face_denoise(steps, face_strength)
        branches = [("background", scene_prompt, scene_prompt, scene_adapters)]
        branches += [(r.adapter.id, r.prompt, r.layout_prompt or r.prompt, [r.adapter]) for r in regions]
        self.activate_adapters(scene_adapters + [r.adapter for r in regions])  # checks and loads them all
        layout_embeds, region_embeds, tokens = self._branch_embeddings(branches, negative_prompt)
        masks = im.region_masks([r.box for r in regions], (width, height), plan.feather, self.vae_scale)
        layout_groups = [Group(2 * i, 2 * i + 2, {}) for i in range(len(branches))]
        region_groups = [Group(2 * i, 2 * i + 2, {a.id: float(a.weight) for a in adapters})
                         for i, (_, _, _, adapters) in enumerate(branches)]

        def loop():
            return self._regional_loop(layout_embeds, region_embeds, layout_groups, region_groups, masks,
                                       plan=plan, steps=steps, guidance=guidance, seed=seed, image=image,
                                       total=total, progress=progress, cancel=cancel)

        picture, notes = self._out_of_memory_retry(loop)
        stages = [
            {"stage": "layout", "steps": plan.layout_steps,
             "branches": [{"name": name, "prompt": layout, "active_adapters": sorted(group.applied)}
                          for (name, _, layout, _), group in zip(branches, layout_groups)]},
            {"stage": "regions", "steps": plan.denoise_steps - plan.layout_steps,
             "branches": [{"name": name, "prompt": prompt, "active_adapters": sorted(group.applied),
                           "box": list(region.box) if region else None}
                          for (name, prompt, _, _), group, region in zip(branches, region_groups, [None] + regions)]},
        ]
        parameters = self._record(
            "compose", scene_prompt, negative_prompt, [seed], {a.id: float(a.weight) for a in scene_adapters}, tokens,
            steps=steps, guidance=guidance, width=width, height=height, layout_fraction=layout_fraction,
            layout_steps=plan.layout_steps, feather=plan.feather, face_pass=face_pass, face_strength=face_strength,
            regions=[{"adapter": r.adapter.id, "weight": float(r.adapter.weight), "prompt": r.prompt,
                      "layout_prompt": r.layout_prompt or r.prompt, "box": list(r.box), "face": r.face}
                     for r in regions],
            **({"strength": strength} if image is not None else {}),
        )
        result = Result([picture], [seed], parameters, self.is_demo_model, notes,
                        [("before the face pass", picture)], stages)
        return self._faces_after(result, faces, negative_prompt=negative_prompt, guidance=guidance, steps=steps,
                                 strength=face_strength, offset=plan.denoise_steps, total=total, progress=progress,
                                 cancel=cancel)

    def face_pass(self, image: Image.Image, regions, *, negative_prompt: str = "", guidance: float = 7.5,
                  seed: int = 0, strength: float = 0.4, steps: int = 20, progress: ProgressCallback | None = None,
                  cancel: CancelCheck | None = None, _offset: int = 0, _total: int | None = None) -> Result:
        """ADetailer's idea: for each region, the largest face found inside its box is repainted alone,
        "only masked" at the picture's full size, with only that region's adapter and prompt. Pixels outside
        the grown face box (and its FACE_MASK_BLUR edge) stay exactly as they were. No face: a note."""
        from .faces import find_faces

        regions = list(regions)
        picture = image.convert("RGB")
        width, height = picture.size
        checks.faces(regions, steps=steps, strength=strength, width=width, height=height)
        steps = checks.face_steps(steps, strength)
        per_face = checks.denoise_steps(steps, strength)
        total = _total if _total is not None else per_face * len(regions)
        found, stages, notes = [], [], []
        for index, region in enumerate(regions):
            left, top, right, bottom = region.box
            hits = find_faces(picture.crop(region.box))
            if not hits:
                found.append({"adapter": region.adapter.id, "face": None})
                notes.append(f"No face was found for {region.adapter.id}; it was left as drawn.")
                continue
            face = _grown((hits[0][0] + left, hits[0][1] + top, hits[0][2] + left, hits[0][3] + top),
                          FACE_GROW, (width, height))
            stage = f"face {index + 1}: {region.adapter.id}"
            repainted = self.inpaint(
                picture, im.box_mask((width, height), face), region.prompt, negative_prompt=negative_prompt,
                strength=strength, mask_blur=FACE_MASK_BLUR, only_masked=True, padding=FACE_PADDING, steps=steps,
                guidance=guidance, width=_eighths(width), height=_eighths(height), seed=(seed + 1 + index) % 2**32,
                adapters=[region.adapter], progress=progress, cancel=cancel, _stage=stage,
                _offset=_offset + index * per_face, _total=total)
            picture = repainted.image
            notes += repainted.notes
            found.append({"adapter": region.adapter.id, "face": list(face)})
            stages.append({"stage": stage, "active_adapters": repainted.stages[0]["active_adapters"],
                           "box": list(face), "prompt": region.prompt})
        parameters = dict(operation="face_pass", faces=found, face_strength=strength, face_steps=steps,
                          face_mask_blur=FACE_MASK_BLUR)
        return Result([picture], [seed], parameters, self.is_demo_model, notes, stages=stages)

    # --- internals -------------------------------------------------------------

    def _faces_after(self, result: Result, faces, *, negative_prompt, guidance, steps, strength, offset, total,
                     progress, cancel) -> Result:
        """The face pass over each of `result`'s pictures, recorded in its parameters and stages."""
        faces = list(faces)
        if not faces:
            return result
        per_picture = len(faces) * _face_denoise(steps, strength)
        found = []
        for index, (picture, seed) in enumerate(zip(result.images, result.seeds)):
            passed = self.face_pass(picture, faces, negative_prompt=negative_prompt, guidance=guidance, seed=seed,
                                    strength=strength, steps=steps, progress=progress, cancel=cancel,
                                    _offset=offset + index * per_picture, _total=total)
            result.images[index] = passed.image
            result.notes += [note for note in passed.notes if note not in result.notes]
            result.stages += passed.stages
            found.append(passed.parameters["faces"])
        result.parameters.update(face_pass=True, face_strength=strength,
                                 faces=found[0] if len(found) == 1 else found)
        return result

    def _branch_embeddings(self, branches, negative_prompt):
        """Each branch's prompt (and its layout wording) encoded with that branch's adapters active in the text
        encoder (an adapter may have trained it), padded to one length so that the branches share a batch.
        Returns (layout, regions) embeddings, each (2 x branches, tokens, dim) as [negative, positive] per branch,
        and the background prompt's token count."""
        pipe = self.text_pipe
        device = pipe._execution_device
        chunks = max(chunk_count(pipe.tokenizer, text, negative_prompt)
                     for _, prompt, layout, _ in branches for text in (prompt, layout))
        layout, regions, tokens = [], [], None
        self.activate_adapters([])
        for _, _, text, _ in branches:
            positive, negative, _ = encode_prompts(pipe.tokenizer, pipe.text_encoder, text, negative_prompt, device,
                                                   chunks)
            layout += [negative, positive]
        for _, text, _, adapters in branches:
            self.activate_adapters(adapters)
            positive, negative, count = encode_prompts(pipe.tokenizer, pipe.text_encoder, text, negative_prompt,
                                                       device, chunks)
            regions += [negative, positive]
            tokens = count if tokens is None else tokens
        self.activate_adapters([])
        return torch.cat(layout), torch.cat(regions), tokens

    def _regional_loop(self, layout_embeds, region_embeds, layout_groups, region_groups, masks, *, plan, steps,
                       guidance, seed, image, total, progress, cancel):
        """The denoising loop of compose: one UNet call a step for all branches, blended through the masks."""
        pipe = self.text_pipe
        unet, vae, device = pipe.unet, pipe.vae, pipe._execution_device
        scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)  # its own state, not the pipeline's
        scheduler.set_timesteps(steps, device=device)
        timesteps = scheduler.timesteps
        shape = (1, unet.config.in_channels, plan.height // self.vae_scale, plan.width // self.vae_scale)
        noise = torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).to(device, unet.dtype)
        with torch.no_grad():
            if image is None:
                latents = noise * scheduler.init_noise_sigma
            else:  # as img2img: skip the first (1 - strength) of the schedule and noise the picture to where it starts
                start = (steps - plan.denoise_steps) * scheduler.order
                timesteps = timesteps[start:]
                if hasattr(scheduler, "set_begin_index"):
                    scheduler.set_begin_index(start)
                source = image.convert("RGB").resize((plan.width, plan.height), Image.LANCZOS)
                pixels = pipe.image_processor.preprocess(source).to(device=device, dtype=vae.dtype)
                latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
                latents = scheduler.add_noise(latents.to(unet.dtype), noise, timesteps[:1])
            masks = masks.to(device=device, dtype=unet.dtype)
            covered = masks.sum(0, keepdim=True)
            masks = masks / covered.clamp(min=1.0)  # where regions overlap, they share the pixel
            background = 1.0 - masks.sum(0)
            count = len(layout_groups)
            for index, t in enumerate(timesteps):
                layout = index < plan.layout_steps
                embeds, groups = (layout_embeds, layout_groups) if layout else (region_embeds, region_groups)
                with routed(unet, groups):
                    model_input = scheduler.scale_model_input(torch.cat([latents] * (2 * count)), t)
                    predicted = unet(model_input, t, encoder_hidden_states=embeds).sample
                predicted = predicted.view(count, 2, *predicted.shape[1:])
                guided = predicted[:, 0] + guidance * (predicted[:, 1] - predicted[:, 0])  # (branches, C, h, w)
                eps = guided[0:1] * background + (masks * guided[1:]).sum(0, keepdim=True)
                latents = scheduler.step(eps, t, latents).prev_sample
                step = index + 1
                if cancel and cancel():
                    raise Cancelled(f"Cancelled after step {step} of {total}.")
                if progress:
                    progress(Progress("layout" if layout else "regions", step, total, im.latents_to_preview(latents)))
            decoded = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor).sample
        return pipe.image_processor.postprocess(decoded, output_type="pil")[0]

    def _out_of_memory_retry(self, work):
        """`work()` once; on a CUDA out-of-memory error, again with every memory saver on. (picture, notes)"""
        try:
            return work(), []
        except torch.cuda.OutOfMemoryError:
            if self._savers_on or self.device.type != "cuda":
                raise EngineError("Out of GPU memory even with the memory savers on; try a smaller size.")
            torch.cuda.empty_cache()
            self._enable_savers(slicing=True, tiling=True, offload=True)
            return work(), ["The GPU ran out of memory; this picture was made again with memory savers on (slower)."]

    def _inpaint_latents(self, image, hard_mask, masked_content, seeds):
        """A1111's "masked content", in latent space (diffusers has no such switch):
        original: the picture's own latents; fill: latents of the picture with the hole filled from
        its surroundings (done in pixels before this); latent_noise: random latents in the hole;
        latent_nothing: zero latents in the hole."""
        vae = self.text_pipe.vae
        device = self.inpaint_pipe._execution_device  # right with or without CPU offload
        pixels = self.inpaint_pipe.image_processor.preprocess(image).to(device=device, dtype=vae.dtype)
        with torch.no_grad():
            latents = vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor
        latent_size = (latents.shape[-1], latents.shape[-2])
        small = np.asarray(hard_mask.resize(latent_size, Image.BILINEAR), dtype=np.float32) / 255.0
        small = torch.from_numpy(small)[None, None].to(device=device, dtype=latents.dtype)
        latents = latents.repeat(len(seeds), 1, 1, 1)
        if masked_content == "latent_noise":
            noise = torch.cat([torch.randn(latents.shape[1:], generator=torch.Generator("cpu").manual_seed(s))[None]
                               for s in seeds]).to(device=device, dtype=latents.dtype)
            latents = latents * (1 - small) + noise * small
        elif masked_content == "latent_nothing":
            latents = latents * (1 - small)
        # Only 9-channel inpainting UNets read this; for SD1.5's 4-channel UNet it is ignored.
        masked_latents = latents * (small < 0.5)
        return latents, masked_latents

    def _run(self, pipe, stage, prompt, negative_prompt, seeds, call, *, total, progress, cancel, offset=0):
        if cancel and cancel():
            raise Cancelled("Cancelled before starting.")
        positive, negative, tokens = encode_prompts(pipe.tokenizer, pipe.text_encoder, prompt, negative_prompt,
                                                    pipe._execution_device)

        def on_step_end(_pipe, step_index, _timestep, tensors):
            if cancel and cancel():
                raise Cancelled(f"Cancelled after step {offset + step_index + 1} of {total}.")
            if progress:
                progress(Progress(stage, offset + step_index + 1, total, im.latents_to_preview(tensors["latents"])))
            return {}

        def run():
            generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
            return pipe(
                prompt_embeds=positive, negative_prompt_embeds=negative, num_images_per_prompt=len(seeds),
                generator=generators, callback_on_step_end=on_step_end, output_type="pil", **call,
            ).images

        notes = []
        try:
            return run(), tokens, notes
        except torch.cuda.OutOfMemoryError:
            if self._savers_on or self.device.type != "cuda":
                raise EngineError("Out of GPU memory even with the memory savers on; try a smaller size.")
            torch.cuda.empty_cache()
            self._enable_savers(slicing=True, tiling=True, offload=True)
            notes.append("The GPU ran out of memory; this picture was made again with memory savers on (slower).")
            return run(), tokens, notes

    def _enable_savers(self, *, slicing: bool, tiling: bool, offload: bool):
        for pipe in self.pipelines:
            if slicing:
                pipe.enable_attention_slicing()
        if tiling:
            self.text_pipe.vae.enable_tiling()
        if offload:
            for pipe in self.pipelines:
                pipe.enable_model_cpu_offload()
            self._savers_on = True

    def _record(self, operation, prompt, negative_prompt, seeds, active, tokens, **values) -> dict:
        return dict(
            operation=operation, prompt=prompt, negative_prompt=negative_prompt, seeds=seeds,
            adapters=active, prompt_tokens=tokens, scheduler=type(self.text_pipe.scheduler).__name__,
            base_model=self.model_name, demo_model=self.is_demo_model, engine_version=ENGINE_VERSION,
            device=self.device.type, dtype=str(self.dtype).removeprefix("torch."), **values,
        )


# --- helpers --------------------------------------------------------------------


def _seeds(seed, count):
    first = random.randrange(2**32 - count) if seed is None else seed
    return [(first + i) % 2**32 for i in range(count)]


def _face_denoise(steps, strength) -> int:
    """Steps the face pass runs per face."""
    return checks.denoise_steps(checks.face_steps(steps, strength), strength)


def _grown(box, share, size):
    """`box` grown by `share` of its width and height on every side, kept inside a picture of `size`."""
    left, top, right, bottom = box
    dx, dy = round((right - left) * share), round((bottom - top) * share)
    return max(0, left - dx), max(0, top - dy), min(size[0], right + dx), min(size[1], bottom + dy)


def _eighths(value: int) -> int:
    return max(64, value - value % 8)
