"""Tests of `pressflow.render`: every template, every bundled example, escaping and strictness.

Rendering is pure (no models, no store), so these run the real templates on the real example
records and check what readers and the translation stage receive.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pytest
from hypothesis import given, settings, strategies as st

from markupsafe import escape

from pressflow.core.config import Settings
from pressflow.core.errors import TemplateError
from pressflow.platforms import PLATFORMS
from pressflow.publish import Item, PublishReport
from pressflow.publish.catalog import MemoryCatalog
from pressflow.publish.pages import Pages, _without_title
from pressflow.publish.model import Changes
from pressflow.publish.sitemap import release_lines
from pressflow.publish.writer import Output
from pressflow.records import Event
from pressflow.render import (
    KEEP_CLOSE,
    KEEP_OPEN,
    RELEASE,
    Renderer,
    keep,
    localized_date,
    markdown_to_html,
    markdown_to_text,
    strip_keep,
)
from pressflow.render.document import DocumentError, ReleaseDocument, release_document, release_markdown

LANGS = ("en", "es")
AUGUST_30 = dt.date(2021, 8, 30)
NOW = dt.datetime(2021, 9, 1, 12, 0, tzinfo=dt.timezone.utc)
# Every template a release goes through; a new template must be added here (and so get tested).
TEMPLATES = {
    "base.html.j2", "index.html.j2", "page.html.j2", "subscribe.html.j2", "release.md.j2",
    "partials/about.md.j2", "partials/contact.md.j2",
    *(f"posts/{channel}.txt.j2" for channel in PLATFORMS),
}


def make_event(**fields) -> Event:
    base = {"title": "Test forum", "date": "2021-08-30", "summary": "Scientists met to talk about water."}
    return Event.model_validate({**base, **fields})


def item_for(renderer: Renderer, event: Event, lang: str) -> Item:
    """What publishing would make of an approved release (its text as rendered, untranslated)."""
    return item_of(document_for(renderer, event, lang), event,
                   {c: strip_keep(renderer.post(event, lang, c).variants[0]) for c in PLATFORMS})


def document_for(renderer: Renderer, event: Event, lang: str) -> ReleaseDocument:
    markdown = strip_keep(renderer.release(event, lang).variants[0])
    return release_document(markdown, event, markdown, lang)


def item_of(document: ReleaseDocument, event: Event, posts: dict[str, str] | None = None) -> Item:
    image = document.image
    return Item(event.slug, document.lang, document.title, document.summary,
                release_markdown(document, image_lines=False), posts or {}, document.dateline.date, NOW, NOW,
                image_alt=image.alt if image else None, event=event, image_caption=image.caption if image else None,
                document=document)


def page_html(settings: Settings, item: Item) -> str:
    return Pages(Output(settings, PublishReport())).page(item, [item], None)


def index_and_sitemap(settings: Settings, items: list[Item], lang: str) -> tuple[str, str]:
    """The language index and the sitemap, written by the publisher's own writers."""
    output = Output(settings, PublishReport())
    entries = [output.entry(item) for item in items]
    Pages(output).language(lang, MemoryCatalog(entries), Changes(everything=True))
    output.staging.commit()
    sitemap = "".join(release_lines(output.site, [entry]) for entry in entries)
    return (settings.out_dir / "site" / lang / "index.html").read_text(), sitemap


@pytest.fixture
def renderer(settings) -> Renderer:
    return Renderer(settings)


def test_template_list_is_complete(settings):
    # The review page's templates (templates/review/) are tested with the review app.
    found = {str(p.relative_to(settings.templates_dir)) for p in settings.templates_dir.rglob("*.j2")
             if p.relative_to(settings.templates_dir).parts[0] != "review"}
    assert found == TEMPLATES


# --- every template, every example, two languages ----------------------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_every_template_renders_every_example(events, renderer, settings, lang):
    assert len(events) == 4
    items = []
    for _, event in events:
        drafts = renderer.drafts(event, lang)
        assert [d.channel for d in drafts] == [RELEASE, *PLATFORMS]
        for draft in drafts:
            assert draft.lang == lang
            assert len(draft.variants) == (1 if draft.channel == RELEASE else 2)
            for text in draft.variants:
                assert event.title in strip_keep(text)
        release = strip_keep(drafts[0].variants[0])
        document = release_document(release, event, release, lang)
        assert document.title == event.title and release_markdown(document) == release
        for paragraph in event.body:
            assert paragraph in release
        for quote in event.quotes:
            assert quote.text in release and quote.speaker in release
        for link in event.links:
            assert str(link.url) in release
        item = item_for(renderer, event, lang)
        page = page_html(settings, item)
        assert page.startswith("<!doctype html>") and f'<html lang="{lang}" dir="ltr">' in page
        # The text below the title (and subheadline, which the page shows above the image)
        body = str(_without_title(markdown_to_html(item.markdown), item.document.subheadline is not None))
        assert body.strip() and body in page
        assert page.count("<h1>") == 1
        if event.subheadline:
            assert f'<p class="subheadline">{escape(event.subheadline)}</p>' in page
        items.append(item)
    index, sitemap = index_and_sitemap(settings, items, lang)
    for item in items:
        assert f'href="{item.slug}.html"' in index
        assert f"/site/{lang}/{item.slug}.html</loc>" in sitemap


def test_release_has_about_and_media_contact(events, renderer):
    for _, event in events:
        release = strip_keep(renderer.release(event, "en").variants[0])
        assert "## About ANSO" in release
        assert "Alliance of International Science Organizations" in release
        assert "## Media contact" in release
        assert event.contact is not None
        assert f"{event.contact.name}: {event.contact.email}" in release


def test_release_without_contact_names_the_secretariat(renderer):
    release = strip_keep(renderer.release(make_event(), "en").variants[0])
    assert "## Media contact" in release
    assert "ANSO Secretariat: anso@cashq.ac.cn" in release
    # Optional sections without data leave no empty headings behind.
    assert "## Organizers" not in release and "## Links" not in release
    assert "\n\n\n" not in release


def test_organization_name_comes_from_settings(tmp_path):
    renderer = Renderer(Settings(out_dir=tmp_path, organization="Science Org"))
    release = strip_keep(renderer.release(make_event(), "en").variants[0])
    assert "## About Science Org" in release


# --- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lang, expected", [
    # One style per language; English as releases write dates in their text, day first.
    ("en", "30 August 2021"), ("es", "30 de agosto de 2021"), ("zh", "2021年8月30日"),
    ("pt", "30 de agosto de 2021"), ("ru", "30 августа 2021\u202fг."), ("xx-unknown", "August 30, 2021"),
    ("en-US", "August 30, 2021"), ("ar", "30 أغسطس 2021"),
])
def test_localized_dates(lang, expected):
    assert localized_date(AUGUST_30, lang) == expected


@pytest.mark.parametrize("lang, expected", [("en", "Beijing, 30 August 2021"), ("es", "Pekín, 30 de agosto de 2021"),
                                            ("zh", "北京，2021年8月30日"), ("ar", "بكين، 30 أغسطس 2021")])
def test_release_dateline_is_localized_and_kept(renderer, lang, expected):
    text = renderer.release(make_event(location={"city": "Beijing"}), lang).variants[0]
    # The city in the reader's words, the date in the language's style, all in keep marks so
    # translation leaves it alone.
    assert keep(expected) + "." in text


# --- escaping ------------------------------------------------------------------------------


HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


def test_markdown_html_is_escaped(renderer):
    event = make_event(title=HOSTILE, summary=f"Summary with {HOSTILE}.", body=[f"Body {HOSTILE}"])
    html = str(markdown_to_html(strip_keep(renderer.release(event, "en").variants[0])))
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_page_html_escapes_title_and_summary(renderer, settings):
    event = make_event(title=HOSTILE, summary=f"Summary {HOSTILE}")
    page = page_html(settings, item_for(renderer, event, "en"))
    # The one script element is the structured data, whose JSON escapes every '<', '>' and '&'.
    json_ld = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert json.loads(json_ld.group(1))["headline"] == HOSTILE
    assert not re.search(r"[<>&]", json_ld.group(1))
    page = page.replace(json_ld.group(0), "")
    assert "<script" not in page and "<b>bold" not in page
    assert "<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt; — ANSO</title>" in page
    assert 'content="&lt;script&gt;' in page  # og:title


def test_markdown_html_drops_raw_html_and_dangerous_links():
    html = str(markdown_to_html("# T\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))\n"))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text
    assert 'href="javascript' not in html


def test_text_templates_do_not_escape(renderer):
    # Posts and Markdown are plain text: an ampersand stays an ampersand.
    event = make_event(title="Water & Climate", summary="Q&A on <water>.")
    for draft in renderer.drafts(event, "en"):
        for text in draft.variants:
            assert "&amp;" not in text and "&lt;" not in text
            assert "Water & Climate" in text


# --- strictness ----------------------------------------------------------------------------


def test_missing_variable_raises_template_error_naming_the_template(renderer):
    with pytest.raises(TemplateError) as caught:
        renderer.html("page.html.j2", lang="en")
    message = str(caught.value)
    assert "page.html.j2" in message and "is undefined" in message


@pytest.fixture
def own_templates(tmp_path, settings) -> Settings:
    """A copy of the templates that a test can break."""
    folder = tmp_path / "templates"
    shutil.copytree(settings.templates_dir, folder)
    return settings.model_copy(update={"templates_dir": folder})


def test_typo_in_a_template_names_the_template(own_templates):
    path = own_templates.templates_dir / "posts" / "x.txt.j2"
    path.write_text(path.read_text().replace("event.title", "event.titel", 1))
    renderer = Renderer(own_templates)
    renderer.release(make_event(), "en")  # other templates still work
    with pytest.raises(TemplateError, match=r"posts/x\.txt\.j2.*titel"):
        renderer.drafts(make_event(), "en")


def test_syntax_error_names_template_and_line(own_templates):
    (own_templates.templates_dir / "posts" / "mastodon.txt.j2").write_text("line one\n{% if %}\n")
    with pytest.raises(TemplateError, match=r"posts/mastodon\.txt\.j2, line 2"):
        Renderer(own_templates).post(make_event(), "en", "mastodon")


def test_sandbox_refuses_unsafe_attribute_access(own_templates):
    (own_templates.templates_dir / "posts" / "x.txt.j2").write_text("{{ event.__class__.__mro__ }}\n")
    with pytest.raises(TemplateError, match=r"posts/x\.txt\.j2"):
        Renderer(own_templates).post(make_event(), "en", "x")


# --- keep marks ----------------------------------------------------------------------------


def test_keep_marks_never_survive_strip_keep_but_what_they_enclose_does(events, renderer):
    for _, event in events:
        for lang in LANGS:
            for draft in renderer.drafts(event, lang):
                for text in draft.variants:
                    kept = re.findall(f"{KEEP_OPEN}([^{KEEP_OPEN}{KEEP_CLOSE}]*){KEEP_CLOSE}", text)
                    assert kept  # templates do mark dates, names, URLs
                    stripped = strip_keep(text)
                    assert KEEP_OPEN not in stripped and KEEP_CLOSE not in stripped
                    assert all(span in stripped for span in kept), draft.channel
                    if draft.channel == RELEASE:  # the marked date reaches readers as written in `lang`
                        assert localized_date(event.date, lang) in stripped


def test_strip_keep_leaves_the_text_around_and_inside_marks():
    marked = f"Met in {keep('Kunming')} on {keep(keep('30 August'))}{KEEP_CLOSE}."
    assert strip_keep(marked) == "Met in Kunming on 30 August."


@pytest.mark.parametrize("text", [
    keep(keep("nested")), KEEP_OPEN + "unclosed", "stray " + KEEP_CLOSE, KEEP_CLOSE + KEEP_OPEN, keep("a\nb"), "",
])
def test_strip_keep_removes_every_mark(text):
    stripped = strip_keep(text)
    assert KEEP_OPEN not in stripped and KEEP_CLOSE not in stripped


# --- plain-text and summaries --------------------------------------------------------------


def test_markdown_to_text_underlines_headings():
    text = markdown_to_text("# Title here\n\nBody.\n\n## About\n\nMore.\n")
    assert text.splitlines()[:2] == ["TITLE HERE", "=========="]
    assert "About\n-----" in text


def test_title_and_summary_of_a_release(renderer):
    event = make_event(location={"city": "Kunming", "country": "CN"})
    document = document_for(renderer, event, "en")
    assert document.title == "Test forum"
    assert document.summary == "Kunming, 30 August 2021. Scientists met to talk about water."
    assert (document.dateline.date, document.dateline.city, document.dateline.country) == (AUGUST_30, "Kunming", "CN")


# Text without '//', '@' or a dot before a letter skips linkify-it's own (slow) test: it must
# come out exactly as linkify would have left it.
ADDRESS_PIECES = list("ab zZ.0@/:-_\n#*[]()<>") + ["www", "com", "org", "рф", "例", "http", "mailto", "xn--p1ai",
                                                  "。", "．"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=30).map("".join))
def test_text_skipping_the_address_search_renders_as_with_it(text):
    from pressflow import render

    if not render.may_hold_address(text):
        assert render._markdown_without_links.render(text) == render._markdown.render(text)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=30).map("".join))
def test_the_address_pre_check_is_the_plain_pattern(text):
    """The pre-check, written to find dots fast, answers as the plain pattern would."""
    from pressflow import render

    assert render.may_hold_address(text) == bool(re.search(r"//|@|[^\W_]\.[^\W\d_]", text))


@pytest.mark.parametrize("text", ["see anso.org", "write to press@anso.org", "https://x.y/z", "访问 例子.com", "сайт a.рф"])
def test_addresses_still_become_links(text):
    assert "<a href=" in str(markdown_to_html(text))
