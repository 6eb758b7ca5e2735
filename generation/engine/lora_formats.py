"""LoRA files: the diffusers format the engine loads, and kohya's format for other SD tools.

peft names a UNet LoRA weight `down_blocks.0.attentions.0...attn1.to_q.lora_A.weight`.
diffusers saves it with a `unet.` prefix. kohya (A1111, ComfyUI) names the same weight
`lora_unet_down_blocks_0_attentions_0_..._attn1_to_q.lora_down.weight`, with an `.alpha` per
module; diffusers converts that format back when loading, so the engine reads both.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def save_diffusers_lora(unet_lora: dict[str, torch.Tensor], path: Path, *, rank: int, alpha: float,
                        target_modules: list[str], metadata: dict[str, str] | None = None,
                        dtype: torch.dtype = torch.float16, text_encoder_lora: dict[str, torch.Tensor] | None = None,
                        text_target_modules: list[str] | None = None) -> Path:
    """Save peft UNet LoRA weights (`get_peft_model_state_dict(unet)`) as a diffusers LoRA file,
    with the text encoder's LoRA weights too when there are some.

    diffusers' own writer stores the LoRA config (so `alpha` survives: without it a loader
    assumes alpha = rank and the adapter comes out at the wrong strength); our metadata
    (subject, base model, photo hashes...) is added to the same safetensors header.
    """
    from diffusers import StableDiffusionPipeline

    path.parent.mkdir(parents=True, exist_ok=True)
    def cast(weights):
        return {key: value.detach().to("cpu", dtype).contiguous() for key, value in weights.items()}

    config = {"r": rank, "lora_alpha": alpha, "target_modules": sorted(target_modules)}
    text = {}
    if text_encoder_lora:
        text = dict(text_encoder_lora_layers=cast(text_encoder_lora), text_encoder_lora_adapter_metadata={
            "r": rank, "lora_alpha": alpha, "target_modules": sorted(text_target_modules or [])})
    StableDiffusionPipeline.save_lora_weights(
        str(path.parent), unet_lora_layers=cast(unet_lora), unet_lora_adapter_metadata=config,
        weight_name=path.name, safe_serialization=True, **text,
    )
    if metadata:
        with safe_open(str(path), framework="pt") as handle:
            header = dict(handle.metadata() or {})
        save_file(load_file(str(path)), str(path), metadata={**header, **{k: str(v) for k, v in metadata.items()}})
    return path


def read_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def to_kohya(unet_lora: dict[str, torch.Tensor], alpha: float, prefix: str = "lora_unet_") -> dict[str, torch.Tensor]:
    """peft LoRA weights -> kohya names (lora_down = A, lora_up = B, one alpha per module).
    The text encoder's weights take the prefix `lora_te_`."""
    converted = {}
    for key, value in unet_lora.items():
        module, _, kind = key.rpartition(".lora_")
        kohya = prefix + module.replace(".", "_")
        if kind == "A.weight":
            converted[f"{kohya}.lora_down.weight"] = value
            converted[f"{kohya}.alpha"] = torch.tensor(float(alpha))
        elif kind == "B.weight":
            converted[f"{kohya}.lora_up.weight"] = value
        else:
            raise ValueError(f"Not a peft LoRA weight name: {key}")
    return converted


def save_kohya_lora(unet_lora: dict[str, torch.Tensor], alpha: float, path: Path,
                    metadata: dict[str, str] | None = None, dtype: torch.dtype = torch.float16,
                    text_encoder_lora: dict[str, torch.Tensor] | None = None) -> Path:
    weights = to_kohya(unet_lora, alpha)
    if text_encoder_lora:
        weights.update(to_kohya(text_encoder_lora, alpha, prefix="lora_te_"))
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in weights.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt", "ss_network_module": "networks.lora", **(metadata or {})})
    return path
