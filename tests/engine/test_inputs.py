"""Bad input gets a precise EngineInputError before any work, never a diffusers traceback."""

import subprocess
import sys

import pytest
from PIL import Image

from generation.engine import Adapter, Cancelled, EngineInputError, Region
from tests.engine.conftest import ROOT, box_mask

OK = dict(width=64, height=64, steps=2)


@pytest.mark.parametrize("call, message", [
    (lambda e: e.txt2img("", **OK), "description is empty"),
    (lambda e: e.txt2img("   ", **OK), "description is empty"),
    (lambda e: e.txt2img("a", width=100, height=64, steps=2), "multiple of 8"),
    (lambda e: e.txt2img("a", width=64, height=4096, steps=2), "from 64 to 2048"),
    (lambda e: e.txt2img("a", width=64, height=64, steps=0), "steps must be"),
    (lambda e: e.txt2img("a", width=64, height=64, steps=2.5), "steps must be"),
    (lambda e: e.txt2img("a", guidance=-1, **OK), "guidance must be"),
    (lambda e: e.txt2img("a", seed=-3, **OK), "seed must be"),
    (lambda e: e.txt2img("a", num_images=50, **OK), "num_images"),
    (lambda e: e.txt2img("a", adapters=[Adapter("nobody")], **OK), "Unknown adapter 'nobody'"),
    (lambda e: e.txt2img("a", adapters=[Adapter("x", 9.0, "/nope")], **OK), "weight must be between"),
    (lambda e: e.img2img(Image.new("RGB", (64, 64)), "a", strength=0, steps=2), "strength must be"),
    (lambda e: e.img2img(Image.new("RGB", (64, 64)), "a", strength=1.5, steps=2), "strength must be"),
    (lambda e: e.img2img(Image.new("RGB", (64, 64)), "a", strength=0.1, steps=5), "leaves no step"),
    (lambda e: e.img2img(Image.new("RGB", (65, 64)), "a", steps=2), "multiples of 8"),
    (lambda e: e.img2img(Image.new("RGB", (64, 64)), "a", width=64, steps=2), "both width and height"),
    (lambda e: e.inpaint(Image.new("RGB", (64, 64)), Image.new("L", (32, 32)), "a", steps=2), "mask is 32×32"),
    (lambda e: e.inpaint(Image.new("RGB", (64, 64)), Image.new("L", (64, 64)), "a", steps=2), "mask is empty"),
    (lambda e: e.inpaint(Image.new("RGB", (64, 64)), box_mask((64, 64), (0, 0, 8, 8)), "a", mask_mode="x", steps=2), "mask_mode"),
    (lambda e: e.inpaint(Image.new("RGB", (64, 64)), box_mask((64, 64), (0, 0, 8, 8)), "a", masked_content="x", steps=2), "masked_content"),
    (lambda e: e.inpaint(Image.new("RGB", (64, 64)), box_mask((64, 64), (0, 0, 8, 8)), "a", mask_blur=-1, steps=2), "mask_blur"),
    (lambda e: e.compose("a", [], **OK), "at least one region"),
    (lambda e: e.compose("a", [Region(Adapter("p", path="/x"), "p", (0, 0, 99, 10))], **OK), "not inside"),
    (lambda e: e.compose("a", [Region(Adapter("p", path="/x"), "p", (0, 0, 4, 64))], **OK), "too small"),
    (lambda e: e.compose("a", [Region(Adapter("p", path="/x"), "p", (0, 0, 32, 64)),
                               Region(Adapter("p", path="/x"), "q", (32, 0, 64, 64))], **OK), "two regions"),
    (lambda e: e.compose("a", [Region(Adapter("p", path="/x"), "p", (0, 0, 32, 64))], layout_fraction=1.0, **OK),
     "layout_fraction must be"),
    (lambda e: e.txt2img("a", faces=[Region(Adapter("p", path="/x"), "p", (0, 0, 99, 10))], **OK), "not inside"),
])
def test_bad_input_is_a_clear_error(engine, call, message):
    with pytest.raises(EngineInputError, match=message):
        call(engine)


def test_a_prompt_longer_than_clip_is_used_whole(engine):
    head = "a photo of an old man " * 14  # about 84 tokens: past CLIP's 77
    long_one = engine.txt2img(head + "with a red umbrella", **OK, seed=1)
    other_tail = engine.txt2img(head + "with a blue bicycle", **OK, seed=1)
    assert long_one.parameters["prompt_tokens"] > 77
    assert long_one.image.tobytes() != other_tail.image.tobytes()  # the words after token 77 still count


def test_a_prompt_too_long_for_any_use_says_so(engine):
    with pytest.raises(EngineInputError, match="description is too long"):
        engine.txt2img("word " * 400, **OK)


def test_cancel_stops_within_one_step(engine):
    steps_done = []

    def cancel():
        return len(steps_done) >= 2

    with pytest.raises(Cancelled):
        engine.txt2img("a lake", width=64, height=64, steps=10, seed=1, progress=lambda u: steps_done.append(u.step),
                       cancel=cancel)
    assert steps_done == [1, 2]


def test_cancel_before_starting_runs_nothing(engine):
    steps_done = []
    with pytest.raises(Cancelled):
        engine.txt2img("a lake", **OK, progress=steps_done.append, cancel=lambda: True)
    assert steps_done == []


def test_importing_the_engine_imports_no_django():
    code = "import sys, generation.engine, generation.engine.__main__; print('django' in ''.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "False", result.stderr


def test_the_tiny_model_builds_the_same_every_time(tmp_path):
    from safetensors.torch import load_file

    from generation.engine.models import build_builtin

    first = build_builtin("tiny", tmp_path / "one")
    second = build_builtin("tiny", tmp_path / "two")
    for part in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors"):
        a, b = load_file(first / part), load_file(second / part)
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a), part


def test_an_unknown_base_model_is_a_clear_error(tmp_path):
    from generation.engine import Engine, EngineConfigError, EngineOptions

    with pytest.raises(EngineConfigError, match="neither 'tiny'"):
        Engine(EngineOptions(base_model=str(tmp_path / "nothing-here"), models_dir=tmp_path))
    not_a_model = tmp_path / "folder"
    not_a_model.mkdir()
    with pytest.raises(EngineConfigError, match="not a diffusers model"):
        Engine(EngineOptions(base_model=str(not_a_model), models_dir=tmp_path))


def test_a_diffusers_folder_loads_as_a_base_model(tmp_path):
    """The real loading path for SD1.5 weights, on a copy of the tiny model's folder."""
    import shutil

    from generation.engine import Engine, EngineOptions
    from generation.engine.models import resolve_source
    from tests.engine.conftest import MODELS_DIR

    folder = tmp_path / "my-sd15"
    shutil.copytree(resolve_source("tiny", MODELS_DIR)[0], folder, ignore=shutil.ignore_patterns("lifebook_model.json"))
    engine = Engine(EngineOptions(base_model=str(folder), models_dir=tmp_path))
    result = engine.txt2img("a house", **OK, seed=1)
    assert not result.is_demo_model and result.parameters["base_model"] == "my-sd15"


def test_a_single_file_that_is_not_a_checkpoint_is_a_clear_error(tmp_path):
    import torch
    from safetensors.torch import save_file

    from generation.engine import Engine, EngineConfigError, EngineOptions

    checkpoint = tmp_path / "model.safetensors"
    save_file({"not.a.model": torch.zeros(2)}, str(checkpoint))
    with pytest.raises(EngineConfigError, match="model.safetensors is not a Stable Diffusion checkpoint"):
        Engine(EngineOptions(base_model=str(checkpoint), models_dir=tmp_path))
