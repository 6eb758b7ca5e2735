"""Training benchmark: what caching VAE latents and text embeddings saves per step, and the size of
an SD1.5 adapter.

    python bench/training.py --json                     # one JSON object on stdout, logs on stderr
    python bench/training.py --json --model sd15-random --resolution 512 --steps 20   # on a GPU

Measured in one run:

* cached_step_s / uncached_step_s / cache_speedup: median seconds per training step of the same
  training (same photos, seed, options) with the caches on and off. Off means the VAE encodes the
  photo and the text encoder encodes the caption at every step, as a naive loop does. The first
  steps of each run are left out (warm-up).
* adapter_mb_sd15_rank16_fp16: the file size of a rank-16 UNet-attention LoRA for the full-size
  SD1.5 architecture, written by the trainer's own writer (zeros of the real shapes; built on the
  meta device, so no 4 GB model is needed). The issue's target is <= 13 MB; the thesis's DreamBooth
  checkpoint was 2 GB. adapter_mb_sd15_rank16_fp16_with_text_encoder adds the text-encoder LoRA.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def photos(count: int, size: int):
    import numpy as np
    from PIL import Image

    result = []
    for index in range(count):
        rng = np.random.default_rng(index)
        base = np.array([(60 * index) % 255, 120, 255 - 20 * index], dtype=np.float32)
        pixels = np.clip(base + rng.normal(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
        result.append((f"photo-{index}.png", Image.fromarray(pixels)))
    return result


def step_times(trainer, options, folder: Path, warmup: int) -> list[float]:
    stamps = []

    def progress(update):
        if update.stage == "training":
            stamps.append(time.perf_counter())

    trainer.train(photos(10, options.resolution), token="sqgkhoju", class_word="man", is_person=False,
                  out_dir=folder, options=options, progress=progress)
    return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]


def adapter_sizes() -> dict:
    import torch
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig, get_peft_model_state_dict
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.engine.lora_formats import save_diffusers_lora
    from generation.engine.models import SD15_UNET_CONFIG
    from generation.engine.training import TEXT_TARGETS, UNET_TARGETS

    with init_empty_weights():
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        unet.add_adapter(LoraConfig(r=16, lora_alpha=32, target_modules=UNET_TARGETS))
        text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                            num_attention_heads=12))
        text.add_adapter(LoraConfig(r=16, lora_alpha=32, target_modules=TEXT_TARGETS))

    def zeros(model):
        return {key: torch.zeros(value.shape) for key, value in get_peft_model_state_dict(model).items()}

    with tempfile.TemporaryDirectory() as folder:
        unet_only = save_diffusers_lora(zeros(unet), Path(folder) / "unet.safetensors", rank=16, alpha=32,
                                        target_modules=UNET_TARGETS)
        both = save_diffusers_lora(zeros(unet), Path(folder) / "both.safetensors", rank=16, alpha=32,
                                   target_modules=UNET_TARGETS, text_encoder_lora=zeros(text),
                                   text_target_modules=TEXT_TARGETS)
        return {
            "adapter_mb_sd15_rank16_fp16": round(unet_only.stat().st_size / 1e6, 2),
            "adapter_mb_sd15_rank16_fp16_with_text_encoder": round(both.stat().st_size / 1e6, 2),
            "adapter_parameters_sd15_rank16": sum(v.numel() for v in zeros(unet).values()),
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--model", default="tiny", help="tiny (default) or sd15-random, or a model path")
    parser.add_argument("--models-dir", default=str(ROOT / "var" / "models"))
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="training steps per arm")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out at the start of each arm")
    args = parser.parse_args(argv)

    import torch

    from generation.engine import EngineOptions
    from generation.engine.logs import quiet_library_logs
    from generation.engine.training import Trainer, TrainingOptions

    quiet_library_logs()
    trainer = Trainer(EngineOptions(base_model=args.model, models_dir=Path(args.models_dir)))
    log(f"{args.model} on {trainer.device} ({trainer.mixed} mixed precision), {args.resolution} px, {args.steps} steps per arm")
    figures = {"model": args.model, "device": trainer.device.type, "resolution": args.resolution,
               "steps": args.steps, "torch": torch.__version__, "machine": platform.machine(),
               "cpu_threads": torch.get_num_threads()}
    common = dict(steps=args.steps, resolution=args.resolution, checkpoint_every=10**6, sample_steps=1)
    with tempfile.TemporaryDirectory() as folder:
        uncached = step_times(trainer, TrainingOptions(cache=False, **common), Path(folder) / "uncached", args.warmup)
        cached = step_times(trainer, TrainingOptions(cache=True, **common), Path(folder) / "cached", args.warmup)
    figures["cached_step_s"] = statistics.median(cached)
    figures["uncached_step_s"] = statistics.median(uncached)
    figures["cache_speedup"] = figures["uncached_step_s"] / figures["cached_step_s"]
    log(f"step: {figures['cached_step_s']:.4f} s cached, {figures['uncached_step_s']:.4f} s uncached "
        f"(x{figures['cache_speedup']:.2f})")
    figures.update(adapter_sizes())
    log(f"SD1.5 rank-16 adapter: {figures['adapter_mb_sd15_rank16_fp16']} MB")
    print(json.dumps(figures, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
