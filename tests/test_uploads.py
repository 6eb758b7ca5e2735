"""The one door every picture comes in through (lifebook.uploads).

Every bad file here is made in memory by the test that needs it: no binary
fixtures. A rejection must name the file, give the reason, and leave nothing
behind: no row, no file under MEDIA_ROOT.
"""

import io
import re
import struct
import zlib

import numpy as np
import pillow_heif
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import QuerySet
from PIL import Image

from lifebook.models import Memory, MemoryImage, ReferencePhoto
from lifebook.uploads import UploadRejected, add_reference_photo, add_uploaded_memory_image, normalise_image
from tests import factories

pillow_heif.register_heif_opener()
HEIF_ENCODER = bool(pillow_heif.libheif_info().get("HEIF"))
needs_heif_encoder = pytest.mark.skipif(not HEIF_ENCODER, reason="this libheif build has no HEVC encoder")

GPS_IFD = 0x8825
ORIENTATION = 0x0112
MAKE = 0x010F
MODEL = 0x0110


# --- Making pictures ---------------------------------------------------------


def picture(size=(768, 512), mode="RGB"):
    """A photo-like picture: a smooth colour gradient, so pixels differ across the frame."""
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :].repeat(height, axis=0)
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None].repeat(width, axis=1)
    rgb = np.stack([x, y, 255 - (x + y) / 2], axis=-1).astype(np.uint8)
    return Image.fromarray(rgb, mode="RGB").convert(mode)


def encode(image, fmt="JPEG", **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


def upload(name, data: bytes):
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def photo_upload(name="photo.jpg", size=(768, 512), fmt="JPEG", **save_kwargs):
    return upload(name, encode(picture(size), fmt, **save_kwargs))


def gps_exif(make="Canon", model="EOS 5D", latitude=40.0):
    exif = Image.Exif()
    exif[MAKE] = make
    exif[MODEL] = model
    exif[GPS_IFD] = {1: "N", 2: (latitude, 25.0, 12.0), 3: "W", 4: (3.0, 42.0, 7.0)}
    return exif


def png_claiming(width, height) -> bytes:
    """A tiny PNG whose header claims `width`×`height`: a bomb that costs nothing to make."""

    def chunk(kind, payload):
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def animation(fmt, frames=3, size=(600, 600)):
    images = [Image.new("RGB", size, (60 * i, 90, 200 - 40 * i)) for i in range(frames)]
    return encode(images[0], fmt, save_all=True, append_images=images[1:], duration=100, loop=0)


def reopen(content: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(content))
    image.load()
    return image


def stored_files(media_root):
    if not media_root.exists():
        return []
    return sorted(path for path in media_root.rglob("*") if path.is_file())


@pytest.fixture
def subject(patient):
    return factories.SubjectFactory(patient=patient, name="Ana")


@pytest.fixture
def memory(patient):
    return factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))


# --- Accepted files ----------------------------------------------------------

ALLOWED = [
    pytest.param("beach.jpg", "JPEG", {"quality": 95}, id="jpeg"),
    pytest.param("beach.png", "PNG", {}, id="png"),
    pytest.param("beach.webp", "WEBP", {"quality": 95}, id="webp"),
    pytest.param("beach.heic", "HEIF", {"quality": 95}, id="heic", marks=needs_heif_encoder),
]


@pytest.mark.parametrize("name, fmt, save_kwargs", ALLOWED)
def test_it_stores_each_allowed_format_as_an_rgb_jpeg(name, fmt, save_kwargs):
    clean = normalise_image(photo_upload(name, size=(768, 512), fmt=fmt, **save_kwargs))

    stored = reopen(clean.content)
    assert stored.format == "JPEG"
    assert stored.mode == "RGB"
    assert stored.size == (768, 512) == (clean.width, clean.height)
    assert clean.original_name == name
    assert clean.notes == []


@pytest.mark.parametrize("name, fmt, save_kwargs", ALLOWED)
def test_it_keeps_the_colours_of_each_allowed_format(name, fmt, save_kwargs):
    original = picture((768, 512))

    clean = normalise_image(upload(name, encode(original, fmt, **save_kwargs)))

    difference = np.abs(np.asarray(reopen(clean.content), dtype=int) - np.asarray(original, dtype=int))
    assert difference.mean() < 6


def test_it_goes_by_the_content_not_the_extension():
    clean = normalise_image(upload("scan.jpg", encode(picture(), "PNG")))

    assert reopen(clean.content).format == "JPEG"


@needs_heif_encoder
def test_it_accepts_a_heic_photo_named_heif():
    clean = normalise_image(upload("IMG_0042.HEIF", encode(picture(), "HEIF")))

    assert reopen(clean.content).format == "JPEG"


def test_it_accepts_a_camera_jpeg_that_holds_a_second_picture():
    # Phones and stereo cameras write MPO: a JPEG with a preview or a second eye after the photo.
    first, second = picture(), Image.new("RGB", (768, 512), (10, 10, 10))
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).n_frames == 2

    clean = normalise_image(upload("stereo.jpg", data))

    difference = np.abs(np.asarray(reopen(clean.content), dtype=int) - np.asarray(first, dtype=int))
    assert difference.mean() < 6  # the first picture, not the second


def test_it_accepts_a_still_webp_saved_with_animation_options():
    data = encode(picture(), "WEBP", save_all=True, append_images=[])

    clean = normalise_image(upload("still.webp", data))

    assert reopen(clean.content).size == (768, 512)


# --- Metadata ----------------------------------------------------------------


def test_it_reads_the_gps_in_the_test_photo_before_it_is_cleaned():
    data = encode(picture(), "JPEG", exif=gps_exif())

    exif = Image.open(io.BytesIO(data)).getexif()
    assert exif[MAKE] == "Canon"
    assert exif.get_ifd(GPS_IFD)[1] == "N"


def test_it_drops_exif_and_gps():
    clean = normalise_image(upload("holiday.jpg", encode(picture(), "JPEG", exif=gps_exif())))

    stored = reopen(clean.content)
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info
    assert b"Exif" not in clean.content
    assert b"Canon" not in clean.content
    assert b"EOS 5D" not in clean.content


@pytest.mark.django_db
def test_it_stores_a_file_with_no_exif_and_no_gps(subject):
    photo = add_reference_photo(subject, upload("holiday.jpg", encode(picture(), "JPEG", exif=gps_exif())))

    with photo.image.open("rb") as f:
        data = f.read()
    assert b"Exif" not in data
    assert b"Canon" not in data
    stored = reopen(data)
    assert dict(stored.getexif()) == {}
    assert stored.getexif().get_ifd(GPS_IFD) == {}


@needs_heif_encoder
def test_it_drops_exif_and_gps_from_a_heic_photo():
    data = encode(picture(), "HEIF", exif=gps_exif(make="Apple", model="iPhone 15"))
    assert b"iPhone 15" in data

    clean = normalise_image(upload("IMG_0001.heic", data))

    assert b"iPhone 15" not in clean.content
    assert b"Exif" not in clean.content
    assert dict(reopen(clean.content).getexif()) == {}


def test_it_drops_exif_from_a_png():
    data = encode(picture(), "PNG", exif=gps_exif(make="Scanner Co"))

    clean = normalise_image(upload("scan.png", data))

    assert b"Scanner Co" not in clean.content
    assert dict(reopen(clean.content).getexif()) == {}


def test_it_turns_a_photo_upright_from_its_exif_orientation():
    original = picture((600, 400))
    original.paste((255, 0, 0), (0, 0, 60, 60))  # a red mark in the stored top-left corner
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display"

    clean = normalise_image(upload("sideways.jpg", encode(original, "JPEG", exif=exif, quality=95)))

    stored = reopen(clean.content)
    assert (clean.width, clean.height) == (400, 600)
    assert stored.size == (400, 600)
    # Turned clockwise, the stored top-left corner is now the top-right one.
    red, green, blue = stored.getpixel((400 - 20, 20))
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_it_keeps_a_photo_whose_exif_is_damaged():
    data = encode(picture(), "JPEG", exif=b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12")

    clean = normalise_image(upload("old-camera.jpg", data))

    assert (clean.width, clean.height) == (768, 512)
    assert b"Exif" not in clean.content


# --- Colour modes ------------------------------------------------------------


def test_it_converts_a_cmyk_jpeg_to_rgb():
    cmyk_red = Image.new("CMYK", (600, 600), (0, 255, 255, 0))

    clean = normalise_image(upload("print-scan.jpg", encode(cmyk_red, "JPEG", quality=95)))

    stored = reopen(clean.content)
    assert stored.mode == "RGB"
    red, green, blue = stored.getpixel((300, 300))
    assert red > 200 and green < 60 and blue < 60


def test_it_scales_a_16_bit_greyscale_png_instead_of_turning_it_white():
    gradient = np.linspace(0, 65535, 600 * 800).reshape(600, 800).astype(np.uint16)
    image = Image.fromarray(gradient)
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"

    clean = normalise_image(upload("xray-style.png", data))

    pixels = np.asarray(reopen(clean.content).convert("L"))
    assert pixels.min() < 20
    assert pixels.max() > 235
    assert 100 < pixels.mean() < 155  # a gradient, not a white or black sheet


def test_it_notes_that_a_greyscale_photo_is_black_and_white():
    clean = normalise_image(upload("old.jpg", encode(picture(mode="L"), "JPEG")))

    assert reopen(clean.content).mode == "RGB"
    assert any("black-and-white" in note for note in clean.notes)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_it_puts_transparent_pixels_on_white(mode):
    image = Image.new("RGBA", (600, 600), (0, 0, 0, 0))  # fully transparent black
    image.paste((30, 30, 30, 255), (0, 0, 300, 600))  # an opaque dark left half
    data = encode(image.convert(mode), "PNG")

    clean = normalise_image(upload("cut-out.png", data))

    stored = reopen(clean.content)
    assert all(value > 245 for value in stored.getpixel((450, 300)))
    assert all(value < 45 for value in stored.getpixel((150, 300)))


def test_it_puts_the_transparent_colour_of_a_palette_png_on_white():
    image = Image.new("P", (600, 600), 0)
    image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    image.paste(1, (0, 0, 300, 600))
    data = encode(image, "PNG", transparency=0)

    clean = normalise_image(upload("logo.png", data))

    stored = reopen(clean.content)
    assert all(value > 245 for value in stored.getpixel((450, 300)))
    red, green, blue = stored.getpixel((150, 300))
    assert red > 170 and green < 70 and blue < 70


# --- Size notes --------------------------------------------------------------


def test_it_rejects_a_photo_that_is_too_small():
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(photo_upload("thumb.jpg", size=(200, 300)))

    assert "too small" in rejected.value.reason
    assert "200×300" in rejected.value.reason
    assert "256" in rejected.value.reason


def test_it_rejects_a_photo_one_pixel_below_the_minimum():
    with pytest.raises(UploadRejected, match="too small"):
        normalise_image(photo_upload("thumb.jpg", size=(255, 400)))


def test_it_accepts_a_photo_at_the_minimum_with_a_note():
    clean = normalise_image(photo_upload("small.jpg", size=(256, 400)))

    assert (clean.width, clean.height) == (256, 400)
    assert len(clean.notes) == 1


def test_it_accepts_a_small_photo_with_a_note_about_512_pixels():
    clean = normalise_image(photo_upload("small.jpg", size=(300, 400)))

    assert (clean.width, clean.height) == (300, 400)
    assert len(clean.notes) == 1
    assert "512" in clean.notes[0]
    assert "300×400" in clean.notes[0]


def test_it_has_no_note_for_a_photo_of_512_pixels():
    clean = normalise_image(photo_upload("good.jpg", size=(512, 900)))

    assert clean.notes == []


def test_it_judges_the_size_after_turning_the_photo_upright():
    exif = Image.Exif()
    exif[ORIENTATION] = 6

    clean = normalise_image(upload("sideways.jpg", encode(picture((900, 300)), "JPEG", exif=exif)))

    assert (clean.width, clean.height) == (300, 900)
    assert "300×900" in clean.notes[0]


@pytest.mark.django_db
def test_it_keeps_the_quality_note_with_the_stored_photo(subject):
    photo = add_reference_photo(subject, photo_upload("small.jpg", size=(300, 400)))

    photo.refresh_from_db()
    assert len(photo.quality_notes) == 1
    assert "512" in photo.quality_notes[0]


# --- Rejected files ----------------------------------------------------------


def test_it_rejects_a_zero_byte_file():
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("empty.jpg", b""))

    assert rejected.value.filename == "empty.jpg"
    assert "empty" in rejected.value.reason
    assert "“empty.jpg”" in rejected.value.message


def test_it_rejects_a_text_file_renamed_to_jpg():
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("notes.jpg", b"Shopping list: milk, bread, eggs.\nCall Ana on Sunday.\n"))

    assert "notes.jpg" in rejected.value.message
    assert "not a picture in a format we accept" in rejected.value.reason


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600"></svg>', id="svg"),
        pytest.param(
            b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"></svg>', id="xml-svg"
        ),
        pytest.param(b'\n  <svg xmlns="http://www.w3.org/2000/svg"></svg>', id="svg-after-blank-lines"),
    ],
)
def test_it_rejects_an_svg_renamed_to_png(data):
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("drawing.png", data))

    assert "drawing.png" in rejected.value.message
    assert "SVG" in rejected.value.reason


def test_it_rejects_an_svg_that_starts_with_a_byte_order_mark():
    data = b'\xef\xbb\xbf<svg xmlns="http://www.w3.org/2000/svg"></svg>'

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("drawing.png", data))

    assert "drawing.png" in rejected.value.message
    assert "SVG" in rejected.value.reason


@pytest.mark.parametrize(
    "name, fmt",
    [
        pytest.param("cut.jpg", "JPEG", id="jpeg"),
        pytest.param("cut.png", "PNG", id="png"),
        pytest.param("cut.webp", "WEBP", id="webp"),
        pytest.param("cut.heic", "HEIF", id="heic", marks=needs_heif_encoder),
    ],
)
def test_it_rejects_a_file_cut_in_half(name, fmt):
    # Noise does not compress, so half the file really is half the picture.
    data = encode(Image.effect_noise((600, 600), 60).convert("RGB"), fmt)

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload(name, data[: len(data) // 2]))

    assert name in rejected.value.message
    assert "damaged" in rejected.value.reason


@pytest.mark.parametrize(
    "name, data",
    [
        pytest.param("party.webp", lambda: animation("WEBP"), id="webp"),
        pytest.param("party.png", lambda: animation("PNG"), id="apng"),
    ],
)
def test_it_rejects_an_animation(name, data):
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload(name, data()))

    assert name in rejected.value.message
    assert "animation" in rejected.value.reason


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: encode(picture(), "GIF"), id="still-gif"),
        pytest.param(lambda: animation("GIF"), id="animated-gif"),
        pytest.param(lambda: encode(picture(), "BMP"), id="bmp"),
        pytest.param(lambda: encode(picture(), "TIFF"), id="tiff"),
    ],
)
def test_it_rejects_a_format_we_do_not_accept(data):
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("scan.jpg", data()))

    assert "scan.jpg" in rejected.value.message
    assert "format we accept" in rejected.value.reason
    assert "JPEG, PNG, WebP or HEIC" in rejected.value.reason


def test_it_rejects_a_file_over_the_size_cap(settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 1000
    big = photo_upload("big.jpg")
    assert big.size > 1000

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(big)

    assert "big.jpg" in rejected.value.message
    assert "larger than 1000 bytes" in rejected.value.reason


def test_it_rejects_a_file_over_the_size_cap_when_the_upload_does_not_say_its_size(settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 1000
    stream = io.BytesIO(encode(picture()))
    stream.name = "big.jpg"

    with pytest.raises(UploadRejected, match="larger than"):
        normalise_image(stream)


def test_it_states_the_default_size_cap_in_megabytes(settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 25 * 1024 * 1024

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(SimpleUploadedFile("huge.jpg", b"x" * (25 * 1024 * 1024 + 1)))

    assert "larger than 25 MB" in rejected.value.reason


def test_it_accepts_a_file_exactly_at_the_size_cap(settings):
    data = encode(picture())
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = len(data)

    clean = normalise_image(upload("exact.jpg", data))

    assert clean.width == 768


def test_it_rejects_an_image_with_more_pixels_than_the_setting_allows(settings):
    settings.LIFEBOOK_MAX_IMAGE_PIXELS = 100_000

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("bomb.png", encode(Image.new("L", (1000, 1000)), "PNG")))

    assert "bomb.png" in rejected.value.message
    assert "too many pixels" in rejected.value.reason
    assert "100,000 pixels" in rejected.value.reason


def test_it_rejects_a_tiny_file_that_claims_a_huge_picture():
    data = png_claiming(30_000, 30_000)  # 900 megapixels: past Pillow's own hard limit
    assert len(data) < 200

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("bomb.png", data))

    assert "too many pixels" in rejected.value.reason
    assert "50 megapixels" in rejected.value.reason


def test_it_refuses_a_picture_that_pillow_only_warns_about(settings):
    # 100 megapixels is between Pillow's warning (89 Mpx) and its error (179 Mpx):
    # with our own limit out of the way, the warning alone must refuse it.
    settings.LIFEBOOK_MAX_IMAGE_PIXELS = 10**9
    data = png_claiming(10_000, 10_000)

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("bomb.png", data))

    assert "too many pixels" in rejected.value.reason


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, id="jpeg-magic"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, id="png-magic"),
        pytest.param(b"RIFF\x00\x10\x00\x00WEBPVP8 " + bytes(range(256)) * 8, id="webp-magic"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1" + bytes(range(256)) * 8, id="heic-magic"),
        pytest.param(b"GIF89a" + bytes(range(256)) * 8, id="gif-magic"),
        pytest.param(bytes(2048), id="zeros"),
    ],
)
def test_it_rejects_garbage_behind_a_picture_signature(data):
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(upload("IMG_1234.jpg", data))

    assert "IMG_1234.jpg" in rejected.value.message


def test_it_names_a_file_that_has_no_name():
    with pytest.raises(UploadRejected) as rejected:
        normalise_image(io.BytesIO(b""))

    assert rejected.value.message.startswith("“The file”")


def test_it_names_the_file_without_its_folder():
    stream = io.BytesIO(b"")
    stream.name = "/home/marta/Pictures/empty.jpg"

    with pytest.raises(UploadRejected) as rejected:
        normalise_image(stream)

    assert rejected.value.filename == "empty.jpg"
    assert "Pictures" not in rejected.value.message


# --- Nothing stored when a file is refused ------------------------------------

BAD_FILES = [
    pytest.param("empty.jpg", lambda: b"", "empty", id="zero-byte"),
    pytest.param("notes.jpg", lambda: b"Dear Ana,\nsee you on Sunday.\n", "format we accept", id="renamed-text"),
    pytest.param("drawing.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG", id="svg"),
    pytest.param("drawing.png", lambda: b'<?xml version="1.0"?><svg/>', "SVG", id="xml-svg"),
    pytest.param(
        "cut.jpg",
        lambda: (lambda d: d[: len(d) // 2])(encode(Image.effect_noise((600, 600), 60).convert("RGB"))),
        "damaged",
        id="truncated-jpeg",
    ),
    pytest.param("party.webp", lambda: animation("WEBP"), "animation", id="animated-webp"),
    pytest.param("party.png", lambda: animation("PNG"), "animation", id="apng"),
    pytest.param("party.gif", lambda: animation("GIF"), "format we accept", id="gif"),
    pytest.param("thumb.jpg", lambda: encode(picture((200, 300))), "too small", id="too-small"),
    pytest.param("bomb.png", lambda: png_claiming(30_000, 30_000), "too many pixels", id="bomb"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("name, data, reason", BAD_FILES)
def test_it_stores_no_reference_photo_and_no_file_for_a_bad_file(subject, private_media_root, name, data, reason):
    with pytest.raises(UploadRejected) as rejected:
        add_reference_photo(subject, upload(name, data()))

    assert f"“{name}”" in rejected.value.message
    assert reason in rejected.value.reason
    assert ReferencePhoto.objects.count() == 0
    assert stored_files(private_media_root) == []


@pytest.mark.django_db
@pytest.mark.parametrize("name, data, reason", BAD_FILES)
def test_it_stores_no_memory_picture_and_no_file_for_a_bad_file(memory, private_media_root, name, data, reason):
    with pytest.raises(UploadRejected) as rejected:
        add_uploaded_memory_image(memory, upload(name, data()), choose=True)

    assert f"“{name}”" in rejected.value.message
    assert MemoryImage.objects.count() == 0
    assert Memory.objects.get(pk=memory.pk).chosen_image is None
    assert stored_files(private_media_root) == []


@pytest.mark.django_db
def test_it_stores_nothing_for_a_file_over_the_size_cap(subject, private_media_root, settings):
    settings.LIFEBOOK_MAX_UPLOAD_BYTES = 1000

    with pytest.raises(UploadRejected, match="larger than"):
        add_reference_photo(subject, photo_upload("big.jpg"))

    assert ReferencePhoto.objects.count() == 0
    assert stored_files(private_media_root) == []


# --- Duplicates --------------------------------------------------------------


@pytest.mark.django_db
def test_it_rejects_the_same_photo_twice_for_one_subject(subject, private_media_root):
    data = encode(picture())
    add_reference_photo(subject, upload("ana.jpg", data))

    with pytest.raises(UploadRejected) as rejected:
        add_reference_photo(subject, upload("ana-copy.jpg", data))

    assert "ana-copy.jpg" in rejected.value.message
    assert "already among Ana’s photos" in rejected.value.reason
    assert ReferencePhoto.objects.filter(subject=subject).count() == 1
    assert len(stored_files(private_media_root)) == 1


@pytest.mark.django_db
def test_it_accepts_the_same_photo_for_another_subject(subject, patient):
    other = factories.SubjectFactory(patient=patient, name="Ana (young)")
    data = encode(picture())

    add_reference_photo(subject, upload("ana.jpg", data))
    add_reference_photo(other, upload("ana.jpg", data))

    assert ReferencePhoto.objects.filter(subject=subject).count() == 1
    assert ReferencePhoto.objects.filter(subject=other).count() == 1


@pytest.mark.django_db
def test_it_treats_a_copy_with_different_metadata_as_the_same_photo(subject):
    image = picture()
    add_reference_photo(subject, upload("ana.jpg", encode(image, "JPEG", exif=gps_exif("Canon", "EOS", 40.0))))

    with pytest.raises(UploadRejected, match="already among"):
        add_reference_photo(subject, upload("ana-2.jpg", encode(image, "JPEG", exif=gps_exif("Nikon", "D50", 41.0))))

    assert ReferencePhoto.objects.filter(subject=subject).count() == 1


@pytest.mark.django_db
def test_it_treats_a_lossless_copy_in_another_format_as_the_same_photo(subject):
    image = picture()
    add_reference_photo(subject, upload("ana.png", encode(image, "PNG")))

    with pytest.raises(UploadRejected, match="already among"):
        add_reference_photo(subject, upload("ana.webp", encode(image, "WEBP", lossless=True)))


@pytest.mark.django_db
def test_it_accepts_a_different_photo_for_the_same_subject(subject):
    add_reference_photo(subject, photo_upload("one.jpg", size=(768, 512)))
    add_reference_photo(subject, photo_upload("two.jpg", size=(512, 768)))

    assert subject.photos.count() == 2


@pytest.mark.django_db
def test_it_rejects_a_duplicate_that_slips_past_the_check_and_removes_its_file(
    subject, private_media_root, monkeypatch
):
    # Two uploads of one photo at once: both pass the check, the database refuses the second.
    data = encode(picture())
    add_reference_photo(subject, upload("ana.jpg", data))
    real_exists = QuerySet.exists
    calls = []

    def exists_misses_the_first_time(queryset):
        calls.append(queryset)
        return False if len(calls) == 1 else real_exists(queryset)

    monkeypatch.setattr(QuerySet, "exists", exists_misses_the_first_time)

    with pytest.raises(UploadRejected, match="already among Ana’s photos"):
        add_reference_photo(subject, upload("ana-again.jpg", data))

    monkeypatch.undo()
    assert ReferencePhoto.objects.filter(subject=subject).count() == 1
    assert len(stored_files(private_media_root)) == 1


# --- Where and how photos are stored -------------------------------------------


@pytest.mark.django_db
def test_it_stores_a_reference_photo_under_the_subject_with_a_random_name(subject, patient, private_media_root):
    photo = add_reference_photo(subject, photo_upload("Ana Pacheco at the beach 1962.jpg"))

    folder = f"patients/{patient.pk}/subjects/{subject.pk}/"
    assert re.fullmatch(re.escape(folder) + r"[0-9a-f]{32}\.jpg", photo.image.name)
    assert "Ana" not in photo.image.name
    assert "beach" not in photo.image.name
    assert (private_media_root / photo.image.name).is_file()
    assert stored_files(private_media_root) == [private_media_root / photo.image.name]


@pytest.mark.django_db
def test_it_records_the_original_name_size_and_dimensions(subject):
    photo = add_reference_photo(subject, photo_upload("Ana 1962.png", size=(768, 512), fmt="PNG"))

    photo.refresh_from_db()
    assert photo.original_name == "Ana 1962.png"
    assert (photo.width, photo.height) == (768, 512)
    assert photo.size_bytes == photo.image.size
    assert len(photo.content_hash) == 64
    with photo.image.open("rb") as f:
        assert reopen(f.read()).format == "JPEG"


@pytest.mark.django_db
def test_it_records_who_uploaded_the_photo(subject, owner):
    photo = add_reference_photo(subject, photo_upload(), user=owner)

    photo.refresh_from_db()
    assert photo.uploaded_by == owner


@pytest.mark.django_db
def test_it_stores_an_uploaded_memory_picture_and_chooses_it(memory, patient, owner):
    image = add_uploaded_memory_image(memory, photo_upload("Juan and Ana 1970.jpg"), user=owner, choose=True)

    image.refresh_from_db()
    assert image.source == MemoryImage.Source.UPLOADED
    assert image.memory == memory
    assert image.created_by == owner
    assert image.seed is None
    assert (image.width, image.height) == (768, 512)
    assert Memory.objects.get(pk=memory.pk).chosen_image == image
    assert memory.chosen_image == image


@pytest.mark.django_db
def test_it_stores_an_uploaded_memory_picture_under_the_patients_memories(memory, patient, private_media_root):
    image = add_uploaded_memory_image(memory, photo_upload("Juan and Ana 1970.jpg"), choose=True)

    assert image.image.name.startswith(f"patients/{patient.pk}/memories/")
    assert re.fullmatch(rf"patients/{patient.pk}/memories/{memory.pk}/[0-9a-f]{{32}}\.jpg", image.image.name)
    assert "Juan" not in image.image.name
    with image.image.open("rb") as f:
        stored = reopen(f.read())
    assert stored.format == "JPEG"
    assert (private_media_root / image.image.name).is_file()


@pytest.mark.django_db
def test_it_leaves_the_chosen_picture_alone_unless_asked(memory):
    add_uploaded_memory_image(memory, photo_upload())

    assert Memory.objects.get(pk=memory.pk).chosen_image is None
    assert memory.images.count() == 1

