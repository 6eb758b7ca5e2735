"""Per-sample adapter routing: one batched UNet call in which each group of samples has its own adapters.

A composed picture runs a background branch and one branch per subject at every step, each with only its
own adapter. Running them as one batch costs one UNet call a step instead of one per branch. peft's LoRA
layers can mix adapters in a batch (`adapter_names=`, `_mixed_batch_forward`), but only one adapter per
sample, and the background may carry several (a place and a style). So, while `routed` is active, every
LoRA layer runs its base weights only (the adapters are disabled, as in peft's own switch) and a forward
hook adds, for each group of samples, the sum of that group's adapters: lora_B(lora_A(x)) * alpha / r *
weight, which is exactly what peft adds for active adapters (tests compare it with separate runs).

What was really applied is counted per group, read from the hooks as they ran, so a result can say which
adapters each branch had.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .errors import EngineInputError


@dataclass
class Group:
    """Samples `start:stop` of the batch, with these adapters at these weights ({} = the base model alone)."""

    start: int
    stop: int
    adapters: dict[str, float]
    applied: set[str] = field(default_factory=set)  # filled while the UNet runs


def lora_layers(module: torch.nn.Module) -> list:
    from peft.tuners.lora import LoraLayer

    return [m for m in module.modules() if isinstance(m, LoraLayer)]


def _scaling(layer, name: str, weight: float) -> float:
    """peft's scaling for `name` at `weight`, from the adapter's own alpha and rank (set_adapters changes
    layer.scaling in place, so it is not read from there)."""
    rank = layer.r[name]
    root = math.sqrt(rank) if layer.use_rslora.get(name, False) else rank
    return layer.lora_alpha[name] / root * weight


@contextmanager
def routed(unet: torch.nn.Module, groups: list[Group]):
    """While inside, `unet(batch, ...)` applies each group's adapters to its samples only."""
    layers = lora_layers(unet)
    for group in groups:
        for name in group.adapters:
            if not any(name in layer.lora_A for layer in layers):
                raise EngineInputError(f"Adapter {name!r} is not loaded.")
    for layer in layers:
        variants = set(getattr(layer, "lora_variant", {})) & {n for g in groups for n in g.adapters}
        if variants:  # DoRA and other variants change the base output itself: not a sum of deltas
            raise EngineInputError(f"Adapters {sorted(variants)} use a LoRA variant (such as DoRA) that cannot be "
                                   "drawn in regions; use plain LoRA adapters.")

    def add_deltas(layer, args, output):
        x = args[0]
        for group in groups:
            for name, weight in group.adapters.items():
                if name not in layer.lora_A:
                    continue
                part = x[group.start:group.stop].to(layer.lora_A[name].weight.dtype)
                delta = layer.lora_B[name](layer.lora_A[name](layer.lora_dropout[name](part)))
                output[group.start:group.stop] += (delta * _scaling(layer, name, weight)).to(output.dtype)
                group.applied.add(name)
        return output

    previous = [layer.disable_adapters for layer in layers]
    handles = []
    try:
        for layer in layers:
            layer.enable_adapters(False)  # base weights only; the hook adds each group's own
            handles.append(layer.register_forward_hook(add_deltas))
        yield groups
    finally:
        for handle in handles:
            handle.remove()
        for layer, was_disabled in zip(layers, previous):
            layer.enable_adapters(not was_disabled)
