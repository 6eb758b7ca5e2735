"""Photo preparation: each kind of weak photo is flagged in plain words, crops follow the face.

Every photo is drawn here: a cartoon face (skin oval, hair, dark brows and eyes, a nose shadow, a
mouth) that OpenCV's frontal Haar cascade really finds, on a colour-ramp background with random
rectangles (so perceptual hashes differ) and fine grain (so sharp photos have real texture).
"""

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps

from generation.engine import EngineInputError
from generation.engine import faces as F
from generation.engine.faces import find_faces
from generation.engine.photos import load_photo_folder, prepare_photos, square_crop_box

CAPTION = "a photo of sqgkhoju woman"


def draw_face(width, skin=(224, 178, 148), hair=(70, 45, 30)):
    """A face `width` pixels wide (1.35 times as tall) on a transparent RGBA sheet."""
    s = width / 100
    face = Image.new("RGBA", (width, round(width * 1.35)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(face)
    dark, shade = (35, 22, 18, 255), tuple(int(c * 0.7) for c in skin) + (255,)
    draw.ellipse([c * s for c in (2, 0, 98, 70)], fill=hair + (255,))
    draw.ellipse([c * s for c in (8, 12, 92, 128)], fill=skin + (255,))
    for x in (20, 58):
        draw.rectangle([c * s for c in (x - 2, 40, x + 24, 45)], fill=dark)  # eyebrow
        draw.ellipse([c * s for c in (x, 48, x + 22, 60)], fill=(245, 245, 240, 255))  # eye white
        draw.ellipse([c * s for c in (x + 6, 49, x + 16, 59)], fill=dark)  # iris
    draw.polygon([c * s for c in (50, 58, 43, 85, 57, 85)], fill=shade)  # nose shadow
    draw.ellipse([c * s for c in (35, 96, 65, 106)], fill=(150, 60, 60, 255))  # mouth
    return face.filter(ImageFilter.GaussianBlur(max(1, width / 120)))


def scene(seed, size=(768, 576), faces=()):
    """A colour photo: a ramp between two random colours, six random rectangles, the faces
    (centre x, centre y, width), and grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    t = np.linspace(0, 1, w)[None, :, None] if seed % 2 else np.linspace(0, 1, h)[:, None, None]
    ramp = rng.integers(30, 225, 3) * (1 - t) + rng.integers(30, 225, 3) * t
    image = Image.fromarray(np.broadcast_to(ramp, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        block = [x0, y0, x0 + rng.integers(w // 8, w // 2), y0 + rng.integers(h // 8, h // 2)]
        draw.rectangle(block, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))  # ovals would pass for faces
    for cx, cy, width in faces:
        face = draw_face(width)
        image.paste(face, (cx - width // 2, cy - face.height // 2), face)
    grain = rng.normal(0, 10, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def jpeg(image, **kwargs):
    """The photo after a JPEG round trip, as the app stores it."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **kwargs)
    return buffer.getvalue()


def rejpeg(image):
    return Image.open(io.BytesIO(jpeg(image))).convert("RGB")


def varied_photo(i):
    """Photo i of a varied set: its own background, shape, face size and place."""
    rng = np.random.default_rng(1000 + i)
    w, h = [(768, 576), (576, 768), (640, 640), (900, 600)][i % 4]
    width = int(rng.integers(min(w, h) // 4, min(w, h) // 2.2))
    cx = int(rng.integers(width // 2 + 5, w - width // 2 - 5))
    cy = int(rng.integers(int(width * 0.7) + 5, h - int(width * 0.7) - 5))
    return rejpeg(scene(100 + i, (w, h), [(cx, cy, width)]))


@pytest.fixture(scope="module")
def good():
    """Ten varied, sharp, colour photos of one person: nothing to say about them."""
    return [(f"good{i:02}.jpg", varied_photo(i)) for i in range(10)]


def bad_photos(good):
    base, other = good[0][1], good[1][1]
    grey = np.asarray(ImageOps.grayscale(scene(20, faces=[(380, 280, 200)])), dtype=np.float64)
    noisy_grey = np.clip(grey[..., None] + np.random.default_rng(0).normal(0, 2, grey.shape + (3,)), 0, 255)
    return [
        ("small.jpg", rejpeg(scene(21, (400, 300), [(200, 150, 110)]))),
        ("blurry.jpg", rejpeg(scene(22, faces=[(380, 280, 200)]).filter(ImageFilter.GaussianBlur(3)))),
        ("brighter copy.jpg", rejpeg(ImageEnhance.Brightness(base).enhance(1.03))),
        ("smaller copy.jpg", rejpeg(other.resize((other.width * 9 // 10, other.height * 9 // 10)))),
        ("no face.jpg", rejpeg(scene(23))),
        ("two people.jpg", rejpeg(scene(24, (900, 600), [(230, 300, 220), (650, 300, 220)]))),
        ("black and white.jpg", rejpeg(Image.fromarray(noisy_grey.astype(np.uint8)))),  # with colour noise
        ("sepia.jpg", rejpeg(ImageOps.colorize(ImageOps.grayscale(scene(25, faces=[(380, 280, 200)])),
                                               (40, 25, 10), (255, 235, 200)))),
    ]


EXPECTED = {
    "small.jpg": {"too_small"}, "blurry.jpg": {"blurry"}, "brighter copy.jpg": {"near_duplicate"},
    "smaller copy.jpg": {"near_duplicate"}, "no face.jpg": {"no_face"}, "two people.jpg": {"several_faces"},
    "black and white.jpg": {"grayscale"}, "sepia.jpg": {"grayscale"},
}


@pytest.fixture(scope="module")
def prepared(good):
    """The varied good set with one photo of each weak kind mixed in: one preparation, many checks."""
    return prepare_photos(good + bad_photos(good), token="sqgkhoju", class_word="woman", is_person=True)


def codes(problems):
    return {problem.code for problem in problems}


def test_good_varied_photos_have_no_problems(prepared, good):
    reports = {r.name: r for r in prepared.report.photos}
    for name, _ in good:
        assert reports[name].problems == [], name
        assert reports[name].used and len(reports[name].faces) == 1
    alone = prepare_photos(good, token="sqgkhoju", class_word="woman", is_person=True)
    assert alone.report.problems == [] and alone.report.used_count == 10


def test_each_weak_photo_is_flagged_in_plain_words(prepared):
    reports = {r.name: r for r in prepared.report.photos}
    for name, expected in EXPECTED.items():
        assert codes(reports[name].problems) == expected, name
    for report in reports.values():
        for problem in report.problems:
            assert problem.message.endswith(".") and "LoRA" not in problem.message and "_" not in problem.message
    assert "400×300" in reports["small.jpg"].problems[0].message
    assert "2 faces" in reports["two people.jpg"].problems[0].message


def test_near_duplicates_are_left_out_and_name_the_earlier_photo(prepared, good):
    reports = {r.name: r for r in prepared.report.photos}
    assert (reports["brighter copy.jpg"].used, reports["brighter copy.jpg"].duplicate_of) == (False, "good00.jpg")
    assert (reports["smaller copy.jpg"].used, reports["smaller copy.jpg"].duplicate_of) == (False, "good01.jpg")
    assert "good00.jpg" in reports["brighter copy.jpg"].problems[0].message
    assert prepared.report.used_count == len(prepared.examples) == len(good) + len(EXPECTED) - 2
    assert {e.name for e in prepared.examples}.isdisjoint({"brighter copy.jpg", "smaller copy.jpg"})
    # Every other photo is still used: weak photos are advice, not exclusion.
    assert all(r.used for r in prepared.report.photos if r.name not in ("brighter copy.jpg", "smaller copy.jpg"))


def test_examples_are_squares_at_the_resolution_with_captions(prepared, good):
    for example in prepared.examples:
        assert example.image.size == (512, 512) and example.image.mode == "RGB"
        assert example.caption == CAPTION
    small = prepare_photos(good[:2], token="tok", class_word="dog", is_person=False, resolution=256)
    assert [e.image.size for e in small.examples] == [(256, 256)] * 2
    assert small.examples[0].caption == "a photo of tok dog"


def test_too_few_photos_says_how_many_more_would_help(good):
    result = prepare_photos(good[:3], token="tok", class_word="dog", is_person=False)
    (problem,) = result.report.problems
    assert problem.code == "too_few" and "3 photos" in problem.message and "7 more" in problem.message
    assert prepare_photos(good[:3], token="tok", class_word="dog", is_person=False, min_photos=3).report.problems == []


def test_photos_that_are_all_alike_lack_variety():
    # A burst of one pose: the same background, the face moved a little each time.
    burst = [(f"burst{i}.jpg", rejpeg(scene(8, faces=[(340 + 20 * i, 280, 200)]))) for i in range(5)]
    result = prepare_photos(burst, token="tok", class_word="man", is_person=True, min_photos=2)
    assert result.report.used_count >= 3  # not near-duplicates, just too alike
    assert codes(result.report.problems) == {"little_variety"}
    assert "angles" in result.report.problems[0].message


def test_things_other_than_people_skip_face_checks_and_crop_the_middle():
    photo = scene(23, (900, 600), [(150, 300, 200)])  # a face on a poster behind the vase: not looked for
    result = prepare_photos([("vase.jpg", photo)], token="tok", class_word="vase", is_person=False, min_photos=1)
    assert result.report.photos[0].faces == [] and result.report.photos[0].problems == []
    middle = photo.crop((150, 0, 750, 600)).resize((512, 512), Image.LANCZOS)
    assert result.examples[0].image.tobytes() == middle.tobytes()


def test_the_crop_is_centred_on_the_face_unless_the_border_stops_it():
    photo = scene(30, (1024, 576), [(420, 290, 200)])
    result = prepare_photos([("ana.jpg", photo)], token="tok", class_word="woman", is_person=True, min_photos=1)
    (face,) = result.report.photos[0].faces
    assert abs((face[0] + face[2]) / 2 - 420) < 20  # the detector found the drawn face
    (found,) = find_faces(result.examples[0].image)
    assert abs((found[0] + found[2]) / 2 - 256) < 20  # and it sits in the middle of the square
    near_edge = scene(31, (1024, 576), [(130, 290, 200)])
    (face,) = find_faces(near_edge)
    assert square_crop_box(near_edge.size, face) == (0, 0, 576, 576)
    assert square_crop_box((400, 1000), (0, 850, 100, 950)) == (0, 600, 400, 1000)
    assert square_crop_box((1000, 400)) == (300, 0, 700, 400)


def test_faces_are_found_at_several_sizes_and_places():
    for i, (size, face) in enumerate([((640, 480), (320, 240, 120)), ((1600, 1200), (500, 700, 500)),
                                      ((600, 900), (300, 600, 250)), ((2000, 1000), (1700, 450, 300))]):
        (box,) = find_faces(scene(40 + i, size, [face]))
        assert abs((box[0] + box[2]) / 2 - face[0]) < face[2] * 0.2, (size, face, box)
        assert 0.8 < (box[2] - box[0]) / face[2] < 1.6  # mapped back to the photo's own pixels


def test_frontal_and_profile_hits_on_one_face_count_once(monkeypatch):
    class Fake:
        def __init__(self, *answers):
            self.answers = iter(answers)  # one list of (x, y, w, h) per call

        def detectMultiScale(self, grey, **kwargs):  # noqa: N802 (OpenCV's name)
            return next(self.answers)

    # On the 480x480 copy of a 960x960 photo: the frontal cascade finds one face, the profile
    # cascade the same face a little shifted, and on the mirrored copy a second face at x 300..400,
    # which must come back unmirrored (x 80..180) and at the photo's scale.
    fakes = {F.CASCADES[0]: Fake([(100, 100, 120, 120)]),
             F.CASCADES[1]: Fake([(110, 95, 110, 110)], [(300, 300, 100, 100)])}
    monkeypatch.setattr(F, "_cascade", lambda name: fakes[name])
    assert find_faces(Image.new("RGB", (960, 960))) == [(200, 200, 440, 440), (160, 600, 360, 800)]


def test_content_hash_is_the_pixels_hash_and_stable(prepared, good):
    name, photo = good[3]
    expected = hashlib.sha256(f"{photo.width}x{photo.height}:".encode() + photo.tobytes()).hexdigest()
    report = next(r for r in prepared.report.photos if r.name == name)
    again = prepare_photos([(name, photo.copy())], token="tok", class_word="woman", is_person=True, min_photos=1)
    assert report.content_hash == again.report.photos[0].content_hash == again.examples[0].content_hash == expected
    assert len({r.content_hash for r in prepared.report.photos}) == len(prepared.report.photos)


def test_report_is_plain_json(prepared, good):
    data = json.loads(json.dumps(prepared.report.to_dict()))
    assert data["used_count"] == prepared.report.used_count and data["photo_count"] == len(good) + len(EXPECTED)
    photo = next(p for p in data["photos"] if p["name"] == "two people.jpg")
    assert photo["problems"][0]["code"] == "several_faces" and len(photo["faces"]) == 2
    assert set(photo) >= {"width", "height", "sharpness", "perceptual_hash", "content_hash", "used", "duplicate_of"}


def test_load_photo_folder_reads_photos_upright_in_rgb_by_name(tmp_path):
    (tmp_path / "b.JPG").write_bytes(jpeg(Image.new("RGB", (40, 20), "red")))
    Image.new("L", (30, 30), 128).save(tmp_path / "a.png")
    Image.new("RGBA", (10, 10), (0, 0, 255, 100)).save(tmp_path / "c.webp")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90°": a phone held upright
    (tmp_path / "d.jpeg").write_bytes(jpeg(Image.new("RGB", (40, 20), "green"), exif=exif))
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "._b.JPG").write_bytes(b"macOS shadow file")
    photos = load_photo_folder(tmp_path)
    assert [name for name, _ in photos] == ["a.png", "b.JPG", "c.webp", "d.jpeg"]
    assert all(image.mode == "RGB" for _, image in photos)
    assert photos[1][1].size == (40, 20) and photos[3][1].size == (20, 40)


def test_load_photo_folder_says_what_is_wrong(tmp_path):
    with pytest.raises(EngineInputError, match="no photo folder at"):
        load_photo_folder(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(EngineInputError, match="holds no photos"):
        load_photo_folder(tmp_path)
    (tmp_path / "ok.jpg").write_bytes(jpeg(Image.new("RGB", (8, 8))))
    (tmp_path / "party.jpg").write_text("this is text, not a picture")
    with pytest.raises(EngineInputError, match="party.jpg cannot be read"):
        load_photo_folder(tmp_path)


def test_prepare_photos_refuses_an_empty_list():
    with pytest.raises(EngineInputError, match="no photos"):
        prepare_photos([], token="tok", class_word="man", is_person=True)
