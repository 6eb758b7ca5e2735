"""LoRA training on the tiny model, on the CPU, at 64 px: loss, resume, cancel, checkpoints, errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from generation.engine import Adapter, Cancelled, EngineInputError, EngineOptions
from generation.engine.lora_formats import read_metadata
from generation.engine.training import Trainer, TrainingOptions, check_token, default_steps

from .conftest import MODELS_DIR

TOKEN = "sqgkhoju"


@pytest.fixture(scope="module")
def trainer():
    return Trainer(EngineOptions(base_model="tiny", models_dir=MODELS_DIR))


def easy_photos(count=4, size=96):
    """Distinct, sharp pictures: a coloured field with a random texture each, so none is a near-duplicate."""
    photos = []
    for index in range(count):
        rng = np.random.default_rng(index)
        base = np.array([(60 * index) % 255, 120, 255 - 50 * index], dtype=np.float32)
        pixels = np.clip(base + rng.normal(0, 60, (size, size, 3)), 0, 255).astype(np.uint8)
        photos.append((f"photo-{index}.png", Image.fromarray(pixels)))
    return photos


def quick(**overrides):
    values = dict(steps=6, resolution=64, rank=4, alpha=8, checkpoint_every=3, sample_steps=1, keep_states=2)
    values.update(overrides)
    return TrainingOptions(**values)


def train(trainer, out_dir, options, **kwargs):
    return trainer.train(easy_photos(), token=TOKEN, class_word="man", is_person=False, out_dir=out_dir,
                         options=options, **kwargs)


def test_default_steps_follow_the_thesis():
    assert default_steps(10) == 2400
    assert default_steps(20) > default_steps(10)
    assert default_steps(1) >= 1200  # a few photos still need enough steps to learn anything


def test_the_loss_falls_on_an_easy_set(trainer, tmp_path):
    result = train(trainer, tmp_path, quick(steps=300, checkpoint_every=300, learning_rate=1e-3))
    first, last = np.mean(result.losses[:50]), np.mean(result.losses[-50:])
    assert last < 0.8 * first, (first, last)


def test_the_trained_adapter_changes_the_engines_pictures(trainer, engine, tmp_path):
    result = train(trainer, tmp_path, quick(steps=20, checkpoint_every=20, learning_rate=1e-3))
    plain = engine.txt2img(f"a photo of {TOKEN} man", steps=4, width=64, height=64, seed=3)
    with_adapter = engine.txt2img(f"a photo of {TOKEN} man", steps=4, width=64, height=64, seed=3,
                                  adapters=[Adapter("trained_subject", 1.0, result.adapter_path)])
    difference = np.abs(np.asarray(plain.image, dtype=float) - np.asarray(with_adapter.image, dtype=float)).mean()
    assert difference > 1.0
    assert with_adapter.parameters["adapters"] == {"trained_subject": 1.0}


def test_the_adapter_carries_its_metadata_and_size(trainer, tmp_path):
    result = train(trainer, tmp_path, quick())
    metadata = read_metadata(result.adapter_path)
    assert metadata["lifebook.subject_token"] == TOKEN
    assert metadata["lifebook.base_model"] == "tiny"
    assert metadata["lifebook.base_model_identity"].startswith("tiny-")
    assert metadata["lifebook.rank"] == "4" and metadata["lifebook.steps"] == "6"
    assert len(__import__("json").loads(metadata["lifebook.photo_hashes"])) == 4
    assert result.size_bytes == result.adapter_path.stat().st_size
    weights = load_file(result.adapter_path)
    assert all(w.dtype == torch.float16 for w in weights.values())
    assert any(".to_q." in key for key in weights) and any(".to_out.0." in key for key in weights)


def test_checkpoints_samples_and_states_are_written_where_promised(trainer, tmp_path):
    result = train(trainer, tmp_path, quick(steps=7, keep_states=1, export_kohya=True))
    folders = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert folders == ["step-000003", "step-000006", "step-000007"]  # every 3, and the last step
    for checkpoint in result.checkpoints:
        assert checkpoint.lora_path.is_file()
        assert len(checkpoint.samples) == 4
        for sample in checkpoint.samples:
            with Image.open(sample) as picture:
                assert picture.size == (64, 64)
    assert [c.has_state for c in result.checkpoints] == [False, False, True]  # only the last K=1 states
    assert (tmp_path / "lora.safetensors").is_file() and (tmp_path / "report.json").is_file()
    assert result.kohya_path and any(k.startswith("lora_unet_") for k in load_file(result.kohya_path))


def test_samples_use_fixed_prompts_and_seeds_so_checkpoints_compare(trainer, tmp_path):
    result = train(trainer, tmp_path, quick())
    early, late = result.checkpoints[0], result.checkpoints[-1]
    info = __import__("json").loads((late.folder / "checkpoint.json").read_text())
    assert info["seeds"] == [11, 22, 33, 44] and all(TOKEN in p for p in info["prompts"])
    assert early.samples[0].read_bytes() != late.samples[0].read_bytes()  # the adapter moved in between


class Crash(Exception):
    pass


def test_resuming_after_a_crash_gives_the_same_adapter(trainer, tmp_path):
    straight = train(trainer, tmp_path / "straight", quick(steps=8, checkpoint_every=4))

    def crash_after_step_6(update):
        if update.stage == "training" and update.step == 6:
            raise Crash()

    with pytest.raises(Crash):
        train(trainer, tmp_path / "resumed", quick(steps=8, checkpoint_every=4), progress=crash_after_step_6)
    assert not (tmp_path / "resumed" / "lora.safetensors").exists()
    resumed = train(trainer, tmp_path / "resumed", quick(steps=8, checkpoint_every=4))

    assert resumed.resumed_from == 4 and len(resumed.losses) == 4
    expected, actual = load_file(straight.adapter_path), load_file(resumed.adapter_path)
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-3, atol=1e-5)
    assert resumed.losses == pytest.approx(straight.losses[4:], rel=1e-4)


def test_a_finished_training_is_not_run_again(trainer, tmp_path):
    first = train(trainer, tmp_path, quick())
    again = train(trainer, tmp_path, quick())
    assert again.resumed_from == 6 and again.losses == []
    assert again.adapter_path.read_bytes() == first.adapter_path.read_bytes()


def test_cancel_stops_within_one_step(trainer, tmp_path):
    seen = []

    def progress(update):
        if update.stage == "training":
            seen.append(update.step)

    with pytest.raises(Cancelled):
        train(trainer, tmp_path, quick(steps=50, checkpoint_every=100), progress=progress,
              cancel=lambda: len(seen) >= 3)
    assert max(seen) == 3
    assert not (tmp_path / "lora.safetensors").exists()
    # The trainer is clean afterwards: the next training starts from fresh LoRA weights.
    assert train(trainer, tmp_path / "next", quick()).steps == 6


def test_a_folder_holding_another_training_is_refused(trainer, tmp_path):
    train(trainer, tmp_path, quick())
    with pytest.raises(EngineInputError, match="already holds a different training"):
        train(trainer, tmp_path, quick(rank=8))


def test_options_text_encoder_prior_preservation_and_snr(trainer, engine, tmp_path):
    options = quick(steps=4, checkpoint_every=4, train_text_encoder=True, prior_preservation=True,
                    class_images=2, snr_gamma=5.0, gradient_checkpointing=True)
    result = train(trainer, tmp_path, options)
    assert sorted(p.name for p in (tmp_path / "class_images").iterdir()) == ["000.png", "001.png"]
    keys = load_file(result.adapter_path).keys()
    assert any(k.startswith("text_encoder.") for k in keys) and any(k.startswith("unet.") for k in keys)
    assert all(np.isfinite(result.losses))
    picture = engine.txt2img(f"a photo of {TOKEN} man", steps=2, width=64, height=64, seed=1,
                             adapters=[Adapter("with_text", 1.0, result.adapter_path)])
    assert picture.image.size == (64, 64)


@pytest.mark.parametrize("token, message", [
    ("dog", "already knows"),
    ("Juan Pacheco", "one made-up word"),
    ("ab", "one made-up word"),
    ("man", "is the class word"),
])
def test_a_token_that_is_a_real_word_is_refused(trainer, token, message):
    with pytest.raises(EngineInputError, match=message):
        check_token(trainer.pipe.tokenizer, token, "man")


def test_bad_options_are_refused_before_anything_runs(trainer, tmp_path):
    for options, message in ((quick(rank=0), "rank"), (quick(resolution=100), "multiple of 8"),
                             (quick(learning_rate=-1), "learning_rate")):
        with pytest.raises(EngineInputError, match=message):
            train(trainer, tmp_path, options)
    assert not any(tmp_path.iterdir())


def test_no_photos_is_refused(trainer, tmp_path):
    with pytest.raises(EngineInputError):
        trainer.train([], token=TOKEN, class_word="man", is_person=False, out_dir=tmp_path, options=quick())
