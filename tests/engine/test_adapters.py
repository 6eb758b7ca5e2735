import numpy as np
import pytest
from safetensors.torch import save_file

import torch
from generation.engine import Adapter, EngineInputError, PersonRegion
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


def test_compose_activates_only_scene_adapters_then_one_person_at_a_time(engine, lora_files):
    people = [
        PersonRegion(Adapter("ana", path=lora_files["a"]), "a photo of Ana", box=(0, 8, 32, 64)),
        PersonRegion(Adapter("juan", path=lora_files["b"]), "a photo of Juan", box=(32, 8, 64, 64)),
    ]
    result = engine.compose("two people in a living room", people, scene_adapters=[Adapter("room", path=lora_files["a_kohya"])],
                            width=64, height=64, steps=3, person_steps=3, seed=9)
    assert [(s["stage"], s["active_adapters"]) for s in result.stages] == [
        ("scene", ["room"]), ("person 1: ana", ["ana"]), ("person 2: juan", ["juan"]),
    ]
    assert all(not {"ana", "juan"} <= set(s["active_adapters"]) for s in result.stages)


def test_compose_refuses_a_person_adapter_in_the_scene(engine, lora_files):
    ana = Adapter("ana", path=lora_files["a"])
    with pytest.raises(EngineInputError, match="both in the scene and a person"):
        engine.compose("a beach", [PersonRegion(ana, "Ana", box=(0, 0, 32, 32))], scene_adapters=[ana],
                       width=64, height=64, steps=2)
