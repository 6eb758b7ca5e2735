"""How well compose keeps one likeness out of another's region, as a number (the bench reports it, a test
holds it below 0.5).

Swap subject B's adapter for other weights and measure how much the pixels deep inside A's region change:
once when the picture is composed by regions, once when both adapters act on the whole picture (one prompt,
the way identity bleed happens). The ratio of the two is near 0 when A's region does not feel B at all, and
near 1 when regions give no isolation.
"""

from __future__ import annotations

import numpy as np

from .options import Adapter, Region


def inner_half(box):
    """The middle half of a box (a quarter of its area): away from the feathered edge."""
    left, top, right, bottom = box
    dx, dy = (right - left) // 4, (bottom - top) // 4
    return left + dx, top + dy, right - dx, bottom - dy


def isolation_ratio(engine, a: Adapter, b: Adapter, b_other: Adapter, *, width=64, height=64, steps=8,
                    seed=7, prompt="two people side by side in a garden") -> dict:
    half = width // 2
    box_a, box_b = (0, 0, half, height), (half, 0, width, height)
    inside = inner_half(box_a)

    def change(first, second):
        one = np.asarray(first.crop(inside), dtype=np.float64)
        two = np.asarray(second.crop(inside), dtype=np.float64)
        return float(np.abs(one - two).mean())

    def composed(adapter_b):
        regions = [Region(a, f"{prompt}, the person on the left", box_a),
                   Region(adapter_b, f"{prompt}, the person on the right", box_b)]
        return engine.compose(prompt, regions, width=width, height=height, steps=steps, seed=seed,
                              face_pass=False).image

    def together(adapter_b):
        return engine.txt2img(prompt, adapters=[a, adapter_b], width=width, height=height, steps=steps,
                              seed=seed).image

    regional = change(composed(b), composed(b_other))
    both = change(together(b), together(b_other))
    return {"regional_change": round(regional, 3), "global_change": round(both, 3),
            "isolation_ratio": round(regional / both, 4) if both else 0.0}
