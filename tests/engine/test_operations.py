import numpy as np
import pytest
from PIL import Image

from generation.engine import Region
from tests.engine.conftest import box_mask

FAST = dict(steps=4, seed=11)


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_txt2img_returns_pictures_of_the_requested_size(engine):
    result = engine.txt2img("a photo of an old man", width=80, height=64, num_images=2, **FAST)
    assert [im.size for im in result.images] == [(80, 64), (80, 64)]
    assert result.seeds == [11, 12]


def test_img2img_returns_a_picture_of_the_sketchs_size(engine, picture):
    result = engine.img2img(picture, "a watercolour of a church", strength=0.75, steps=8, seed=3)
    assert result.image.size == (64, 64)
    assert result.parameters["strength"] == 0.75 and result.parameters["operation"] == "img2img"


def test_img2img_can_resize_a_sketch_to_a_given_size(engine):
    sketch = Image.new("RGB", (100, 75), "white")
    assert engine.img2img(sketch, "a house", width=72, height=64, steps=4).image.size == (72, 64)


def test_inpaint_returns_a_picture_of_the_originals_size(engine, picture):
    result = engine.inpaint(picture, box_mask((64, 64), (16, 16, 48, 48)), "a dog", **FAST)
    assert result.image.size == (64, 64)


def test_every_result_records_its_recipe_and_says_it_is_a_demo_model(engine):
    result = engine.txt2img("a photo of a church", negative_prompt="blurry", width=64, height=64, **FAST)
    params = result.parameters
    assert result.is_demo_model and params["demo_model"] is True and params["base_model"] == "tiny"
    for key, value in dict(operation="txt2img", prompt="a photo of a church", negative_prompt="blurry",
                           steps=4, width=64, height=64, seeds=[11], adapters={}).items():
        assert params[key] == value
    assert params["scheduler"] == "DPMSolverMultistepScheduler" and params["guidance"] == 8.0


def test_the_same_inputs_and_seed_give_the_same_picture(engine):
    first = engine.txt2img("a boy playing in the street", width=64, height=64, **FAST)
    second = engine.txt2img("a boy playing in the street", width=64, height=64, **FAST)
    assert np.array_equal(pixels(first.image), pixels(second.image))


def test_another_seed_gives_another_picture(engine):
    first = engine.txt2img("a boy playing in the street", width=64, height=64, steps=4, seed=1)
    second = engine.txt2img("a boy playing in the street", width=64, height=64, steps=4, seed=2)
    assert not np.array_equal(pixels(first.image), pixels(second.image))


def test_without_a_seed_one_is_chosen_and_recorded(engine):
    result = engine.txt2img("a garden", width=64, height=64, steps=2)
    again = engine.txt2img("a garden", width=64, height=64, steps=2, seed=result.seed)
    assert np.array_equal(pixels(result.image), pixels(again.image))


def test_inpaint_masked_keeps_every_pixel_outside_the_blurred_mask(engine, picture):
    mask = box_mask((64, 64), (16, 16, 48, 48))
    result = engine.inpaint(picture, mask, "a dog", mask_blur=4, strength=1.0, **FAST)
    changed = np.abs(pixels(result.image) - pixels(picture)).sum(axis=2) > 0
    band = np.zeros((64, 64), bool)
    band[16 - 12:48 + 12, 16 - 12:48 + 12] = True  # the box plus 3 sigma of blur
    assert not changed[~band].any()
    assert changed[20:44, 20:44].mean() > 0.9


def test_inpaint_not_masked_keeps_the_painted_part(engine, picture):
    mask = box_mask((64, 64), (16, 16, 48, 48))
    result = engine.inpaint(picture, mask, "a beach", mask_mode="not_masked", mask_blur=0, strength=1.0, **FAST)
    diff = np.abs(pixels(result.image) - pixels(picture)).sum(axis=2)
    assert (diff[16:48, 16:48] == 0).all()
    assert (diff[:8] > 0).mean() > 0.9


@pytest.mark.parametrize("content", ["original", "fill", "latent_noise", "latent_nothing"])
def test_each_masked_content_mode_repaints_only_the_mask(engine, picture, content):
    mask = box_mask((64, 64), (24, 24, 40, 40))
    result = engine.inpaint(picture, mask, "a dog", masked_content=content, mask_blur=0, strength=0.8, **FAST)
    diff = np.abs(pixels(result.image) - pixels(picture)).sum(axis=2)
    assert (diff[:16] == 0).all() and diff[24:40, 24:40].mean() > 0
    assert result.parameters["masked_content"] == content


def test_masked_content_modes_start_from_different_places(engine, picture):
    mask = box_mask((64, 64), (16, 16, 48, 48))
    images = {c: pixels(engine.inpaint(picture, mask, "a dog", masked_content=c, mask_blur=0, strength=0.6,
                                      **FAST).image) for c in ("original", "fill", "latent_noise", "latent_nothing")}
    keys = list(images)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert not np.array_equal(images[a], images[b]), (a, b)


def test_fill_takes_the_colours_around_the_hole():
    from generation.engine.images import fill_masked

    image = Image.new("RGB", (64, 64), (255, 0, 0))
    image.paste((0, 0, 255), (32, 0, 64, 64))
    filled = pixels(fill_masked(image, box_mask((64, 64), (20, 20, 44, 44))))
    assert filled[32, 21][0] > filled[32, 21][2]  # near the red side: red
    assert filled[32, 42][2] > filled[32, 42][0]  # near the blue side: blue
    assert np.array_equal(filled[:20], pixels(image)[:20])  # outside the hole: untouched


def test_only_masked_repaints_a_crop_at_full_size_and_pastes_it_back(engine):
    image = Image.new("RGB", (128, 128), (90, 140, 90))
    mask = box_mask((128, 128), (80, 80, 100, 100))
    result = engine.inpaint(image, mask, "a face", only_masked=True, padding=8, mask_blur=0, width=64,
                            height=64, **FAST)
    left, top, right, bottom = result.parameters["crop_box"]
    assert left <= 72 and top <= 72 and right >= 108 and bottom >= 108 and right - left < 128
    assert result.image.size == (128, 128)
    diff = np.abs(pixels(result.image) - pixels(image)).sum(axis=2)
    assert (diff[:70] == 0).all() and diff[82:98, 82:98].mean() > 0


def test_progress_reports_every_step_with_a_small_preview(engine):
    updates = []
    engine.txt2img("a river", width=64, height=64, steps=5, seed=1, progress=updates.append)
    assert [u.step for u in updates] == [1, 2, 3, 4, 5] and {u.total for u in updates} == {5}
    assert updates[-1].preview.size == (8, 8) and updates[-1].preview.mode == "RGB"


def test_progress_counts_only_the_steps_that_run_at_a_given_strength(engine, picture):
    updates = []
    engine.img2img(picture, "a river", strength=0.5, steps=10, seed=1, progress=updates.append)
    assert [u.step for u in updates] == [1, 2, 3, 4, 5] and updates[-1].total == 5


def two_regions(lora_files):
    from generation.engine import Adapter

    return [Region(Adapter("ana", path=lora_files["a"]), "a photo of Ana", (0, 0, 32, 64), "a woman", face=True),
            Region(Adapter("juan", path=lora_files["b"]), "a photo of Juan", (32, 0, 64, 64), "a man", face=True)]


def test_compose_counts_its_steps_records_its_branches_and_repeats_with_its_seed(engine, lora_files):
    updates = []
    result = engine.compose("two people on a beach", two_regions(lora_files), width=64, height=64, steps=4,
                            seed=5, progress=updates.append)
    assert result.image.size == (64, 64) and result.seeds == [5]
    # The tiny model paints noise: no face is found, which the picture says, and no face step runs.
    assert [u.stage for u in updates] == ["layout", "regions", "regions", "regions"]
    assert [u.step for u in updates] == [1, 2, 3, 4] and updates[0].total == 4 + 2 * 1
    assert result.parameters["faces"] == [{"adapter": "ana", "face": None}, {"adapter": "juan", "face": None}]
    assert "No face was found for ana" in result.notes[0]
    p = result.parameters
    assert p["operation"] == "compose" and p["layout_steps"] == 1 and p["feather"] == 4
    assert [(r["adapter"], r["box"], r["layout_prompt"]) for r in p["regions"]] == [
        ("ana", [0, 0, 32, 64], "a woman"), ("juan", [32, 0, 64, 64], "a man")]
    again = engine.compose("two people on a beach", two_regions(lora_files), width=64, height=64, steps=4, seed=5)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))


def test_compose_can_start_from_a_sketch(engine, lora_files, picture):
    updates = []
    result = engine.compose("two people on a beach", two_regions(lora_files), image=picture, strength=0.5, steps=8,
                            seed=5, face_pass=False, progress=updates.append)
    assert result.image.size == (64, 64) and [u.step for u in updates] == [1, 2, 3, 4]
    assert result.stages[0]["steps"] == 1 and result.parameters["strength"] == 0.5
    # It starts from the sketch (the tiny model's random decoder keeps no likeness of it, so: another sketch
    # with the same seed gives another picture).
    other = engine.compose("two people on a beach", two_regions(lora_files), image=picture.rotate(90),
                           strength=0.5, steps=8, seed=5, face_pass=False)
    assert not np.array_equal(np.asarray(other.image), np.asarray(result.image))


def test_compose_stops_within_a_step_of_a_cancel(engine, lora_files):
    from generation.engine import Cancelled

    seen = []
    with pytest.raises(Cancelled, match="after step 3 of"):
        engine.compose("two people on a beach", two_regions(lora_files), width=64, height=64, steps=10, seed=5,
                       progress=lambda u: seen.append(u.step), cancel=lambda: len(seen) >= 2)
    assert seen == [1, 2]
    assert engine.active_adapters() == []


def test_the_memory_savers_make_the_same_kind_of_picture():
    from generation.engine import Engine, EngineOptions
    from tests.engine.conftest import MODELS_DIR

    saver = Engine(EngineOptions(base_model="tiny", models_dir=MODELS_DIR, attention_slicing=True, vae_tiling=True))
    assert saver.text_pipe.vae.use_tiling
    result = saver.txt2img("a harbour", width=64, height=64, steps=3, seed=4)
    assert result.image.size == (64, 64) and result.notes == []


def test_the_face_pass_finds_a_real_face_and_repaints_nothing_outside_it(engine, lora_files):
    """On a real photograph (scikit-image's astronaut): the face is found, repainted with only the region's
    adapter, and every pixel outside the grown face box and its blurred edge is exactly the photo's."""
    from skimage import data

    from generation.engine import Adapter
    from generation.engine.engine import FACE_MASK_BLUR

    photo = Image.fromarray(data.astronaut()).resize((256, 256))
    region = Region(Adapter("ana", path=lora_files["a"]), "a photo of Ana", (0, 0, 256, 256), face=True)
    result = engine.face_pass(photo, [region], steps=4, strength=0.5, seed=3)
    (found,) = result.parameters["faces"]
    left, top, right, bottom = found["face"]
    assert 60 < (left + right) / 2 < 160 and 20 < (top + bottom) / 2 < 100  # her face, upper middle
    assert [(s["active_adapters"], s["box"]) for s in result.stages] == [(["ana"], [left, top, right, bottom])]
    changed = (np.asarray(result.image, dtype=int) != np.asarray(photo, dtype=int)).any(axis=2)
    margin = 3 * FACE_MASK_BLUR
    outside = np.ones_like(changed)
    outside[max(0, top - margin):bottom + margin, max(0, left - margin):right + margin] = False
    assert changed.any() and not changed[outside].any()


def test_a_face_looked_for_where_there_is_none_is_left_alone_and_said(engine, lora_files):
    from generation.engine import Adapter

    plain = Image.new("RGB", (64, 64), (120, 140, 160))
    region = Region(Adapter("ana", path=lora_files["a"]), "a photo of Ana", (0, 0, 64, 64), face=True)
    result = engine.txt2img("a garden", faces=[region], width=64, height=64, steps=4, seed=2)
    assert result.parameters["faces"] == [{"adapter": "ana", "face": None}]
    assert result.notes == ["No face was found for ana; it was left as drawn."]
    passed = engine.face_pass(plain, [region], steps=4)
    assert np.array_equal(np.asarray(passed.image), np.asarray(plain)) and passed.stages == []
