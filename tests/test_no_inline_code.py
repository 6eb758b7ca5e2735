"""No template carries inline script or style: the Content-Security-Policy would block it in the browser.

Scripts go in static/js, styles in static/css (see docs/ARCHITECTURE.md, "Content-Security-Policy").
"""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
PYTHON_PACKAGES = ("lifebook", "accounts", "generation")  # their format_html() strings are markup too

# Where inline code is allowed, and why. Paths are relative to templates/.
ALLOWED = {
    # Rendered into a PDF by WeasyPrint (lifebook.pdf), never served to a browser, so no CSP applies; its CSS
    # is inline so that WeasyPrint fetches nothing.
    "lifebook/book_pdf.html": {"<style> element"},
}

DJANGO_COMMENTS = re.compile(r"{#.*?#}|{%\s*comment\s*%}.*?{%\s*endcomment\s*%}", re.DOTALL)
TAG = r"<[a-zA-Z][^<>]*?"  # inside an HTML start tag
PROBLEMS = {
    # A <script> with no src runs inline; JSON data blocks (json_script) are data, never run.
    "inline <script>": re.compile(r"<script\b(?![^>]*\bsrc\s*=)(?![^>]*type\s*=\s*[\"']?application/(ld\+)?json)[^>]*>",
                                  re.IGNORECASE),
    "<style> element": re.compile(r"<style\b", re.IGNORECASE),
    "style attribute": re.compile(TAG + r"\sstyle\s*=", re.IGNORECASE),
    "on... handler attribute": re.compile(TAG + r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"=\s*[\"']?\s*javascript:", re.IGNORECASE),
    # htmx evaluates these as JavaScript (eval is off in base.html's htmx-config, and the CSP forbids it).
    "htmx attribute that evals": re.compile(TAG + r"\s(data-)?hx-(on|vars)\b|=\s*[\"']js:", re.IGNORECASE),
}


def inline_code(text):
    """The kinds of inline code found in one template's text (comments ignored)."""
    text = DJANGO_COMMENTS.sub("", text)
    return {kind for kind, pattern in PROBLEMS.items() if pattern.search(text)}


def templates():
    return sorted(path for path in TEMPLATES.rglob("*") if path.suffix in (".html", ".htm", ".svg"))


def test_the_scan_finds_each_kind_of_inline_code():
    assert inline_code('<script>alert(1)</script>') == {"inline <script>"}
    assert inline_code('<script src="/static/js/a.js" defer></script>') == set()
    assert inline_code('{{ data|json_script:"data" }}<script type="application/json" id="d">{}</script>') == set()
    assert inline_code("<style>p { color: red }</style>") == {"<style> element"}
    assert inline_code('<p class="x" style="color: red">') == {"style attribute"}
    assert inline_code('<p data-style="x">') == set()
    assert inline_code('<button type="button" onclick="go()">') == {"on... handler attribute"}
    assert inline_code('<a href="javascript:go()">') == {"javascript: URL"}
    assert inline_code('<div hx-on:click="go()">') == {"htmx attribute that evals"}
    assert inline_code('<div hx-vars="a:1">') == {"htmx attribute that evals"}
    assert inline_code("<div hx-vals='js:{a: go()}'>") == {"htmx attribute that evals"}
    assert inline_code('<div hx-get="/x" hx-trigger="every 2s" hx-swap="outerHTML">') == set()
    assert inline_code('{# a <style> in a comment #}{% comment %}<script>x</script>{% endcomment %}') == set()
    assert inline_code("Only the words onward= and style= in a sentence.") == set()


@pytest.mark.parametrize("path", templates(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_has_inline_script_or_style(path):
    name = str(path.relative_to(TEMPLATES))
    found = inline_code(path.read_text()) - ALLOWED.get(name, set())
    assert not found, f"{name} has {', '.join(sorted(found))}: move it to static/js or static/css"


def test_the_allow_list_names_only_templates_that_still_need_it():
    for name, kinds in ALLOWED.items():
        assert kinds <= inline_code((TEMPLATES / name).read_text()), f"{name} no longer needs its exception"


def test_no_python_module_writes_markup_with_inline_style_or_handlers():
    markup = re.compile(TAG + r"\s(style|on[a-z]+)\s*=", re.IGNORECASE)
    offenders = []
    for package in PYTHON_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if markup.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "markup with inline style or handlers (use a class and a stylesheet):\n" + "\n".join(offenders)
