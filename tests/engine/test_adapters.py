import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from generation.engine import Adapter, EngineInputError, Region
from generation.engine.lora_formats import read_metadata

SMALL = dict(width=64, height=64, steps=4, seed=21)


def picture(engine, adapters=()):
    return np.asarray(engine.txt2img("a photo of a woman", adapters=adapters, **SMALL).image, dtype=np.int16)


def test_an_adapter_at_weight_zero_gives_the_same_picture_as_none(engine, lora_files):
    plain = picture(engine)
    assert np.array_equal(picture(engine, [Adapter("a", 0.0, lora_files["a"])]), plain)


def test_an_adapter_changes_the_picture_and_two_adapters_differ(engine, lora_files):
    plain = picture(engine)
    with_a = picture(engine, [Adapter("a", 1.0, lora_files["a"])])
    with_b = picture(engine, [Adapter("b", 1.0, lora_files["b"])])
    assert not np.array_equal(with_a, plain) and not np.array_equal(with_a, with_b)


def test_going_back_to_no_adapter_gives_the_plain_picture_again(engine, lora_files):
    plain = picture(engine)
    picture(engine, [Adapter("a", 1.0, lora_files["a"])])
    assert np.array_equal(picture(engine), plain)
    assert engine.active_adapters() == []


def test_a_kohya_file_gives_the_same_picture_as_the_diffusers_file(engine, lora_files):
    diffusers = picture(engine, [Adapter("a", 1.0, lora_files["a"])])
    kohya = picture(engine, [Adapter("a_kohya", 1.0, lora_files["a_kohya"])])
    assert np.abs(diffusers - kohya).max() <= 1


def test_two_adapters_can_be_active_at_once_with_weights(engine, lora_files):
    result = engine.txt2img("a woman and her dog", adapters=[Adapter("a", 0.7, lora_files["a"]),
                                                            Adapter("b", 0.3, lora_files["b"])], **SMALL)
    assert result.parameters["adapters"] == {"a": 0.7, "b": 0.3}
    assert result.stages[0]["active_adapters"] == ["a", "b"]


def test_switching_adapters_never_reloads_the_base_model(engine, lora_files, monkeypatch):
    from generation.engine import models

    unet = engine.text_pipe.unet

    def no_reload(*args, **kwargs):
        raise AssertionError("the base model was loaded again")

    monkeypatch.setattr(models, "load_pipeline", no_reload)
    monkeypatch.setattr(type(engine.text_pipe), "from_pretrained", no_reload)
    for name in ("a", "b", "a", "b"):
        picture(engine, [Adapter(name, 1.0, lora_files[name])])
    assert engine.text_pipe.unet is unet and engine.inpaint_pipe.unet is unet and engine.image_pipe.unet is unet


def test_only_the_last_n_adapters_stay_resident(engine, lora_files):
    for name in list(engine.resident_adapters):
        engine.unload_adapter(name)
    for i in range(5):  # the engine fixture keeps 4
        engine.load_adapter(f"s{i}", lora_files["a"])
    assert engine.resident_adapters == ["s1", "s2", "s3", "s4"]
    picture(engine, [Adapter("s1", 1.0)])  # using one makes it the most recent
    engine.load_adapter("s5", lora_files["b"])
    assert engine.resident_adapters == ["s3", "s4", "s1", "s5"]
    for name in list(engine.resident_adapters):
        engine.unload_adapter(name)
    assert engine.resident_adapters == []


def test_an_evicted_adapter_comes_back_when_its_file_is_given(engine, lora_files):
    engine.load_adapter("back", lora_files["a"])
    engine.unload_adapter("back")
    with pytest.raises(EngineInputError, match="Unknown adapter 'back'"):
        picture(engine, [Adapter("back", 1.0)])
    picture(engine, [Adapter("back", 1.0, lora_files["a"])])
    assert "back" in engine.resident_adapters


def test_a_file_that_is_not_a_lora_is_a_clear_error(engine, tmp_path):
    bogus = tmp_path / "bogus.safetensors"
    save_file({"something.weight": torch.zeros(3)}, str(bogus))
    with pytest.raises(EngineInputError, match="bogus.safetensors is not a LoRA"):
        engine.load_adapter("bogus", bogus)
    assert "bogus" not in engine.resident_adapters
    assert picture(engine).shape == (64, 64, 3)  # the engine still works


def test_a_missing_file_and_bad_ids_are_clear_errors(engine, tmp_path):
    with pytest.raises(EngineInputError, match="no file at"):
        engine.load_adapter("gone", tmp_path / "gone.safetensors")
    with pytest.raises(EngineInputError, match="letters, digits"):
        engine.load_adapter("has.dot", tmp_path / "x.safetensors")
    with pytest.raises(EngineInputError, match="not loaded"):
        engine.unload_adapter("never")


def test_saved_adapters_carry_their_metadata(lora_files):
    metadata = read_metadata(lora_files["a"])
    assert metadata["subject_token"] == "sqgkhoju" and '"unet.lora_alpha": 8' in metadata["lora_adapter_metadata"]


def test_compose_gives_each_branch_only_its_own_adapters_and_none_while_the_layout_forms(engine, lora_files):
    regions = [
        Region(Adapter("ana", path=lora_files["a"]), "a photo of Ana", (0, 8, 32, 64), "a woman"),
        Region(Adapter("juan", path=lora_files["b"]), "a photo of Juan", (32, 8, 64, 64), "a man"),
    ]
    result = engine.compose("two people in a living room", regions, scene_adapters=[Adapter("room", path=lora_files["a_kohya"])],
                            width=64, height=64, steps=4, seed=9, face_pass=False)
    layout, drawn = result.stages
    # What the LoRA layers really applied to each branch's samples, read from the routing hooks.
    assert layout["stage"] == "layout" and layout["steps"] == 1
    assert [(b["name"], b["prompt"], b["active_adapters"]) for b in layout["branches"]] == [
        ("background", "two people in a living room", []), ("ana", "a woman", []), ("juan", "a man", [])]
    assert drawn["stage"] == "regions" and drawn["steps"] == 3
    assert [(b["name"], b["active_adapters"], b["box"]) for b in drawn["branches"]] == [
        ("background", ["room"], None), ("ana", ["ana"], [0, 8, 32, 64]), ("juan", ["juan"], [32, 8, 64, 64])]
    assert engine.active_adapters() == []  # nothing stays switched on for the next call


def test_a_mixed_batch_equals_separate_single_adapter_runs(engine, lora_files):
    """Per-sample routing: one UNet call whose samples each have their own adapters (or none) gives what
    three calls with those adapters switched on globally give."""
    from generation.engine.routing import Group, routed

    unet = engine.text_pipe.unet
    engine.activate_adapters([Adapter("ana", path=lora_files["a"]), Adapter("juan", 0.7, lora_files["b"])])
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 4, 8, 8, generator=generator)
    words = torch.randn(4, 77, unet.config.cross_attention_dim, generator=generator)
    timestep = torch.tensor(500)
    setups = [[Adapter("ana")], [Adapter("juan", 0.7)], [], [Adapter("ana"), Adapter("juan", 0.7)]]
    separate = []
    with torch.no_grad():
        for index, adapters in enumerate(setups):
            engine.activate_adapters(adapters)
            separate.append(unet(latents[index:index + 1], timestep, encoder_hidden_states=words[index:index + 1]).sample)
        engine.activate_adapters([])
        groups = [Group(i, i + 1, {a.id: a.weight for a in adapters}) for i, adapters in enumerate(setups)]
        with routed(unet, groups):
            mixed = unet(latents, timestep, encoder_hidden_states=words).sample
    assert [sorted(g.applied) for g in groups] == [["ana"], ["juan"], [], ["ana", "juan"]]
    assert (torch.cat(separate) - mixed).abs().max().item() < 1e-4
    # and the adapters do change the output, so the comparison means something
    assert (separate[0] - separate[2]).abs().max().item() > 1e-2
    assert engine.active_adapters() == []


def test_isolation_regions_keep_one_likeness_out_of_the_others_region(engine, lora_files, tmp_path):
    """Swap B's adapter for other weights: deep inside A's region, a composed picture changes far less than
    one where both adapters act on the whole picture (the bench reports the same figure)."""
    from diffusers import UNet2DConditionModel

    from generation.engine.isolation import isolation_ratio
    from generation.engine.lora_formats import save_diffusers_lora
    from generation.engine.models import resolve_source
    from tests.engine.conftest import MODELS_DIR, TARGETS, random_lora

    tiny_dir, _ = resolve_source("tiny", MODELS_DIR)
    other = save_diffusers_lora(random_lora(UNet2DConditionModel.from_pretrained(tiny_dir / "unet"), 3),
                                tmp_path / "other.safetensors", rank=4, alpha=8, target_modules=TARGETS)
    figures = isolation_ratio(engine, Adapter("iso_a", path=lora_files["a"]), Adapter("iso_b", path=lora_files["b"]),
                              Adapter("iso_b2", path=other))
    assert figures["global_change"] > 5  # B's weights do change A's part when both act everywhere
    assert figures["isolation_ratio"] < 0.5, figures


def test_compose_refuses_a_region_adapter_in_the_background(engine, lora_files):
    ana = Adapter("ana", path=lora_files["a"])
    with pytest.raises(EngineInputError, match="both in the background and a region"):
        engine.compose("a beach", [Region(ana, "Ana", (0, 0, 32, 32))], scene_adapters=[ana],
                       width=64, height=64, steps=2)
