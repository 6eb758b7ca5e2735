"""Where the base model comes from: a diffusers folder, a single checkpoint file, or a built-in one.

`tiny` is Stable Diffusion 1.5's architecture in miniature (UNet with three cross-attention
levels, a 4-level VAE with the same 8x downscale, a CLIP text encoder) with random weights and a
small byte-level BPE tokenizer. It is built deterministically, once, so tests, CI and the demo
run without downloading anything. Its pictures are noise, and the engine says so.

`sd15-random` is the full-size SD1.5 architecture with random weights: real timings, no real
pictures. It is built on first use (about 4 GB on disk, fp32, ~30 s) and is for benchmarks only.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import EngineConfigError

BUILT_IN = ("tiny", "sd15-random")
MARKER = "lifebook_model.json"

# Stable Diffusion 1.5's noise schedule; the sampler is DPM-Solver++ (2M), good at 20-30 steps.
SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    steps_offset=1, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=False,
)

# Words the tiny tokenizer knows whole; anything else is spelled out byte by byte, like
# CLIP does with rare words (which is what a subject token is).
TINY_WORDS = """
a an the of and with in on at to his her their its is are was by from for as
photo picture painting sketch drawing watercolour watercolor illustration portrait close up
man woman boy girl child person people old young adult mother father son daughter family friend
dog cat pet animal horse bird house home room living church basilica tower towers building street town
city village mountain mountains beach sea garden park field tree trees sky sun snow rain
walking running sitting standing playing reading smiling painting hiking talking holding eating
chess book books table sofa window door car train bicycle laboratory university school team track
red blue green yellow white black brown warm soft light dark sunny bright colourful colorful
style detailed realistic high quality blurry deformed ugly lowres bad hands extra fingers
""".split()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte-to-character table (so any text can be tokenised)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def build_tiny_tokenizer():
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    symbols = list(bytes_to_unicode().values())
    for symbol in symbols:
        vocab.setdefault(symbol, len(vocab))
    for symbol in symbols:
        vocab.setdefault(symbol + "</w>", len(vocab))
    merges = []
    for word in TINY_WORDS:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        current = parts[0]
        for part in parts[1:]:
            if (current, part) not in merges:
                merges.append((current, part))
            current += part
            vocab.setdefault(current, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def _tiny_components(tokenizer):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 32, 64, 64),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8,
    )
    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(16, 16, 32, 32), sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    return unet, vae, text_encoder


SD15_UNET_CONFIG = dict(  # Stable Diffusion 1.5's UNet
    sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32,
)


def _sd15_components(tokenizer):
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, norm_num_groups=32,
        block_out_channels=(128, 256, 512, 512), sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))
    return unet, vae, text_encoder


def build_builtin(name: str, target: Path) -> Path:
    """Build a built-in model into `target` (atomically: a half-built folder is never seen)."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    tokenizer = build_tiny_tokenizer()
    unet, vae, text_encoder = (_tiny_components if name == "tiny" else _sd15_components)(tokenizer)
    pipe = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=DPMSolverMultistepScheduler(**SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        pipe.save_pretrained(staging, safe_serialization=True)
        (staging / MARKER).write_text(json.dumps({"name": name, "demo": True, "random_weights": True}))
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first; its copy is identical
            if not (target / MARKER).exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def is_demo_model(base_model: str, models_dir: Path) -> bool:
    """What `resolve_source` would say about being a demo model, without building or loading anything
    (a web process asks it for every submission)."""
    if base_model in BUILT_IN:
        return True
    installed = Path(models_dir) / base_model
    if "/" not in base_model and (installed / MARKER).exists():
        return _is_demo(installed)  # an installed model's record says it is real
    path = Path(base_model).expanduser()
    return path.is_dir() and _is_demo(path)


def resolve_source(base_model: str, models_dir: Path) -> tuple[Path, bool]:
    """(path to load, is it a demo model). Builds a built-in model the first time it is asked for.
    A plain name is a model installed with `manage.py install_model` into `models_dir`."""
    if base_model in BUILT_IN:
        target = models_dir / base_model
        if not (target / MARKER).exists():
            build_builtin(base_model, target)
        return target, True
    installed = Path(models_dir) / base_model
    if "/" not in base_model and (installed / MARKER).exists():
        return installed, _is_demo(installed)
    path = Path(base_model).expanduser()
    if not path.exists():
        raise EngineConfigError(
            f"LIFEBOOK_BASE_MODEL is {base_model!r}: that is neither 'tiny', 'sd15-random', the name of a model "
            f"installed in {models_dir}, a diffusers folder nor a .safetensors/.ckpt file that exists."
        )
    return path, bool(path.is_dir() and _is_demo(path))


def read_record(folder: Path) -> dict | None:
    """A model folder's record (built in or installed); None when there is none or it is unreadable."""
    try:
        return json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _is_demo(folder: Path) -> bool:
    """Built-in models' records say demo; an installed model's record says it is real."""
    record = read_record(folder)
    return bool(record and record.get("demo", True))


def load_pipeline(path: Path, dtype: "torch.dtype", config_dir: str | None = None):
    """Load a StableDiffusionPipeline from a diffusers folder or a single checkpoint file."""
    from diffusers import DPMSolverMultistepScheduler, StableDiffusionPipeline

    common = dict(dtype=dtype, safety_checker=None, requires_safety_checker=False)
    if path.is_dir():
        if not (path / "model_index.json").exists():
            raise EngineConfigError(f"{path} is a folder but not a diffusers model (no model_index.json).")
        pipe = StableDiffusionPipeline.from_pretrained(path, local_files_only=True, **common)
    elif path.suffix.lower() in (".safetensors", ".ckpt"):
        # A single SD1.5 checkpoint lacks its parts' configs and tokenizer: they ship with the project
        # (install.py). LIFEBOOK_BASE_MODEL_CONFIG may still name a local diffusers folder to use instead.
        from .install import check_sd15_checkpoint, write_config_folder

        if not config_dir:  # a config folder names the architecture itself (used by tests on the tiny model)
            check_sd15_checkpoint(path)
        with tempfile.TemporaryDirectory(prefix="lifebook-sd15-config-") as shipped:
            config = config_dir or str(write_config_folder(Path(shipped) / "sd15"))
            try:
                pipe = StableDiffusionPipeline.from_single_file(str(path), config=config, local_files_only=True, **common)
            except Exception as exc:  # diffusers raises many kinds here; one clear message instead
                raise EngineConfigError(
                    f"Could not load {path.name} as a Stable Diffusion 1.5 checkpoint ({exc})."
                ) from exc
    else:
        raise EngineConfigError(f"{path}: a base model is a diffusers folder or a .safetensors/.ckpt file.")
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, **SCHEDULER_CONFIG)
    return pipe


def load_tokenizer(base_model: str, models_dir: Path, config_dir: str | None = None):
    """The tokenizer the engine will use for `base_model`, read without loading (or building) the model,
    so prompts can be measured before a job is queued. None when it is not on this machine (a web server
    without the model): the worker's own check still runs then."""
    from transformers import CLIPTokenizer

    if base_model in BUILT_IN:
        folder = Path(models_dir) / base_model / "tokenizer"
        if not folder.is_dir():
            return build_tiny_tokenizer()  # what both built-in models are built with
    elif "/" not in base_model and (Path(models_dir) / base_model / MARKER).exists():
        folder = Path(models_dir) / base_model / "tokenizer"  # an installed model
    else:
        path = Path(base_model).expanduser()
        if path.is_file() and not config_dir:
            from .install import build_clip_tokenizer  # a single file uses SD1.5's shipped tokenizer

            try:
                return build_clip_tokenizer()
            except EngineConfigError:
                return None
        folder = path / "tokenizer" if path.is_dir() else (Path(config_dir) / "tokenizer" if config_dir else None)
        if folder is None or not folder.is_dir():
            return None
    try:
        return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # unreadable here; the worker loads the model and will say what is wrong
        return None


def model_identity(path: Path) -> str:
    """A short, stable fingerprint of a base model, stored in every adapter trained on it: an adapter
    only suits the weights it was trained against. Reads configs and file sizes, not gigabytes."""
    import hashlib

    digest = hashlib.sha256()
    if path.is_dir():
        installed_hash = (read_record(path) or {}).get("sha256")
        if installed_hash:  # an installed model: its content hash, not its record (which has a date)
            digest.update(installed_hash.encode())
        for name in ("model_index.json", "unet/config.json", "text_encoder/config.json", MARKER):
            if (path / name).exists() and not (name == MARKER and installed_hash):
                digest.update(name.encode() + (path / name).read_bytes())
        for weights in sorted(path.glob("*/*.safetensors")) + sorted(path.glob("*/*.bin")):
            digest.update(f"{weights.relative_to(path)}:{weights.stat().st_size}".encode())
    else:
        digest.update(f"{path.name}:{path.stat().st_size}".encode())
    return f"{path.name}-{digest.hexdigest()[:16]}"


def describe_base_model(base_model: str, models_dir: Path) -> dict:
    """What LIFEBOOK_BASE_MODEL names, without loading or building anything (for the admin):
    {"name", "kind": "demo" | "installed" | "folder" | "file" | "missing", and an installed model's record}."""
    if base_model in BUILT_IN:
        return {"name": base_model, "kind": "demo"}
    installed = Path(models_dir) / base_model
    if "/" not in base_model and (installed / MARKER).exists():
        record = read_record(installed) or {}
        kind = "demo" if record.get("demo", True) else "installed"
        return {"name": base_model, "kind": kind, "path": str(installed), **{
            key: record[key] for key in ("sha256", "source", "installed_at") if key in record}}
    path = Path(base_model).expanduser()
    if path.is_dir():
        return {"name": path.name, "kind": "demo" if _is_demo(path) else "folder", "path": str(path)}
    if path.is_file():
        return {"name": path.name, "kind": "file", "path": str(path)}
    return {"name": base_model, "kind": "missing"}
