"""manage.py install_model: each wrong file is named in one sentence; the Hub offline is one line;
the workers' model shows in the admin; a full-size SD1.5 single file installs and draws like its folder."""

import json
from pathlib import Path
import shutil

import pytest
import torch
from django.core.management import CommandError, call_command
from django.urls import reverse
from safetensors.torch import load_file, save_file

from generation.engine.install import UNET_CONTEXT, UNET_IN
from tests import factories

SD15_PARTS = {  # a header that looks like SD1.5's; only names and shapes are read
    UNET_IN: torch.zeros(320, 4, 3, 3, dtype=torch.float16),
    UNET_CONTEXT: torch.zeros(320, 768, dtype=torch.float16),
    "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight": torch.zeros(77, 8, dtype=torch.float16),
    "first_stage_model.encoder.conv_in.weight": torch.zeros(2, dtype=torch.float16),
}


def _sd2():
    parts = {**SD15_PARTS, UNET_CONTEXT: torch.zeros(320, 1024, dtype=torch.float16)}
    parts.pop("cond_stage_model.transformer.text_model.embeddings.position_embedding.weight")
    return {**parts, "cond_stage_model.model.token_embedding.weight": torch.zeros(2)}


BAD_FILES = {
    "sd2.safetensors": (_sd2, "is a Stable Diffusion 2 checkpoint"),
    "sdxl.safetensors": (lambda: {"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(2),
                                  "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)},
                         "is a Stable Diffusion XL checkpoint"),
    "inpainting.safetensors": (lambda: {**SD15_PARTS, UNET_IN: torch.zeros(320, 9, 3, 3, dtype=torch.float16)},
                               "is an inpainting checkpoint \\(its UNet takes 9 channels\\)"),
    "subject.safetensors": (lambda: {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 8),
                                     "lora_unet_down_blocks_0_attentions_0_proj_in.alpha": torch.tensor(4.0)},
                            "is a LoRA \\(an adapter that changes a base model\\), not a base model"),
    "notes.safetensors": (lambda: {"just.some.numbers": torch.zeros(3)}, "is not a Stable Diffusion checkpoint"),
    "no-vae.safetensors": (lambda: {k: v for k, v in SD15_PARTS.items() if not k.startswith("first_stage")},
                           "has a Stable Diffusion 1.5 UNet but no VAE"),
}


def tiny_model(models_dir):
    """The tiny model's folder, built on first use (a fresh clone has none yet)."""
    from generation.engine.models import resolve_source

    return resolve_source("tiny", models_dir)[0]


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.LIFEBOOK_MODELS_DIR = tmp_path / "models"
    return settings.LIFEBOOK_MODELS_DIR


@pytest.mark.parametrize("filename", BAD_FILES)
def test_each_wrong_file_is_named(models_dir, tmp_path, filename):
    make, message = BAD_FILES[filename]
    path = tmp_path / filename
    save_file(make(), str(path))
    with pytest.raises(CommandError, match=f"^{filename} {message}"):
        call_command("install_model", str(path))
    assert not models_dir.exists() or not list(models_dir.iterdir())  # nothing left behind


def test_a_ckpt_is_read_too(models_dir, tmp_path):
    path = tmp_path / "inpainting.ckpt"
    torch.save({"state_dict": {**SD15_PARTS, UNET_IN: torch.zeros(320, 9, 3, 3)}, "global_step": 1}, str(path))
    with pytest.raises(CommandError, match="^inpainting.ckpt is an inpainting checkpoint"):
        call_command("install_model", str(path))


def test_a_truncated_or_random_file_is_called_damaged(models_dir, tmp_path):
    whole = tmp_path / "whole.safetensors"
    save_file(SD15_PARTS, str(whole))
    truncated = tmp_path / "v1-5-pruned-emaonly.safetensors"
    truncated.write_bytes(whole.read_bytes()[:-1000])
    with pytest.raises(CommandError, match="^v1-5-pruned-emaonly.safetensors cannot be read as a model file: "
                                           "it is damaged or incomplete"):
        call_command("install_model", str(truncated))
    noise = tmp_path / "noise.ckpt"
    noise.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(CommandError, match="^noise.ckpt cannot be read as a model file"):
        call_command("install_model", str(noise))


def test_a_missing_source_and_a_bad_name_are_refused(models_dir, tmp_path):
    with pytest.raises(CommandError, match="there is no such file or folder here"):
        call_command("install_model", str(tmp_path / "nothing.safetensors"))
    path = tmp_path / "model.safetensors"
    save_file(SD15_PARTS, str(path))
    with pytest.raises(CommandError, match="'tiny' cannot be a model name"):
        call_command("install_model", str(path), name="tiny")


def test_a_hub_id_offline_is_one_clear_line(models_dir, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 does
    with pytest.raises(CommandError) as error:
        call_command("install_model", "lifebook-tests/not-a-real-model")
    message = str(error.value)
    assert message.startswith("Could not download lifebook-tests/not-a-real-model from the Hugging Face Hub")
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.django_db
def test_the_admin_shows_which_model_the_workers_use(client, settings, models_dir):
    from tests.engine.conftest import MODELS_DIR

    client.force_login(factories.UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse("admin:generation_generationjob_changelist")
    settings.LIFEBOOK_BASE_MODEL = "tiny"
    assert "The workers use the demo model “tiny”" in client.get(url).content.decode()
    settings.LIFEBOOK_BASE_MODEL = "my-sd15"
    assert "but it is not on this machine" in client.get(url).content.decode()
    folder = models_dir / "my-sd15"  # what install_model leaves: a diffusers folder and its record
    shutil.copytree(tiny_model(MODELS_DIR), folder)
    (folder / "lifebook_model.json").write_text(json.dumps({
        "name": "my-sd15", "sha256": "ab" * 32, "source": "/downloads/my-sd15.safetensors", "demo": False}))
    page = client.get(reverse("admin:generation_trainingjob_changelist")).content.decode()
    assert "The workers use the installed model “my-sd15”" in page
    assert "/downloads/my-sd15.safetensors" in page and "abababab" in page


def test_an_installed_name_resolves_to_its_folder(models_dir):
    from generation.engine.models import (build_tiny_tokenizer, is_demo_model, load_tokenizer, model_identity,
                                          resolve_source)
    from tests.engine.conftest import MODELS_DIR

    folder = models_dir / "my-sd15"
    shutil.copytree(tiny_model(MODELS_DIR), folder)
    (folder / "lifebook_model.json").write_text(json.dumps({"name": "my-sd15", "sha256": "cd" * 32, "demo": False}))
    assert resolve_source("my-sd15", models_dir) == (folder, False)
    assert is_demo_model("my-sd15", models_dir) is False  # so it never gets the demo recipe
    assert is_demo_model(str(folder), models_dir) is False
    assert load_tokenizer("my-sd15", models_dir)("a house").input_ids == build_tiny_tokenizer()("a house").input_ids
    before = model_identity(folder)
    (folder / "lifebook_model.json").write_text(json.dumps({"name": "my-sd15", "sha256": "cd" * 32, "demo": False,
                                                            "installed_at": "2030-01-01T00:00:00+00:00"}))
    assert model_identity(folder) == before  # a re-install date does not orphan the adapters


@pytest.mark.slow
def test_a_full_size_sd15_single_file_installs_and_draws_like_its_folder(models_dir, settings, tmp_path, capsys):
    """sd15-random (SD1.5 at full size, random weights) written in the original single-file layout by the
    tests' converter, installed by the command, draws the same picture as the diffusers folder it came from."""
    import numpy as np
    from diffusers import StableDiffusionPipeline

    from generation.engine import Engine, EngineOptions
    from generation.engine.install import build_clip_tokenizer
    from generation.engine.models import resolve_source
    from tests.engine.conftest import MODELS_DIR
    from tests.sd15_single_file import write_single_file

    original, _ = resolve_source("sd15-random", MODELS_DIR)  # built once (~4 GB), reused
    pipe = StableDiffusionPipeline.from_pretrained(original, torch_dtype=torch.float16, safety_checker=None)
    single = write_single_file(pipe, tmp_path / "v1-5-pruned-emaonly.safetensors")
    del pipe

    call_command("install_model", str(single))
    installed = models_dir / "v1-5-pruned-emaonly"
    record = json.loads((installed / "lifebook_model.json").read_text())
    assert record["name"] == "v1-5-pruned-emaonly" and record["source"] == str(single.resolve())
    assert len(record["sha256"]) == 64 and not record["demo"]
    assert (installed / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size < 2 * 900_000_000  # fp16
    assert "Installed v1-5-pruned-emaonly" in capsys.readouterr().out
    call_command("install_model", str(single))
    assert "already installed" in capsys.readouterr().out

    # the same weights from their diffusers folder: the same fp16 UNet, another record
    call_command("install_model", str(original), name="from-folder")
    from_folder_record = json.loads((models_dir / "from-folder" / "lifebook_model.json").read_text())
    assert from_folder_record["format"] == "diffusers" and from_folder_record["sha256"] != record["sha256"]
    unet_file = "unet/diffusion_pytorch_model.safetensors"
    from_file_unet, from_folder_unet = load_file(str(installed / unet_file)), load_file(str(models_dir / "from-folder" / unet_file))
    assert from_file_unet.keys() == from_folder_unet.keys()
    assert all(torch.equal(from_file_unet[key], from_folder_unet[key]) for key in from_file_unet)
    del from_file_unet, from_folder_unet
    shutil.rmtree(models_dir / "from-folder")

    def picture(base_model, models):
        engine = Engine(EngineOptions(base_model=base_model, models_dir=models))
        return engine, np.asarray(engine.txt2img("a photo of a cat", width=64, height=64, steps=2, seed=7).images[0])

    engine, by_name = picture("v1-5-pruned-emaonly", models_dir)
    assert not engine.is_demo_model and engine.model_name == "v1-5-pruned-emaonly"
    del engine
    # sd15-random was built with the tiny tokenizer and its own scheduler settings; its weights are read
    # here as a diffusers folder with SD1.5's tokenizer and published scheduler (timesteps "leading"),
    # so that only the way the weights came differs
    folder = tmp_path / "sd15-random-as-published"
    folder.mkdir()
    for part in ("unet", "vae", "text_encoder"):
        (folder / part).symlink_to(original.resolve() / part)
    (folder / "scheduler").symlink_to(installed / "scheduler")
    shutil.copy(original / "model_index.json", folder)
    build_clip_tokenizer().save_pretrained(str(folder / "tokenizer"))
    _, from_folder = picture(str(folder), MODELS_DIR)
    # fp16 weights (the install) against fp32 ones: the same picture but for rounding (measured: max 1)
    difference = np.abs(by_name.astype(int) - from_folder.astype(int))
    assert difference.max() <= 3 and difference.mean() < 0.5


def test_a_different_model_under_a_taken_name_is_refused_and_the_installed_one_kept(models_dir, tmp_path):
    import generation.engine

    source = tmp_path / "my-sd15"  # SD1.5's own configs: a folder that passes the checks
    shutil.copytree(Path(generation.engine.__file__).parent / "sd15", source)
    installed = models_dir / "my-sd15"
    installed.mkdir(parents=True)
    record = json.dumps({"name": "my-sd15", "sha256": "00" * 32, "demo": False})
    (installed / "lifebook_model.json").write_text(record)
    with pytest.raises(CommandError, match="A different model is already installed as 'my-sd15'"):
        call_command("install_model", str(source))
    assert (installed / "lifebook_model.json").read_text() == record
    assert sorted(p.name for p in models_dir.iterdir()) == ["my-sd15"]  # no staging folder left
