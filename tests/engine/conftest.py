"""Engine tests run on the tiny model, on the CPU, with no Django involved."""

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model_state_dict
from PIL import Image

from generation.engine import Engine, EngineOptions
from generation.engine.lora_formats import save_diffusers_lora, save_kohya_lora

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "var" / "models"  # the tiny model is built once, deterministically, and reused
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@pytest.fixture(scope="session")
def engine():
    return Engine(EngineOptions(base_model="tiny", models_dir=MODELS_DIR, max_resident_adapters=4))


def random_lora(unet, seed: int, rank=4, alpha=8):
    """A LoRA with random (non-zero) weights for the tiny UNet: it visibly changes pictures."""
    name = f"random_{seed}"
    torch.manual_seed(seed)
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False, target_modules=TARGETS),
                     adapter_name=name)
    try:
        return get_peft_model_state_dict(unet, adapter_name=name)
    finally:
        unet.delete_adapters(name)


@pytest.fixture(scope="session")
def lora_files(tmp_path_factory):
    """Two diffusers-format adapters and a kohya copy of the first, made on a separate tiny UNet."""
    from diffusers import UNet2DConditionModel

    from generation.engine.models import resolve_source

    tiny_dir, _ = resolve_source("tiny", MODELS_DIR)  # built on first use
    unet = UNet2DConditionModel.from_pretrained(tiny_dir / "unet")
    folder = tmp_path_factory.mktemp("loras")
    first, second = random_lora(unet, 1), random_lora(unet, 2)
    return {
        "a": save_diffusers_lora(first, folder / "a.safetensors", rank=4, alpha=8, target_modules=TARGETS,
                                 metadata={"subject_token": "sqgkhoju"}),
        "b": save_diffusers_lora(second, folder / "b.safetensors", rank=4, alpha=8, target_modules=TARGETS),
        "a_kohya": save_kohya_lora(first, 8, folder / "a_kohya.safetensors"),
    }


def box_mask(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    return mask


@pytest.fixture(scope="session")
def picture():
    """A 64×64 starting picture with a clear left/right split, for img2img and inpainting."""
    image = Image.new("RGB", (64, 64), (200, 40, 40))
    image.paste((40, 60, 200), (32, 0, 64, 64))
    return image
