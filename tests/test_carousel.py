"""The reader (carousel) and the resized WebP renditions its pictures come from."""

import io
import os
from html.parser import HTMLParser
from pathlib import Path
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image

from lifebook import renditions
from lifebook.models import MemoryImage
from tests import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]


class Slides(HTMLParser):
    """Each slide of the reader page as a dict: id, label, chapter, title, caption, mark, img (attributes)."""

    FIELDS = {"slide-chapter": "chapter", "slide-title": "title", "slide-caption": "caption", "slide-mark": "mark"}

    def __init__(self, html):
        super().__init__()
        self.slides, self.options, self.field = [], [], None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-slide" in attrs:
            self.slides.append({"id": attrs["id"], "label": attrs["aria-label"]})
        elif tag == "img" and self.slides:
            self.slides[-1]["img"] = attrs
        elif tag == "option":
            self.options.append([attrs["value"], ""])
            self.field = "option"
        elif attrs.get("class") in self.FIELDS and self.slides:
            self.field = self.FIELDS[attrs["class"]]
            self.slides[-1][self.field] = ""

    def handle_endtag(self, tag):
        self.field = None  # the fields hold no nested tags

    def handle_data(self, data):
        if self.field == "option":
            self.options[-1][1] += data
        elif self.field:
            self.slides[-1][self.field] += data


def picture(memory, *, width=64, height=64, source=MemoryImage.Source.GENERATED, demo=False, choose=True):
    image = factories.MemoryImageFactory(
        memory=memory, image__width=width, image__height=height, source=source, from_demo_model=demo,
        seed=None if source == MemoryImage.Source.UPLOADED else 7,
    )
    if choose:
        memory.chosen_image = image
        memory.save()
    return image


@pytest.fixture
def book(patient):
    """Two chapters created out of order (the book follows positions, not ids), one memory hidden."""
    working = factories.ChapterFactory(patient=patient, title="Working years", position=2)
    childhood = factories.ChapterFactory(patient=patient, title="Childhood in Soria", position=1)
    bakery = factories.MemoryFactory(chapter=working, title="The bakery on Calle Mayor", position=1,
                                     description="Juan at the counter of his bakery.")
    factories.MemoryFactory(chapter=working, title="The flood", position=2, hidden=True,
                            description="The night the river came in.")
    wedding = factories.MemoryFactory(chapter=working, title="Wedding day", position=3,
                                      description="Juan and Carmen on the church steps.")
    school = factories.MemoryFactory(chapter=childhood, title="First day at school", position=2,
                                     description="Juan with his teacher Don Luis.")
    farm = factories.MemoryFactory(chapter=childhood, title="The farm", position=1,
                                   description="Juan with his mother Ana and the goats.")
    picture(farm, demo=True)
    picture(bakery, source=MemoryImage.Source.UPLOADED)
    picture(wedding)  # generated with a real model
    return {"patient": patient, "farm": farm, "school": school, "bakery": bakery, "wedding": wedding}


def read(client, user, patient):
    client.force_login(user)
    response = client.get(reverse("book_carousel", args=[patient.pk]))
    assert response.status_code == 200
    return response


# --- The reader ---------------------------------------------------------------------------------------------


def test_slides_follow_the_book_order_with_chapter_title_and_caption(client, owner, book):
    slides = Slides(read(client, owner, book["patient"]).content.decode()).slides
    assert [(s["chapter"], s["title"], s["caption"]) for s in slides] == [
        ("Childhood in Soria", "The farm", "Juan with his mother Ana and the goats."),
        ("Childhood in Soria", "First day at school", "Juan with his teacher Don Luis."),
        ("Working years", "The bakery on Calle Mayor", "Juan at the counter of his bakery."),
        ("Working years", "Wedding day", "Juan and Carmen on the church steps."),
    ]
    assert [s["label"] for s in slides] == ["1 of 4", "2 of 4", "3 of 4", "4 of 4"]
    assert slides[0]["id"] == f"memory-{book['farm'].pk}"


def test_hidden_memories_are_left_out_even_for_the_owner(client, owner, book):
    html = read(client, owner, book["patient"]).content.decode()
    assert "The flood" not in html and "river came in" not in html


def test_the_chapter_menu_jumps_to_each_chapters_first_slide(client, owner, book):
    parsed = Slides(read(client, owner, book["patient"]).content.decode())
    assert parsed.options == [["0", "Childhood in Soria"], ["2", "Working years"]]


def test_generated_pictures_carry_the_mark_and_demo_pictures_say_so(client, owner, book):
    slides = {s["title"]: s for s in Slides(read(client, owner, book["patient"]).content.decode()).slides}
    assert slides["The farm"]["mark"] == "Generated picture (demo model)"
    assert slides["Wedding day"]["mark"] == "Generated picture"
    assert "mark" not in slides["The bakery on Calle Mayor"]  # a real photo is not marked
    assert "img" not in slides["First day at school"]  # no picture: a calm placeholder instead


def test_pictures_come_as_webp_renditions_and_only_the_first_ones_load_at_once(client, owner, book, patient):
    slides = Slides(read(client, owner, patient).content.decode()).slides
    images = [s["img"] for s in slides if "img" in s]
    farm = book["farm"].chosen_image.image.name
    assert images[0]["sizes"] == "100vw"
    # A 64-pixel picture is offered at its own width only: never enlarged.
    assert images[0]["srcset"] == f"/renditions/480/{farm} 64w"
    assert images[0]["src"] == f"/renditions/480/{farm}"
    assert images[0]["alt"] == "Juan with his mother Ana and the goats."
    # Slides 1 and 2 load at once (slide 2 has no picture); later ones wait until the reader comes near.
    assert [s.get("img", {}).get("loading") for s in slides] == ["eager", None, "lazy", "lazy"]


def test_a_large_picture_is_offered_at_every_smaller_width(client, owner, patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    name = picture(memory, width=1200, height=800).image.name
    img = Slides(read(client, owner, patient).content.decode()).slides[0]["img"]
    assert img["srcset"] == f"/renditions/480/{name} 480w, /renditions/960/{name} 960w, /renditions/1600/{name} 1200w"
    assert img["src"] == f"/renditions/960/{name}"


@pytest.mark.parametrize("original_width, offered", [
    (None, [480, 960, 1600]), (64, [64]), (480, [480]), (1000, [480, 960, 1000]), (1600, [480, 960, 1600]),
    (3000, [480, 960, 1600]),
])
def test_srcset_offers_each_width_once_and_never_more_than_the_original(original_width, offered):
    candidates = renditions.srcset_candidates("patients/1/memories/2/ab12.png", original_width)
    assert [width for _, width in candidates] == offered
    assert all(url == f"/renditions/{url.split('/')[2]}/patients/1/memories/2/ab12.png" for url, _ in candidates)


def test_the_page_stands_alone_with_a_close_link_and_its_own_script_and_styles(client, owner, book):
    html = read(client, owner, book["patient"]).content.decode()
    assert f'href="{reverse("patient_book", args=[book["patient"].pk])}">Close</a>' in html
    assert "css/carousel.css" in html and "js/carousel.js" in html
    assert "Log out" not in html  # not the site's chrome
    # Controls that need JavaScript start hidden, so without it the page is a plain list of every memory.
    assert 'data-reader-tools hidden' in html and 'data-reader-nav hidden' in html and 'data-read-aloud hidden' in html
    assert 'aria-live="polite"' in html


def test_a_therapist_reads_the_book_without_hidden_memories(client, therapist, book):
    slides = Slides(read(client, therapist, book["patient"]).content.decode()).slides
    assert [s["title"] for s in slides] == [
        "The farm", "First day at school", "The bakery on Calle Mayor", "Wedding day"]


def test_another_family_gets_404(client, stranger, book):
    client.force_login(stranger)
    assert client.get(reverse("book_carousel", args=[book["patient"].pk])).status_code == 404


@pytest.mark.parametrize("hidden", [False, True], ids=["no memories", "only hidden memories"])
def test_an_empty_book_says_so_kindly_with_a_way_back(client, owner, patient, hidden):
    if hidden:
        factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title="Kept aside", hidden=True)
    html = read(client, owner, patient).content.decode()
    assert "There is nothing to read here yet" in html
    assert f'href="{reverse("patient_book", args=[patient.pk])}"' in html
    assert "data-slide" not in html and "Kept aside" not in html


@pytest.mark.parametrize("count", [2, 30])
def test_the_number_of_queries_does_not_grow_with_the_book(client, owner, patient, count,
                                                           django_assert_max_num_queries):
    chapters = [factories.ChapterFactory(patient=patient) for _ in range(3)]
    for index in range(count):
        picture(factories.MemoryFactory(chapter=chapters[index % 3]), demo=bool(index % 2))
    client.force_login(owner)
    # session, user, patient, the audit trail's row (lifebook.audit), every memory with its chapter and picture
    with django_assert_max_num_queries(5):
        response = client.get(reverse("book_carousel", args=[patient.pk]))
    assert len(Slides(response.content.decode()).slides) == count


def test_the_dashboard_offers_each_book_to_read_and_speaks_to_a_therapist(client, therapist, owner, book):
    url = reverse("book_carousel", args=[book["patient"].pk])
    client.force_login(therapist)
    html = client.get(reverse("dashboard")).content.decode()
    assert "Books shared with you" in html and f'href="{url}">Read the book' in html
    client.force_login(owner)
    html = client.get(reverse("dashboard")).content.decode()
    assert "Books shared with you" not in html and f'href="{url}">Read the book' in html


def test_the_book_page_links_to_the_reader_and_its_thumbnails_use_renditions(client, therapist, book):
    client.force_login(therapist)
    html = client.get(reverse("patient_book", args=[book["patient"].pk])).content.decode()
    assert f'href="{reverse("book_carousel", args=[book["patient"].pk])}">Read the book</a>' in html
    assert f'srcset="/renditions/480/{book["farm"].chosen_image.image.name} 64w"' in html


# --- Renditions ---------------------------------------------------------------------------------------------


@pytest.fixture
def large(patient):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient))
    return picture(memory, width=1200, height=800)


def fetch(client, user, name, width):
    client.force_login(user)
    return client.get(reverse("rendition", kwargs={"width": width, "path": name}))


def decoded(response):
    return Image.open(io.BytesIO(response.content))


def test_a_rendition_is_webp_at_the_asked_width_and_private(client, owner, large):
    response = fetch(client, owner, large.image.name, 480)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/webp"
    assert response["Cache-Control"].startswith("private, max-age=")
    image = decoded(response)
    assert (image.format, image.size) == ("WEBP", (480, 320))


def test_a_rendition_is_kept_in_the_patients_folder(client, owner, large, patient):
    fetch(client, owner, large.image.name, 960)
    name = renditions.rendition_name(large.image.name, 960)
    assert name.startswith(f"patients/{patient.pk}/renditions/960/") and name.endswith(".webp")
    assert Image.open(default_storage.open(name)).size == (960, 640)
    # It is a stored patient file like any other, so /media/ serves it to the care team too.
    assert client.get(reverse("media", kwargs={"path": name})).status_code == 200


def test_a_picture_is_never_enlarged(client, owner, large):
    assert decoded(fetch(client, owner, large.image.name, 1600)).size == (1200, 800)


def test_a_small_picture_stays_small(client, owner, patient):
    small = picture(factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient)), width=64, height=48)
    assert decoded(fetch(client, owner, small.image.name, 480)).size == (64, 48)


@pytest.mark.parametrize("width", [100, 481, 5000])
def test_a_width_not_in_the_list_is_404_and_stores_nothing(client, owner, large, patient, width):
    assert fetch(client, owner, large.image.name, width).status_code == 404
    assert not default_storage.exists(f"patients/{patient.pk}/renditions")


def test_another_family_gets_404_and_no_work_is_done(client, stranger, large, patient):
    with mock.patch.object(renditions, "_encode_webp", side_effect=AssertionError("must not encode")):
        assert fetch(client, stranger, large.image.name, 480).status_code == 404
    assert not default_storage.exists(f"patients/{patient.pk}/renditions")


def test_a_therapist_gets_renditions(client, therapist, large):
    assert fetch(client, therapist, large.image.name, 480).status_code == 200


def test_the_second_request_reuses_the_stored_file(client, owner, large):
    first = fetch(client, owner, large.image.name, 480)
    with mock.patch.object(renditions, "_encode_webp", side_effect=AssertionError("encoded twice")):
        second = fetch(client, owner, large.image.name, 480)
    assert second.status_code == 200 and second.content == first.content


def test_a_deleted_pictures_renditions_are_no_longer_served_here(client, owner, large):
    assert fetch(client, owner, large.image.name, 480).status_code == 200
    large.image.delete(save=False)
    assert fetch(client, owner, large.image.name, 480).status_code == 404


def test_deleting_a_picture_deletes_its_renditions(client, owner, large):
    for width in (480, 960):
        assert fetch(client, owner, large.image.name, width).status_code == 200
    names = [renditions.rendition_name(large.image.name, width) for width in (480, 960)]
    assert all(default_storage.exists(name) for name in names)
    large.delete()  # as the page, the API, the admin or a cascade would
    assert not any(default_storage.exists(name) for name in names)


def test_files_that_are_not_pictures_are_404_not_500(client, owner, patient):
    folder = f"patients/{patient.pk}/memories/{factories.MemoryFactory(chapter__patient=patient).pk}"  # a real one
    default_storage.save(f"{folder}/broken.png", io.BytesIO(b"not a picture at all"))
    default_storage.save(f"patients/{patient.pk}/checkpoints/lora.safetensors", io.BytesIO(b"weights"))
    for name in (f"{folder}/broken.png", f"patients/{patient.pk}/checkpoints/lora.safetensors",
                 f"{folder}/missing.png", "secret_key", f"patients/{patient.pk}/../x.png"):
        assert fetch(client, owner, name, 480).status_code == 404, name


def test_renditions_of_renditions_are_refused(client, owner, large):
    fetch(client, owner, large.image.name, 960)
    assert fetch(client, owner, renditions.rendition_name(large.image.name, 960), 480).status_code == 404


def test_a_write_that_fails_halfway_leaves_nothing_to_serve(owner, large):
    name = renditions.rendition_name(large.image.name, 480)
    with mock.patch("lifebook.renditions.os.replace", side_effect=OSError("disk full")), pytest.raises(OSError):
        renditions.ensure_rendition(large.image.name, 480)
    folder = os.path.dirname(default_storage.path(name))
    assert not default_storage.exists(name) and os.listdir(folder) == []  # no temporary file either


def test_renditions_cannot_be_posted_to(client, owner, large):
    client.force_login(owner)
    assert client.post(reverse("rendition", kwargs={"width": 480, "path": large.image.name})).status_code == 405


# --- In a real browser --------------------------------------------------------------------------------------

# Headless Chromium has no voices: a stand-in that records what it was asked to say.
FAKE_SPEECH = """
window.spoken = []; window.cancelled = 0;
Object.defineProperty(window, "speechSynthesis", {configurable: true, value: {
  speak(utterance) { window.spoken.push(utterance.text); },
  cancel() { window.cancelled += 1; },
}});
"""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_reader_turns_pages_from_the_keyboard(client, owner, patient, live_server, chromium):
    """Keyboard, chapter menu, position, contrast and the no-JavaScript list, in headless Chromium."""
    chapters = [factories.ChapterFactory(patient=patient, title=t) for t in ("Childhood", "Working years")]
    for index in range(6):
        memory = factories.MemoryFactory(chapter=chapters[index // 3], title=f"Memory number {index + 1}",
                                         description=f"Caption number {index + 1}.")
        picture(memory, width=640, height=480, demo=True)
    client.force_login(owner)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}
    url = f"{live_server.url}{reverse('book_carousel', args=[patient.pk])}"
    shots = ROOT / "var" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.add_cookies([cookie])
    context.add_init_script(FAKE_SPEECH)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    position = page.locator("[data-position]")
    visible_title = page.locator("[data-slide]:not([hidden]) [data-slide-title]")
    assert position.text_content() == "1 of 6" and visible_title.text_content() == "Memory number 1"
    assert page.locator("[data-slide]:visible").count() == 1
    page.wait_for_function("() => document.querySelector('[data-slide] img').complete")
    page.screenshot(path=str(shots / "carousel-first.png"))

    page.keyboard.press("ArrowRight")
    assert position.text_content() == "2 of 6" and visible_title.text_content() == "Memory number 2"
    # The next slide's picture is now asked for eagerly, the one after that still waits.
    loading = page.eval_on_selector_all("[data-slide] img", "imgs => imgs.map(i => i.loading)")
    assert loading[:4] == ["eager", "eager", "eager", "lazy"]
    page.keyboard.press("End")
    assert position.text_content() == "6 of 6"
    page.keyboard.press("ArrowRight")  # past the end stays at the end
    assert position.text_content() == "6 of 6"
    assert page.get_by_role("button", name="Next").get_attribute("aria-disabled") == "true"
    page.keyboard.press("Home")
    assert position.text_content() == "1 of 6"
    page.keyboard.press("ArrowLeft")
    assert position.text_content() == "1 of 6"

    page.get_by_label("Chapter").select_option(label="Working years")
    assert visible_title.text_content() == "Memory number 4"
    page.get_by_role("button", name="Previous").click()
    assert visible_title.text_content() == "Memory number 3"
    assert page.get_by_label("Chapter").input_value() == "0"  # the menu follows the page

    read_aloud = page.get_by_role("button", name="Read aloud")
    read_aloud.click()
    assert page.evaluate("window.spoken") == ["Memory number 3. Caption number 3."]
    stop = page.get_by_role("button", name="Stop reading")
    stop.click()  # a second press stops
    assert page.evaluate("window.cancelled") >= 1 and read_aloud.is_visible()

    contrast = page.get_by_role("button", name="High contrast")
    contrast.click()
    assert contrast.get_attribute("aria-pressed") == "true"
    page.screenshot(path=str(shots / "carousel-high-contrast.png"))
    page.reload()  # the choice is remembered, and so is the page
    assert page.get_by_role("button", name="High contrast").get_attribute("aria-pressed") == "true"
    assert position.text_content() == "3 of 6"
    assert errors == []
    context.close()

    # A browser that cannot speak shows no "Read aloud" button.
    context = chromium.new_context()
    context.add_cookies([cookie])
    context.add_init_script("Object.defineProperty(window, 'SpeechSynthesisUtterance', {value: undefined})")
    page = context.new_page()
    page.goto(url)
    assert page.locator("[data-position]").text_content() == "1 of 6"  # the reader itself still works
    assert not page.get_by_role("button", name="Read aloud").is_visible()
    context.close()

    # Without JavaScript: every memory, one after another.
    context = chromium.new_context(viewport={"width": 800, "height": 800}, java_script_enabled=False)
    context.add_cookies([cookie])
    page = context.new_page()
    page.goto(url)
    assert page.locator("[data-slide]:visible").count() == 6
    assert not page.get_by_role("button", name="Next").is_visible()
    context.close()
