"""Pixel and latent helpers: masks, A1111-style fills, crops, and cheap step previews."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

# Stable Diffusion 1.x latents -> RGB, a linear fit (as A1111 and ComfyUI use for live previews):
# a preview costs one small matrix product instead of a VAE decode. A plain list, so the mask helpers
# here stay usable without torch (generation.engine.checks).
SD15_LATENT_RGB = [
    [0.3512, 0.2297, 0.3227],
    [0.3250, 0.4974, 0.2350],
    [-0.2829, 0.1762, 0.2721],
    [-0.2120, -0.2616, -0.7177],
]


def latents_to_preview(latents) -> Image.Image:
    """The first image of a latent batch as a small RGB picture (1/8 of the output size)."""
    import torch

    rgb = latents[0].detach().float().cpu().permute(1, 2, 0) @ torch.tensor(SD15_LATENT_RGB)
    rgb = ((rgb + 1.0) / 2.0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return Image.fromarray(rgb, mode="RGB")


def prepare_mask(mask: Image.Image, *, invert: bool, blur: int) -> Image.Image:
    """Greyscale 0..255 mask, white = repaint; inverted for "everything but what I painted"."""
    mask = mask.convert("L")
    if invert:
        mask = Image.eval(mask, lambda v: 255 - v)
    if blur > 0:
        mask = mask.filter(ImageFilter.GaussianBlur(blur))
    return mask


def mask_box(mask: Image.Image, padding: int, size: tuple[int, int], target: tuple[int, int]):
    """A1111's "only masked" crop: the mask's bounding box plus padding, grown to the target's
    aspect ratio and kept inside the image. None when the mask is empty."""
    box = mask.point(lambda v: 255 if v > 0 else 0).getbbox()
    if box is None:
        return None
    width, height = size
    left, top, right, bottom = box
    left, top = max(left - padding, 0), max(top - padding, 0)
    right, bottom = min(right + padding, width), min(bottom + padding, height)
    # Grow the shorter side so the crop has the generation's aspect ratio (no stretching).
    target_ratio = target[0] / target[1]
    crop_w, crop_h = right - left, bottom - top
    if crop_w / crop_h < target_ratio:
        grow = min(int(round(crop_h * target_ratio)), width) - crop_w
        left = max(0, left - grow // 2)
        right = min(width, left + crop_w + grow)
        left = max(0, right - (crop_w + grow))
    else:
        grow = min(int(round(crop_w / target_ratio)), height) - crop_h
        top = max(0, top - grow // 2)
        bottom = min(height, top + crop_h + grow)
        top = max(0, bottom - (crop_h + grow))
    return (left, top, right, bottom)


def fill_masked(image: Image.Image, mask: Image.Image) -> Image.Image:
    """A1111's "fill": masked pixels take the blurred colours of their surroundings.

    Normalised blurs of the unmasked pixels, coarse to fine: each finer blur overrides the
    estimate where it reaches, so colours near the edge come from the nearest neighbours.
    """
    hard = np.asarray(mask.convert("L")) > 127
    known = ~hard
    rgb = image.convert("RGB")
    pixels = np.asarray(rgb, dtype=np.float32)
    result = pixels.copy()
    result[hard] = pixels[known].mean(axis=0) if known.any() else 127.0
    known_image = Image.fromarray((pixels * known[..., None]).astype(np.uint8))
    known_mask = Image.fromarray((known * 255).astype(np.uint8))
    for radius in (64, 32, 16, 8, 4, 2):
        numerator = np.asarray(known_image.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
        denominator = np.asarray(known_mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)[..., None] / 255
        reached = hard & (denominator[..., 0] > 0.05)
        result[reached] = (numerator / np.maximum(denominator, 1e-3))[reached]
    return Image.fromarray(np.clip(result, 0, 255).astype(np.uint8))


def box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


def composite(original: Image.Image, generated: Image.Image, mask: Image.Image) -> Image.Image:
    """Paste `generated` over `original` through `mask`: outside it, the original pixels exactly."""
    return Image.composite(generated.convert("RGB"), original.convert("RGB"), mask)


def region_masks(boxes, size: tuple[int, int], feather: int, scale: int):
    """compose's soft region masks at latent resolution, (regions, 1, height / scale, width / scale) in 0..1:
    each box drawn at full size, its edge blurred over `feather` pixels (so branches fade into each other
    rather than meeting at a seam), then reduced to the latent grid."""
    import torch

    latent_size = (size[0] // scale, size[1] // scale)
    layers = []
    for box in boxes:
        mask = box_mask(size, box)
        if feather:
            mask = mask.filter(ImageFilter.GaussianBlur(feather / 2))
        small = np.asarray(mask.resize(latent_size, Image.BILINEAR), dtype=np.float32) / 255.0
        layers.append(torch.from_numpy(small)[None])
    return torch.stack(layers)
