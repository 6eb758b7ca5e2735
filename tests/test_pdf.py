"""The large-print PDF: a cover, a page per chapter, one page per visible memory, pictures only from this book."""

import io
import math

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader

from lifebook.models import MemoryImage
from lifebook.pdf import MAX_PICTURE_SIDE, BookFetcher, RefusedURL, download_name, downscaled_jpeg, internal_url
from tests import factories

pytestmark = pytest.mark.django_db


def picture_file(size=(64, 64), color="blue", fmt="PNG"):
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return ContentFile(buffer.getvalue(), name=f"x.{fmt.lower()}")


def choose_picture(memory, **fields):
    fields.setdefault("image", picture_file())
    memory.chosen_image = factories.MemoryImageFactory(memory=memory, **fields)
    memory.save()
    return memory.chosen_image


@pytest.fixture
def book(patient):
    """2 chapters with 3 memories, one hidden, plus an empty chapter that the PDF leaves out."""
    childhood = factories.ChapterFactory(patient=patient, title="Growing up in Cádiz", life_stage="childhood")
    beach = factories.MemoryFactory(chapter=childhood, title="Summer at La Caleta",
                                    description="Juan with his mother Ana at the beach.")
    choose_picture(beach, from_demo_model=True)
    factories.MemoryFactory(chapter=childhood, title="The night of the flood", description="Too hard.", hidden=True)
    work = factories.ChapterFactory(patient=patient, title="The shop", life_stage="adulthood")
    shop = factories.MemoryFactory(chapter=work, title="Opening day",
                                   description="Juan and his wife Carmen behind the counter.")
    # A large real photo: embedded downscaled, and with no "Generated" mark.
    choose_picture(shop, source=MemoryImage.Source.UPLOADED, seed=None,
                   image=picture_file(size=(3000, 2000), color="green", fmt="JPEG"))
    factories.ChapterFactory(patient=patient, title="Still to write")
    return patient


def download(client, user, patient):
    client.force_login(user)
    return client.get(reverse("book_pdf", args=[patient.pk]))


def pdf_of(response) -> PdfReader:
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    return PdfReader(io.BytesIO(response.content))


def page_texts(reader):
    return [" ".join(page.extract_text().split()) for page in reader.pages]


def pictures_on(page):
    """The images a page draws. WeasyPrint shares one resource dictionary between pages, so
    `page.images` lists every picture in the book: follow the page's own `Do` operators instead."""
    drawn = [args[0] for args, operator in page.get_contents().operations if operator == b"Do"]
    return [page.images[name] for name in drawn]


def test_one_page_per_visible_memory_after_a_cover_and_a_page_per_chapter(client, owner, book):
    response = download(client, owner, book)
    reader = pdf_of(response)
    # 1 cover + 2 chapters with visible memories + 2 visible memories; the empty chapter is left out.
    assert len(reader.pages) == 5
    cover, childhood, beach, work, shop = page_texts(reader)
    assert "Juan" in cover and "Life book" in cover
    assert "Growing up in Cádiz" in childhood and "Childhood" in childhood
    assert "Summer at La Caleta" in beach and "Juan with his mother Ana at the beach." in beach
    assert "Generated picture" in beach and "(demo model)" in beach
    assert "The shop" in work and "Adulthood" in work
    assert "Opening day" in shop and "Juan and his wife Carmen behind the counter." in shop
    assert "Generated" not in shop  # a real photo carries no mark
    everything = " ".join(page_texts(reader))
    assert "flood" not in everything and "Too hard" not in everything and "Still to write" not in everything
    # Page numbers in the footer, not on the cover.
    assert beach.endswith("3") and shop.endswith("5") and not cover.endswith("1")


def test_the_pdf_is_an_attachment_that_no_cache_keeps(client, owner, book):
    response = download(client, owner, book)
    assert response["Content-Disposition"] == 'attachment; filename="juan-pacheco-life-book.pdf"'
    assert response["Cache-Control"] == "private, no-store"


def test_the_file_name_is_plain_ascii(patient):
    patient.name = "José Núñez-Pérez"
    assert download_name(patient) == "jose-nunez-perez-life-book.pdf"
    patient.name = "李小龙"
    assert download_name(patient) == "patient-life-book.pdf"


def test_pictures_are_embedded_and_large_ones_downscaled(client, owner, book):
    reader = pdf_of(download(client, owner, book))
    cover, childhood, beach, _, shop = reader.pages
    (on_cover,) = pictures_on(cover)  # the first memory's picture is on the cover too
    (generated,) = pictures_on(beach)
    assert on_cover.image.size == generated.image.size == (64, 64) and not pictures_on(childhood)
    (photo,) = pictures_on(shop)
    assert photo.image.size == (MAX_PICTURE_SIDE, 1067)  # 3000 x 2000, downscaled in proportion
    assert photo.image.getpixel((800, 500))[1] > 100  # the green photo, not another one
    assert photo.name.endswith(".jpg")  # embedded as JPEG, so a long book stays small


def test_large_print_in_dejavu_sans(client, owner, book):
    """Titles at 28pt or more and captions at 20pt or more, as large print needs."""
    page = pdf_of(download(client, owner, book)).pages[2]
    sizes = {}

    def remember_size(text, cm, tm, font, font_size):
        scale = math.hypot(tm[2], tm[3]) * math.hypot(cm[2], cm[3])
        if text.strip():
            sizes[text.strip()] = font_size * scale

    page.extract_text(visitor_text=remember_size)
    title = next(size for text, size in sizes.items() if "Summer" in text)
    caption = next(size for text, size in sizes.items() if "mother" in text)
    assert title >= 28 and caption >= 20
    fonts = {font["/BaseFont"] for font in page["/Resources"]["/Font"].values()}
    assert all("DejaVu-Sans" in name for name in fonts), fonts


def test_a_memory_without_a_picture_still_has_its_page(client, owner, patient):
    chapter = factories.ChapterFactory(patient=patient, title="Youth")
    factories.MemoryFactory(chapter=chapter, title="The first dance", description="Juan and Ana at the fiesta.")
    painted = factories.MemoryFactory(chapter=chapter, title="The wedding", description="Juan and Ana married.")
    choose_picture(painted)  # generated with a trained model, not the demo one
    reader = pdf_of(download(client, owner, patient))
    assert len(reader.pages) == 4
    _, _, dance, wedding = page_texts(reader)
    assert "The first dance" in dance and "Juan and Ana at the fiesta." in dance and not pictures_on(reader.pages[2])
    assert "Generated picture" in wedding and "demo model" not in wedding


def test_a_book_with_no_memories_is_a_cover_with_a_kind_line(client, owner, patient):
    factories.ChapterFactory(patient=patient, title="Childhood")
    reader = pdf_of(download(client, owner, patient))
    assert len(reader.pages) == 1
    (cover,) = page_texts(reader)
    assert "Juan" in cover and "Life book" in cover and "memories will fill these pages soon" in cover


def test_a_therapist_can_download_the_book_without_hidden_memories(client, therapist, book):
    reader = pdf_of(download(client, therapist, book))
    assert len(reader.pages) == 5 and "flood" not in " ".join(page_texts(reader))


def test_the_book_page_links_to_the_pdf_for_everyone_on_the_team(client, therapist, book):
    client.force_login(therapist)
    page = client.get(reverse("patient_book", args=[book.pk])).content.decode()
    assert f'href="{reverse("book_pdf", args=[book.pk])}">Large-print PDF</a>' in page


def test_another_family_gets_404_and_an_anonymous_visitor_the_login(client, stranger, book):
    url = reverse("book_pdf", args=[book.pk])
    assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(stranger)
    assert client.get(url).status_code == 404


def test_the_fetcher_reads_only_this_patients_files(book):
    fetcher = BookFetcher(book.pk)
    own = MemoryImage.objects.filter(memory__chapter__patient=book).first().image.name
    response = fetcher.fetch(internal_url(own))
    assert response.content_type == "image/jpeg" and Image.open(io.BytesIO(response.read())).format == "JPEG"

    other_patient = factories.PatientFactory(name="Someone Else")
    other = choose_picture(factories.MemoryFactory(chapter=factories.ChapterFactory(patient=other_patient)))
    refused = [
        internal_url(other.image.name),  # another family's picture
        internal_url(f"patients/{book.pk}/../{other_patient.pk}/x.png"),
        internal_url("/etc/passwd"),
        f"http://testserver/media/{own}",  # over HTTP: the server would fetch from itself
        f"https://example.com/{own}",
        "file:///etc/passwd",
        "data:image/png;base64,iVBORw0KGgo=",
    ]
    for url in refused:
        with pytest.raises(RefusedURL):
            fetcher.fetch(url)


def test_pictures_print_upright_on_white():
    """A phone photo stored on its side (EXIF orientation) is turned; transparency becomes white paper."""
    sideways = Image.new("RGB", (300, 200), "red")
    exif = sideways.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view"
    buffer = io.BytesIO()
    sideways.save(buffer, format="JPEG", exif=exif)
    upright = Image.open(io.BytesIO(downscaled_jpeg(io.BytesIO(buffer.getvalue()))))
    assert upright.format == "JPEG" and upright.size == (200, 300) and not upright.getexif()

    buffer = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(buffer, format="PNG")
    flattened = Image.open(io.BytesIO(downscaled_jpeg(io.BytesIO(buffer.getvalue()))))
    assert flattened.mode == "RGB" and min(flattened.getpixel((20, 20))) > 245


def test_a_picture_whose_file_is_gone_still_leaves_the_memory_on_its_page(client, owner, patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title="The wedding",
                                     description="Juan and Ana married.")
    picture = choose_picture(memory)
    picture.image.storage.delete(picture.image.name)
    reader = pdf_of(download(client, owner, patient))
    assert len(reader.pages) == 3 and "Juan and Ana married." in page_texts(reader)[2]


def test_making_a_pdf_leaves_upload_checks_strict():
    """WeasyPrint's import loosens Pillow for the whole process; lifebook.pdf must put it back."""
    from PIL import ImageFile

    import lifebook.pdf  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
