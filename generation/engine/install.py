"""Installing a real Stable Diffusion 1.5 once, offline: a single checkpoint file (the layout SD1.5 and
its fine-tunes are distributed in), a diffusers folder, or a Hugging Face Hub id.

What a single file lacks (the configs of its parts and the tokenizer) ships with the project:
`sd15/` holds the published configs of runwayml/stable-diffusion-v1-5, and the CLIP tokenizer is
built from the BPE merges that the `instant-clip-tokenizer` wheel embeds (OpenAI's
`bpe_simple_vocab_16e6.txt`, MIT). Nothing is fetched at run time.

The checks read only tensor names and shapes (a safetensors header), so a wrong file is refused in
a second with one sentence naming what it is, before gigabytes are loaded.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .errors import EngineConfigError
from .models import BUILT_IN, MARKER, bytes_to_unicode, read_record

SD15_CONFIG_DIR = Path(__file__).with_name("sd15")
CLIP_MERGES = 49152 - 256 - 2  # CLIP's simple_tokenizer keeps merges[1:48895]: 48894 of them
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

Progress = Callable[[str, int, int], None]  # (stage, done, total)


# --- the CLIP tokenizer, from merges that ship in a wheel ------------------------------------------

def clip_merges() -> list[str]:
    """The 48894 merges CLIP uses, read from instant-clip-tokenizer's compiled module, where OpenAI's
    `bpe_simple_vocab_16e6.txt` is embedded as plain text (so no torch-heavy package is needed)."""
    spec = importlib.util.find_spec("instant_clip_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise EngineConfigError("The package instant-clip-tokenizer is not installed; it carries CLIP's vocabulary.")
    folder = Path(list(spec.submodule_search_locations)[0])
    for module in sorted(folder.glob("instant_clip_tokenizer*")):
        data = module.read_bytes()
        start = data.find(b"#version: 0.2\n")
        if start < 0:
            continue
        lines = data[start:start + 1_000_000].split(b"\n")[1:CLIP_MERGES + 1]
        merges = [line.decode("utf-8") for line in lines]
        if len(merges) == CLIP_MERGES and all(len(m.split(" ")) == 2 for m in merges):
            return merges
    raise EngineConfigError(f"CLIP's vocabulary was not found inside instant-clip-tokenizer in {folder}.")


def build_clip_tokenizer():
    """CLIP ViT-L/14's tokenizer (SD1.5's), its vocabulary built as CLIP's simple_tokenizer builds it."""
    from transformers import CLIPTokenizer

    merges = clip_merges()
    symbols = list(bytes_to_unicode().values())
    words = symbols + [s + "</w>" for s in symbols] + ["".join(m.split(" ")) for m in merges]
    words += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {word: index for index, word in enumerate(words)}
    pairs = [tuple(m.split(" ")) for m in merges]
    return CLIPTokenizer(vocab=vocab, merges=pairs, model_max_length=77, pad_token="<|endoftext|>")


def write_config_folder(target: Path) -> Path:
    """A diffusers-layout folder with SD1.5's configs and tokenizer and no weights: what
    `from_single_file(config=...)` needs to convert a checkpoint without a network."""
    shutil.copytree(SD15_CONFIG_DIR, target, ignore=shutil.ignore_patterns("__pycache__", "*.py"),
                    dirs_exist_ok=True)
    build_clip_tokenizer().save_pretrained(str(target / "tokenizer"))
    return target


# --- what a checkpoint file is -----------------------------------------------------------------------

UNET_IN = "model.diffusion_model.input_blocks.0.0.weight"
UNET_CONTEXT = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
TEXT_ENCODER_PREFIXES = ("cond_stage_model.transformer.",)
VAE_PREFIX = "first_stage_model."


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape. A safetensors file is read from its header only."""
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
        import torch

        state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise ValueError("not a dictionary of tensors")
        return {key: tuple(value.shape) for key, value in state.items() if hasattr(value, "shape")}
    except Exception as exc:
        raise EngineConfigError(
            f"{path.name} cannot be read as a model file: it is damaged or incomplete "
            f"(perhaps a download that stopped early) ({exc})."
        ) from exc


def check_sd15_checkpoint(path: Path) -> dict[str, tuple[int, ...]]:
    """Raise EngineConfigError with one sentence naming what the file is, unless it is a whole SD1.5
    checkpoint in the original layout (UNet, VAE and CLIP ViT-L text encoder)."""
    if path.suffix.lower() not in (".safetensors", ".ckpt"):
        raise EngineConfigError(f"{path.name}: a Stable Diffusion 1.5 checkpoint is a .safetensors or .ckpt file.")
    shapes = read_shapes(path)
    keys = list(shapes)
    if any(".lora_down." in k or ".lora_up." in k or "lora_A" in k or "lora_B" in k
           or k.startswith(("lora_unet_", "lora_te")) for k in keys):
        raise EngineConfigError(
            f"{path.name} is a LoRA (an adapter that changes a base model), not a base model: "
            "install the Stable Diffusion 1.5 checkpoint it was made for instead."
        )
    if any(k.startswith("conditioner.embedders.") for k in keys):
        raise EngineConfigError(f"{path.name} is a Stable Diffusion XL checkpoint; Lifebook uses Stable Diffusion 1.5.")
    if UNET_IN not in shapes:
        raise EngineConfigError(f"{path.name} is not a Stable Diffusion checkpoint: it has no UNet weights.")
    context = shapes.get(UNET_CONTEXT, (0, 0))[-1]
    if context == 2048:
        raise EngineConfigError(f"{path.name} is a Stable Diffusion XL checkpoint; Lifebook uses Stable Diffusion 1.5.")
    if context == 1024 or any(k.startswith("cond_stage_model.model.") for k in keys):
        raise EngineConfigError(
            f"{path.name} is a Stable Diffusion 2 checkpoint (OpenCLIP text encoder); Lifebook uses Stable Diffusion 1.5."
        )
    channels = shapes[UNET_IN][1] if len(shapes[UNET_IN]) == 4 else None
    if channels == 9:
        raise EngineConfigError(
            f"{path.name} is an inpainting checkpoint (its UNet takes 9 channels); install the ordinary "
            "Stable Diffusion 1.5 model: Lifebook fills in masked areas with it."
        )
    if channels != 4 or shapes[UNET_IN][0] != 320 or context != 768:
        raise EngineConfigError(
            f"{path.name} is not Stable Diffusion 1.5: its UNet has shape {list(shapes[UNET_IN])} "
            f"and cross-attention width {context} (SD1.5 has [320, 4, 3, 3] and 768)."
        )
    if not any(k.startswith(TEXT_ENCODER_PREFIXES) for k in keys):
        raise EngineConfigError(f"{path.name} has a Stable Diffusion 1.5 UNet but no CLIP text encoder.")
    if not any(k.startswith(VAE_PREFIX) for k in keys):
        raise EngineConfigError(f"{path.name} has a Stable Diffusion 1.5 UNet but no VAE (image decoder).")
    return shapes


def check_sd15_folder(path: Path) -> None:
    """The same, for a diffusers folder (read from its config files)."""
    def config(name):
        try:
            return json.loads((path / name).read_text())
        except (OSError, ValueError) as exc:
            raise EngineConfigError(f"{path.name} is not a diffusers model folder: {name} is missing or unreadable.") from exc

    index = config("model_index.json")
    if "XL" in str(index.get("_class_name", "")):
        raise EngineConfigError(f"{path.name} is a Stable Diffusion XL model; Lifebook uses Stable Diffusion 1.5.")
    unet = config("unet/config.json")
    if unet.get("cross_attention_dim") == 1024:
        raise EngineConfigError(f"{path.name} is a Stable Diffusion 2 model; Lifebook uses Stable Diffusion 1.5.")
    if unet.get("in_channels") == 9:
        raise EngineConfigError(f"{path.name} is an inpainting model (its UNet takes 9 channels); install the ordinary SD1.5.")
    if unet.get("in_channels") != 4 or unet.get("cross_attention_dim") != 768:
        raise EngineConfigError(f"{path.name} is not Stable Diffusion 1.5 (UNet in_channels "
                                f"{unet.get('in_channels')}, cross-attention {unet.get('cross_attention_dim')}).")


# --- installing ----------------------------------------------------------------------------------------

@dataclass
class Installed:
    name: str
    path: Path
    sha256: str
    source: str
    already: bool = False  # the same content was installed before; nothing was written


def content_hash(path: Path, progress: Progress | None = None) -> str:
    """sha256 of a file, or of a folder's files (names and contents, in a fixed order)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and p.name != MARKER
                                                 and ".cache" not in p.relative_to(path).parts)
    total = sum(f.stat().st_size for f in files)
    digest, done = hashlib.sha256(), 0
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(16 << 20):
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress("hashing", done, total)
    return digest.hexdigest()


def default_name(source: str) -> str:
    stem = source.rstrip("/").split("/")[-1]
    stem = re.sub(r"\.(safetensors|ckpt)$", "", stem, flags=re.I)
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:64] or "model"


def _download(repo_id: str, progress: Progress | None) -> Path:
    """A Hub snapshot (diffusers layout); one sentence when the Hub cannot be reached."""
    if progress:
        progress("downloading", 0, 1)
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(repo_id, allow_patterns=[
            "model_index.json", "*/config.json", "scheduler/*", "tokenizer/*", "unet/*.safetensors",
            "vae/*.safetensors", "text_encoder/*.safetensors",
        ], ignore_patterns=["*.fp16.safetensors", "*non_ema*", "*.bin"])
    except Exception as exc:  # offline, unknown repo, gated repo...: one clear line, not a traceback
        reason = type(exc).__name__
        raise EngineConfigError(
            f"Could not download {repo_id} from the Hugging Face Hub ({reason}): this machine may have no "
            "internet. Download the model elsewhere and give its .safetensors file or folder instead."
        ) from exc
    if progress:
        progress("downloading", 1, 1)
    return Path(folder)


def install_model(source: str, models_dir: Path, name: str | None = None,
                  progress: Progress | None = None) -> Installed:
    """Convert `source` once into an fp16 diffusers folder `models_dir/<name>` with an install record.
    Written into a staging folder and renamed: an interrupted install leaves nothing behind."""
    import torch
    from diffusers import StableDiffusionPipeline

    path = Path(source).expanduser()
    if path.exists():
        kind = "single-file" if path.is_file() else "diffusers"
        recorded_source = str(path.resolve())
    elif HUB_ID.match(source) and not source.lower().endswith((".safetensors", ".ckpt")):
        kind, recorded_source = "hub", source
    else:
        raise EngineConfigError(f"{source}: there is no such file or folder here (nor is it a Hub id such as 'owner/model').")

    name = name or default_name(source)
    if not NAME.match(name) or name in BUILT_IN:
        raise EngineConfigError(f"{name!r} cannot be a model name: use lowercase letters, digits, '.', '-' or '_', "
                                f"and not {' or '.join(BUILT_IN)}.")
    models_dir = Path(models_dir)
    target = models_dir / name

    if kind == "single-file":
        check_sd15_checkpoint(path)
    elif kind == "diffusers":
        check_sd15_folder(path)
    else:
        path = _download(source, progress)
        check_sd15_folder(path)
    sha256 = content_hash(path, progress)

    existing = read_record(target) if target.exists() else None
    if existing and existing.get("sha256") == sha256:
        return Installed(name, target, sha256, recorded_source, already=True)
    if target.exists():
        raise EngineConfigError(f"A different model is already installed as {name!r} in {models_dir}; "
                                "choose another name or remove that folder first.")

    models_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
    try:
        if progress:
            progress("converting", 0, 1)
        common = dict(torch_dtype=torch.float16, safety_checker=None, requires_safety_checker=False)
        if kind == "single-file":
            config = write_config_folder(staging / ".config")
            try:
                pipe = StableDiffusionPipeline.from_single_file(str(path), config=str(config),
                                                                local_files_only=True, **common)
            except Exception as exc:
                raise EngineConfigError(f"{path.name} passed the checks but could not be converted ({exc}).") from exc
            finally:
                shutil.rmtree(config, ignore_errors=True)
        else:
            # a Hub snapshot lists a feature extractor (for the safety checker) whose files are not fetched
            pipe = StableDiffusionPipeline.from_pretrained(str(path), local_files_only=True, feature_extractor=None,
                                                           **common)
            if not (path / "tokenizer").is_dir():  # a folder without its tokenizer gets SD1.5's
                pipe.tokenizer = build_clip_tokenizer()
        if progress:
            progress("converting", 1, 1)
            progress("saving", 0, 1)
        pipe.save_pretrained(str(staging), safe_serialization=True)
        del pipe
        import diffusers

        record = dict(name=name, sha256=sha256, source=recorded_source, format=kind, demo=False,
                      installed_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      diffusers_version=diffusers.__version__, dtype="float16")
        (staging / MARKER).write_text(json.dumps(record, indent=2))
        os.replace(staging, target)
        if progress:
            progress("saving", 1, 1)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Installed(name, target, sha256, recorded_source)
