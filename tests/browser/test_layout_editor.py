"""Who is where, in Chromium: drag a box and resize it with the mouse, save, reload; the keyboard path; axe."""

import pytest
from django.urls import reverse

from tests import factories
from tests.browser.test_accessibility import violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def box_of(page, name):
    """The subject's box as the page holds it: fractions from its hidden field."""
    return [float(v) for v in page.locator(f'[data-box-for="{name}"]').input_value().split(",")]


def test_a_caregiver_drags_resizes_and_places_with_the_keyboard(chromium, live_server, client, owner, patient,
                                                                 screenshot):
    memory = factories.MemoryFactory(chapter=factories.ChapterFactory(patient=patient), title="A walk by the sea",
                                     scene="Ana and Juan walking by the sea with Tobi")
    ana = factories.SubjectFactory(patient=patient, name="Ana", class_word="woman")
    juan = factories.SubjectFactory(patient=patient, name="Juan", class_word="man")
    tobi = factories.SubjectFactory(patient=patient, name="Tobi", kind="pet", class_word="dog")
    memory.subjects.add(ana, juan, tobi)
    client.force_login(owner)
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    url = live_server.url + reverse("memory_layout", args=[patient.pk, memory.pk])
    page.goto(url)
    assert violations(page) == []

    # Drag Ana's box 20% of the frame to the right and 5% up, then pull its corner 10% in.
    frame = page.locator("[data-frame]").bounding_box()
    before = box_of(page, ana.pk)
    area = page.locator(f'.layout-box[data-subject="{ana.pk}"] .layout-area').bounding_box()
    x, y = area["x"] + area["width"] / 2, area["y"] + area["height"] / 3
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + frame["width"] * 0.1, y - frame["height"] * 0.02, steps=4)
    page.mouse.move(x + frame["width"] * 0.2, y - frame["height"] * 0.05, steps=4)
    page.mouse.up()
    moved = box_of(page, ana.pk)
    assert moved[0] == pytest.approx(before[0] + 0.2, abs=0.02) and moved[1] == pytest.approx(before[1] - 0.05, abs=0.02)
    handle = page.locator(f'.layout-box[data-subject="{ana.pk}"] .layout-handle').bounding_box()
    hx, hy = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(hx, hy)
    page.mouse.down()
    page.mouse.move(hx - frame["width"] * 0.1, hy - frame["height"] * 0.1, steps=5)
    page.mouse.up()
    resized = box_of(page, ana.pk)
    assert resized[2] == pytest.approx(moved[2] - 0.1, abs=0.02) and resized[0] == pytest.approx(moved[0], abs=0.001)
    assert page.locator(f"#place-{ana.pk}").input_value() == "custom"  # the list says "where you dragged it"
    screenshot(page, "layout-editor-dragged")

    # The keyboard path: Juan's place chosen from his list with the keys alone.
    page.locator(f"#place-{juan.pk}").focus()
    page.keyboard.press("Home")  # "On the left, near"
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(live_server.url + reverse("memory_page", args=[patient.pk, memory.pk]))
    memory.refresh_from_db()
    saved = {entry["subject"]: entry["box"] for entry in memory.layout}
    assert saved[ana.pk] == pytest.approx(resized, abs=1e-4)
    assert saved[juan.pk] == pytest.approx([0.0, 0.08, 0.5, 1.0], abs=1e-4)
    assert page.get_by_text("Juan: on the left, near").is_visible()

    # Reloaded, the boxes are where they were left.
    page.goto(url)
    assert box_of(page, ana.pk) == pytest.approx(resized, abs=1e-4)
    assert page.locator(f"#place-{juan.pk}").input_value() == "left/near"
    for width, height in ((390, 844), (768, 1024)):
        page.set_viewport_size({"width": width, "height": height})
        screenshot(page, f"layout-editor-{width}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    context.close()
