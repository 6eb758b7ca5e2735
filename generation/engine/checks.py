"""Every input check of the engine and the trainer, runnable with no model loaded (no torch import).

The engine calls these first in each operation, and a web process calls the very same functions
before it queues a job (`generation.calls`), so a request the engine would refuse is refused at once,
in the same words, instead of failing later in a worker.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from PIL import Image

from . import images as im
from .errors import EngineInputError

MASK_MODES = ("masked", "not_masked")
MASKED_CONTENT = ("original", "fill", "latent_noise", "latent_nothing")
MAX_CHUNKS = 4  # 75-token chunks of a prompt: 300 tokens is far more than a caption needs; beyond it, say so
MASK_BLUR = (0, 64)
PADDING = (0, 512)
TOKEN_PATTERN = re.compile(r"^[a-z][a-z0-9]{2,15}$")


# --- one check per operation, with the engine's own argument names ------------------------------


def txt2img(prompt, *, negative_prompt, steps, guidance, width, height, seed, num_images, tokenizer=None):
    check_common(prompt, steps, guidance, num_images, seed)
    check_size(width, height)
    check_prompt_length(tokenizer, prompt, negative_prompt)


def img2img(image_size, prompt, *, strength, negative_prompt, steps, guidance, width, height, seed, num_images,
            tokenizer=None) -> tuple[int, int]:
    """Returns the output size."""
    check_common(prompt, steps, guidance, num_images, seed)
    check_strength(strength, steps)
    size = size_for(image_size, width, height, "picture")
    check_prompt_length(tokenizer, prompt, negative_prompt)
    return size


@dataclass
class InpaintPlan:
    hard_mask: Image.Image  # what is repainted, before blurring (mask mode applied)
    soft_mask: Image.Image  # the same, blurred: where the result is blended in
    width: int
    height: int
    box: tuple[int, int, int, int]  # the part of the picture that is repainted at width × height


def inpaint(image_size, mask: Image.Image, prompt, *, mask_mode, masked_content, strength, mask_blur, only_masked,
            padding, negative_prompt, steps, guidance, width, height, seed, num_images,
            tokenizer=None) -> InpaintPlan:
    """Returns the masks and the crop the engine works with."""
    check_common(prompt, steps, guidance, num_images, seed)
    check_strength(strength, steps)
    if mask_mode not in MASK_MODES:
        raise EngineInputError(f"mask_mode must be one of {MASK_MODES}, not {mask_mode!r}.")
    if masked_content not in MASKED_CONTENT:
        raise EngineInputError(f"masked_content must be one of {MASKED_CONTENT}, not {masked_content!r}.")
    if tuple(mask.size) != tuple(image_size):
        raise EngineInputError(
            f"The mask is {mask.size[0]}×{mask.size[1]} but the picture is {image_size[0]}×{image_size[1]}; "
            "they must be the same size."
        )
    if not _whole(mask_blur) or not MASK_BLUR[0] <= mask_blur <= MASK_BLUR[1]:
        raise EngineInputError(f"mask_blur must be a whole number of pixels from 0 to 64, not {mask_blur!r}.")
    if not _whole(padding) or not PADDING[0] <= padding <= PADDING[1]:
        raise EngineInputError(f"padding must be a whole number of pixels from 0 to 512, not {padding!r}.")
    if not isinstance(only_masked, bool):
        raise EngineInputError(f"only_masked must be true or false, not {only_masked!r}.")
    hard_mask = im.prepare_mask(mask, invert=mask_mode == "not_masked", blur=0)
    if hard_mask.getbbox() is None:
        if mask_mode == "not_masked":
            raise EngineInputError("The mask covers the whole picture, so “everything else” is nothing: "
                                   "leave some of the picture unpainted, or repaint what you painted.")
        raise EngineInputError("The mask is empty: paint the part to repaint.")
    soft_mask = im.prepare_mask(mask, invert=mask_mode == "not_masked", blur=mask_blur)
    width, height = size_for(image_size, width, height, "picture")
    if only_masked:
        box = im.mask_box(soft_mask, padding, tuple(image_size), (width, height))
        if box is None:  # a speck, blurred away to nothing
            raise EngineInputError(f"The painted part is too small for a mask blur of {mask_blur} pixels: "
                                   "paint a larger part, or blur less.")
    else:
        box = (0, 0, image_size[0], image_size[1])
    check_prompt_length(tokenizer, prompt, negative_prompt)
    return InpaintPlan(hard_mask, soft_mask, width, height, box)


@dataclass
class ComposePlan:
    width: int
    height: int
    layout_steps: int  # of the denoising steps, the first ones drawn with no adapter (the composition forms)
    denoise_steps: int  # steps the loop runs (fewer than `steps` when starting from a picture)
    feather: int  # pixels over which each region's mask fades out


MIN_REGION = 8  # pixels: one latent cell; and at least a tenth of the picture's side (see compose)


def compose(scene_prompt, regions, *, scene_adapter_ids, negative_prompt, steps, guidance, width, height, seed,
            layout_fraction=0.25, feather=None, face_pass=True, face_strength=0.4, strength=0.75,
            image_size=None, tokenizer=None) -> ComposePlan:
    """`regions` are Region-like (adapter.id, prompt, box, layout_prompt). Each region is drawn with only its own
    adapter and the background with only the scene's: no pixel's branch may have two likenesses."""
    check_common(scene_prompt, steps, guidance, 1, seed)
    if image_size is not None:
        width, height = size_for(image_size, width, height, "picture")
        check_strength(strength, steps)
        denoise = denoise_steps(steps, strength)
    else:
        width, height = width or 512, height or 512
        check_size(width, height)
        denoise = steps
    regions = list(regions)
    if not regions:
        raise EngineInputError("compose needs at least one region (a person, pet or object); use txt2img for a "
                               "scene alone.")
    region_ids = [r.adapter.id for r in regions]
    if len(set(region_ids)) != len(region_ids):
        raise EngineInputError(f"An adapter has two regions: {region_ids}. Each subject has one region, so that no "
                               "pixel's branch has two likenesses.")
    shared = sorted(set(scene_adapter_ids) & set(region_ids))
    if shared:
        raise EngineInputError(f"Adapters {shared} are both in the background and a region: a subject's adapter is "
                               "only active in its own region, so that no pixel's branch has two likenesses.")
    if not _number(layout_fraction) or not 0 <= layout_fraction <= 0.9:
        raise EngineInputError(f"layout_fraction must be from 0 to 0.9, not {layout_fraction!r}.")
    layout_steps = int(denoise * layout_fraction)  # at most 0.9: at least one step is left for the regions
    if feather is None:
        feather = max(2, min(width, height) // 16)
    if not _whole(feather) or not 0 <= feather <= 256:
        raise EngineInputError(f"feather must be a whole number of pixels from 0 to 256, not {feather!r}.")
    if face_pass:
        check_strength(face_strength, face_steps(steps, face_strength))
    smallest = max(MIN_REGION, -(-min(width, height) // 10))
    for region in regions:
        left, top, right, bottom = region.box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise EngineInputError(f"Region {region.adapter.id!r}: the box {tuple(region.box)} is not inside the "
                                   f"{width}×{height} picture.")
        if min(right - left, bottom - top) < smallest:
            raise EngineInputError(f"Region {region.adapter.id!r}: the box {tuple(region.box)} is too small; make "
                                   f"each side at least {smallest} pixels.")
        for prompt in (region.prompt, region.layout_prompt or region.prompt):
            check_common(prompt, steps, guidance, 1, None)
    for prompt in [scene_prompt] + [r.prompt for r in regions] + [r.layout_prompt for r in regions if r.layout_prompt]:
        check_prompt_length(tokenizer, prompt, negative_prompt)
    return ComposePlan(width, height, layout_steps, denoise, feather)


def faces(regions, *, steps, strength, width, height) -> None:
    """The face pass of txt2img and img2img: each region names an adapter and where to look."""
    regions = list(regions)
    if not regions:
        return
    check_strength(strength, face_steps(steps, strength))
    for region in regions:
        left, top, right, bottom = region.box
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise EngineInputError(f"Face of {region.adapter.id!r}: the box {tuple(region.box)} is not inside the "
                                   f"{width}×{height} picture.")
        check_common(region.prompt, steps, 7.5, 1, None)


# --- the parts ------------------------------------------------------------------------------------


def check_common(prompt, steps, guidance, num_images, seed):
    if not isinstance(prompt, str) or not prompt.strip():
        raise EngineInputError("The description is empty: say what the picture should show.")
    if not _whole(steps) or not 1 <= steps <= 150:
        raise EngineInputError(f"steps must be a whole number from 1 to 150, not {steps!r}.")
    if not _number(guidance) or not 0 <= guidance <= 30:
        raise EngineInputError(f"guidance must be between 0 and 30, not {guidance!r}.")
    if not _whole(num_images) or not 1 <= num_images <= 8:
        raise EngineInputError(f"num_images must be from 1 to 8, not {num_images!r}.")
    if seed is not None and (not _whole(seed) or not 0 <= seed < 2**32):
        raise EngineInputError(f"seed must be a whole number from 0 to {2**32 - 1}, not {seed!r}.")


def check_size(width, height):
    for name, value in (("width", width), ("height", height)):
        if not _whole(value) or not 64 <= value <= 2048:
            raise EngineInputError(f"{name} must be from 64 to 2048 pixels, not {value!r}.")
        if value % 8:
            raise EngineInputError(f"{name} must be a multiple of 8 (the model works in 8-pixel blocks), not {value}.")


def size_for(image_size, width, height, what) -> tuple[int, int]:
    if (width is None) != (height is None):
        raise EngineInputError("Give both width and height, or neither.")
    if width is None:
        width, height = image_size
        if width % 8 or height % 8:
            raise EngineInputError(
                f"The {what} is {width}×{height}; its sides must be multiples of 8. "
                "Pass width and height to resize it."
            )
    check_size(width, height)
    return width, height


def check_strength(strength, steps):
    if not _number(strength) or not 0 < strength <= 1:
        raise EngineInputError(f"strength must be more than 0 and at most 1, not {strength!r}.")
    if denoise_steps(steps, strength) < 1:
        raise EngineInputError(f"strength {strength} with {steps} steps leaves no step to run; raise either.")


def face_steps(steps, strength) -> int:
    """The face pass's step count: the picture's, or just enough for one step at `strength` (a quick picture
    of 2 steps still gets its faces repainted)."""
    if not _number(strength) or strength <= 0:
        return steps
    return max(steps, math.ceil(1 / strength))


def denoise_steps(steps, strength) -> int:
    """How many steps img2img and inpaint really run: the first (1 - strength) of the schedule is skipped."""
    return min(int(steps * strength), steps)


def prompt_chunks(tokenizer, text: str) -> list[list[int]]:
    """The prompt's token ids in chunks of 75 (CLIP's 77 less its start and end tokens)."""
    ids = tokenizer(text, add_special_tokens=False, truncation=False, verbose=False).input_ids
    size = tokenizer.model_max_length - 2
    return [ids[i:i + size] for i in range(0, len(ids), size)] or [[]]


def check_prompt_length(tokenizer, prompt: str, negative_prompt: str):
    """(positive chunks, negative chunks); refuses more than MAX_CHUNKS. Without a tokenizer (not on
    this machine) there is nothing to count: returns None."""
    if tokenizer is None:
        return None
    positive, negative = prompt_chunks(tokenizer, prompt), prompt_chunks(tokenizer, negative_prompt or "")
    if max(len(positive), len(negative)) > MAX_CHUNKS:
        too_long, what = (positive, "description") if len(positive) > MAX_CHUNKS else (negative, "negative prompt")
        tokens = sum(len(c) for c in too_long)
        raise EngineInputError(
            f"The {what} is too long ({tokens} tokens); keep it under {MAX_CHUNKS * 75} tokens "
            "(a few sentences)."
        )
    return positive, negative


def check_token(tokenizer, token: str, class_word: str) -> None:
    """A subject token must be a made-up word: a word the text encoder already knows carries its
    meaning into the adapter and washes the likeness out (the thesis used `sqgkhoju`)."""
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        raise EngineInputError(
            f"The token {token!r} must be one made-up word of 3-16 lowercase letters or digits, such as 'sqgkhoju'."
        )
    if not isinstance(class_word, str) or not class_word.strip():
        raise EngineInputError("The class word is empty: say what the subject is (man, woman, dog, church...).")
    if token == class_word.strip().lower():
        raise EngineInputError(f"The token {token!r} is the class word; use a made-up word such as 'sqgkhoju'.")
    if tokenizer is None:
        return
    pieces = tokenizer.tokenize(token)
    if len(pieces) == 1 and pieces[0].endswith("</w>"):
        raise EngineInputError(
            f"The token {token!r} is a word the model already knows, so it would mix that meaning into the "
            "subject. Use a made-up word such as 'sqgkhoju'."
        )


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
