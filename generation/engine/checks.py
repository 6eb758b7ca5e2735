"""Every input check of the engine and the trainer, runnable with no model loaded (no torch import).

The engine calls these first in each operation, and a web process calls the very same functions
before it queues a job (`generation.calls`), so a request the engine would refuse is refused at once,
in the same words, instead of failing later in a worker.
"""

from __future__ import annotations

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


def compose(scene_prompt, people, *, scene_adapter_ids, negative_prompt, steps, guidance, width, height, seed,
            person_strength, person_steps, mask_blur, padding, tokenizer=None) -> tuple[int, list[Image.Image]]:
    """`people` are PersonRegion-like (adapter.id, prompt, mask or box). Returns the steps per person and
    each person's mask. Each person is then an inpaint call, checked here as the engine will make it."""
    check_common(scene_prompt, steps, guidance, 1, seed)
    check_size(width, height)
    people = list(people)
    if not people:
        raise EngineInputError("compose needs at least one person; use txt2img for a scene alone.")
    scene_ids = set(scene_adapter_ids)
    person_ids = [p.adapter.id for p in people]
    if len(set(person_ids)) != len(person_ids):
        raise EngineInputError(f"A person is listed twice: {person_ids}.")
    if scene_ids & set(person_ids):
        raise EngineInputError(
            f"Adapters {sorted(scene_ids & set(person_ids))} are both in the scene and a person: "
            "a person's adapter is only active in their own region."
        )
    person_steps = person_steps or steps
    check_strength(person_strength, person_steps)
    masks = []
    for person in people:
        check_common(person.prompt, person_steps, guidance, 1, None)
        masks.append(region_mask(person, (width, height)))
    check_prompt_length(tokenizer, scene_prompt, negative_prompt)
    for person, mask in zip(people, masks):
        inpaint((width, height), mask, person.prompt, mask_mode="masked", masked_content="original",
                strength=person_strength, mask_blur=mask_blur, only_masked=True, padding=padding,
                negative_prompt=negative_prompt, steps=person_steps, guidance=guidance, width=width, height=height,
                seed=None, num_images=1, tokenizer=tokenizer)
    return person_steps, masks


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


def denoise_steps(steps, strength) -> int:
    """How many steps img2img and inpaint really run: the first (1 - strength) of the schedule is skipped."""
    return min(int(steps * strength), steps)


def region_mask(person, size) -> Image.Image:
    if (person.mask is None) == (person.box is None):
        raise EngineInputError(f"Person {person.adapter.id!r}: give either a mask or a box, not both or neither.")
    if person.mask is not None:
        if person.mask.size != size:
            raise EngineInputError(
                f"Person {person.adapter.id!r}: the mask is {person.mask.size[0]}×{person.mask.size[1]} "
                f"but the picture is {size[0]}×{size[1]}."
            )
        mask = person.mask.convert("L")
    else:
        left, top, right, bottom = person.box
        if not (0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]):
            raise EngineInputError(f"Person {person.adapter.id!r}: the box {person.box} is not inside the {size[0]}×{size[1]} picture.")
        mask = im.box_mask(size, person.box)
    if mask.getbbox() is None:
        raise EngineInputError(f"Person {person.adapter.id!r}: the mask is empty.")
    return mask


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
