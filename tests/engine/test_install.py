"""SD1.5 offline: the shipped configs and CLIP tokenizer, single-file loading, adapters bound to their base model."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from generation.engine import Adapter, Engine, EngineInputError, EngineOptions
from generation.engine.install import SD15_CONFIG_DIR, build_clip_tokenizer, write_config_folder
from generation.engine.models import SD15_UNET_CONFIG, load_tokenizer
from tests.engine.conftest import MODELS_DIR

OK = dict(width=64, height=64, steps=2)


@pytest.fixture(scope="module")
def clip_tokenizer():
    return build_clip_tokenizer()


def test_the_tokenizer_gives_clips_published_ids(clip_tokenizer):
    assert clip_tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert len(clip_tokenizer) == 49408 and clip_tokenizer.model_max_length == 77
    assert clip_tokenizer.pad_token == "<|endoftext|>" and clip_tokenizer.pad_token_id == 49407


@pytest.mark.parametrize("text", [
    "Grandma's garden in 1962, watercolour!",
    "a sks man hiking   in the Alps at dusk",
    "café, ünïcödé and an emoji 😀 — in one line",
    "THE BASILICA OF ST. PETER'S (close-up)",
])
def test_the_tokenizer_agrees_with_instant_clip_tokenizer(clip_tokenizer, text):
    from instant_clip_tokenizer import Tokenizer

    ours = clip_tokenizer(text).input_ids
    assert ours[0] == 49406 and ours[-1] == 49407
    assert ours[1:-1] == list(Tokenizer().encode(text))


def test_the_shipped_configs_are_sd15s(tmp_path):
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig

    unet = UNet2DConditionModel.load_config(SD15_CONFIG_DIR / "unet")
    for key, value in SD15_UNET_CONFIG.items():
        assert tuple(unet[key]) == value if isinstance(value, tuple) else unet[key] == value, key
    vae = AutoencoderKL.load_config(SD15_CONFIG_DIR / "vae")
    assert vae["scaling_factor"] == 0.18215 and vae["block_out_channels"] == [128, 256, 512, 512]
    text = CLIPTextConfig.from_pretrained(SD15_CONFIG_DIR / "text_encoder")
    assert (text.hidden_size, text.num_hidden_layers, text.vocab_size, text.hidden_act) == (768, 12, 49408, "quick_gelu")
    scheduler = PNDMScheduler.from_pretrained(SD15_CONFIG_DIR / "scheduler")
    assert scheduler.config.steps_offset == 1 and scheduler.config.beta_schedule == "scaled_linear"
    folder = write_config_folder(tmp_path / "sd15")
    assert json.loads((folder / "model_index.json").read_text())["tokenizer"] == ["transformers", "CLIPTokenizer"]
    assert not list(folder.rglob("*.safetensors"))  # configs only: no weights ship


def test_a_single_file_loads_with_the_same_pixels_as_its_folder(tmp_path):
    """The tiny model written in the original single-file layout (by the tests' converter) and loaded
    with LIFEBOOK_BASE_MODEL_CONFIG naming its architecture gives the folder's picture."""
    from diffusers import StableDiffusionPipeline

    from generation.engine.models import resolve_source
    from tests.sd15_single_file import write_single_file

    tiny = resolve_source("tiny", MODELS_DIR)[0]  # built on first use
    pipe = StableDiffusionPipeline.from_pretrained(tiny, safety_checker=None)
    single = write_single_file(pipe, tmp_path / "tiny.safetensors", dtype=torch.float32)
    del pipe
    folder = Engine(EngineOptions(base_model="tiny", models_dir=MODELS_DIR)).txt2img("a house", seed=3, **OK)
    loaded = Engine(EngineOptions(base_model=str(single), models_dir=MODELS_DIR, base_model_config=str(tiny)))
    from_file = loaded.txt2img("a house", seed=3, **OK)
    # The same weights, so the same picture; CPU kernels may round a few values one step apart (one
    # full run saw it), while a wrong conversion changes every pixel.
    difference = np.abs(np.asarray(folder.images[0], dtype=int) - np.asarray(from_file.images[0], dtype=int))
    assert difference.max() <= 3 and difference.mean() < 0.5
    assert loaded.model_name == "tiny.safetensors"


def test_a_single_file_uses_the_shipped_tokenizer(tmp_path):
    checkpoint = tmp_path / "v1-5.safetensors"
    checkpoint.write_bytes(b"")  # the tokenizer is chosen without reading the weights
    tokenizer = load_tokenizer(str(checkpoint), tmp_path)
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_an_adapter_trained_on_another_base_model_is_refused(engine, lora_files, tmp_path):
    other = tmp_path / "other.safetensors"
    save_file(load_file(str(lora_files["a"])), str(other), metadata={
        "format": "pt", "lifebook.base_model": "my-fine-tune", "lifebook.base_model_identity": "my-fine-tune-0123456789abcdef"})
    with pytest.raises(EngineInputError, match="'other' was trained on another base model \\(my-fine-tune\\)"):
        engine.txt2img("a house", adapters=[Adapter("other", 1.0, other)], seed=1, **OK)
    assert "other" not in engine.resident_adapters
    same = tmp_path / "same.safetensors"  # the identity of this engine's own model is accepted
    save_file(load_file(str(lora_files["a"])), str(same), metadata={
        "format": "pt", "lifebook.base_model": "tiny", "lifebook.base_model_identity": engine.model_identity})
    engine.txt2img("a house", adapters=[Adapter("same", 1.0, same)], seed=1, **OK)
    assert "same" in engine.resident_adapters
