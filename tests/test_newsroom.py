"""A newsroom an office puts its name on: what a release's page, feeds and outbound files carry
beyond the text (issue 25).

Records with the new fields (subheadline, image caption and credit, a contact's phone, a city
named per language) are prepared in English, Spanish and Arabic with the tiny test models,
approved and published; the pages, feeds and outbound files are read back.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import feedparser
import pytest
from lxml import html

from conftest import EVENTS
from pressflow.prepare import pipeline
from pressflow.drafts import service
from pressflow.drafts import store
from pressflow.core.config import Settings
from pressflow.core.errors import RecordError
from pressflow.render.places import city_name, place_line
from pressflow.publish import publish
from pressflow.records import Event, Location, validate_record
from pressflow.publish.social_image import png_size, svg_to_png
from pressflow.core import db

NOW = dt.datetime(2021, 9, 20, 8, 0, tzinfo=dt.timezone.utc)
SVG = (EVENTS / "images" / "beauty-of-life.svg").read_bytes()
EXHIBITION = {
    "id": "exhibition", "title": "Biodiversity exhibition opens in Beijing", "date": "2021-08-30",
    "subheadline": "Panels from five countries mark fifty years of the biosphere programme",
    "summary": "An exhibition on the beauty of life on Earth opened at the botanical garden.",
    "publish_at": "2021-08-30T10:00:00+08:00",
    "location": {"venue": "Beijing Botanical Garden", "city": "Beijing", "country": "CN"},
    "languages": ["es", "ar"], "tags": ["biodiversity", "exhibition"],
    "image": {"url": "poster.svg", "alt": "A stylised green leaf", "caption": "The exhibition poster.",
              "credit": "ANSO/Li Wei"},
    "contact": {"name": "Press office", "email": "press@example.org", "phone": "+86 10 5555 0100"},
}
EARLIER = {
    "id": "earlier-forum", "title": "Forum on biodiversity data", "date": "2021-08-01",
    "summary": "Researchers agreed on shared biodiversity data.", "languages": ["es", "ar"],
    "location": {"city": {"en": "Cairo", "es": "El Cairo (Egipto)"}, "country": "EG"},
    "tags": ["Biodiversity"],
}
UNRELATED = {"id": "unrelated", "title": "Water forum", "date": "2021-08-02", "summary": "About water.",
             "languages": ["es", "ar"], "tags": ["water"]}


def page(out: Path, lang: str, slug: str = "exhibition"):
    return html.fromstring((out / "site" / lang / f"{slug}.html").read_bytes())


@pytest.fixture(scope="module")
def site(argos_models, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("records")
    (folder / "poster.svg").write_bytes(SVG)
    out = tmp_path_factory.mktemp("newsroom") / "out"
    settings = Settings(out_dir=out)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "16")
        early = [(folder / "a.yaml", Event.model_validate(r)) for r in (EARLIER, UNRELATED)]
        assert not pipeline.prepare(early, settings).failed
        service.approve_all(settings, reviewer="ana")
        assert not publish(settings, now=NOW - dt.timedelta(days=1)).errors
        report = pipeline.prepare([(folder / "b.yaml", Event.model_validate(EXHIBITION))], settings)
        assert not report.failed
    service.approve_all(settings, reviewer="ana")
    published = publish(settings, now=NOW)
    assert not published.errors and published.releases["exhibition"] == ["ar", "en", "es"]
    db.get_engine(settings.db_url).dispose()
    return out


# --- record ----------------------------------------------------------------------------------


def test_the_new_fields_are_optional_and_change_no_fingerprint():
    plain = {"title": "Forum", "date": "2021-01-01", "summary": "Met."}
    explicit = {**plain, "subheadline": None, "image": None, "contact": None}
    assert validate_record(plain).fingerprint() == validate_record(explicit).fingerprint()
    event = validate_record(EXHIBITION)
    assert event.subheadline.startswith("Panels") and event.image.credit == "ANSO/Li Wei"
    assert event.contact.phone == "+86 10 5555 0100"


@pytest.mark.parametrize("phone", ["call us", "12", "+86 10 5555 0100 <script>", "0100\n200"])
def test_a_phone_number_that_is_none_is_refused(phone):
    with pytest.raises(RecordError, match="contact.phone"):
        validate_record({"title": "Forum", "date": "2021-01-01", "summary": "Met.",
                         "contact": {"name": "Office", "email": "a@example.org", "phone": phone}})


def test_a_city_may_be_named_per_language():
    location = Location(city={"en": "Cairo", "ar": "القاهرة الكبرى"}, country="EG")
    assert city_name(location, "ar") == "القاهرة الكبرى"  # the record's own name wins
    assert city_name(location, "es") == "El Cairo"  # then the registry
    assert city_name(location, "en") == "Cairo"
    for city, message in (({}, "its name per language"), ({"xx-yy-zz": "Cairo"}, "'xx-yy-zz' is not a known language tag"),
                          ({"ar": "a\nb"}, "must be one line")):
        with pytest.raises(RecordError, match="location.city") as caught:
            validate_record({"title": "Forum", "date": "2021-01-01", "summary": "Met.", "location": {"city": city}})
        assert message in str(caught.value) and str(caught.value).count("field ") == 1  # one plain line


@pytest.mark.parametrize("city, lang, expected", [
    ("Beijing", "ar", "بكين، الصين"), ("Beijing", "zh", "北京，中国"), ("Beijing", "es", "Pekín, China"),
    ("Beijing", "en", "Beijing, China"), ("Lima", "ar", "ليما، الصين"),  # CLDR's city names
    ("Nowhere Town", "ar", "Nowhere Town، الصين"),  # unknown: as written
])
def test_places_read_in_the_readers_language(city, lang, expected):
    assert place_line(Location(city=city, country="CN"), lang) == expected


def test_the_glossary_names_a_city_before_the_registry(tmp_path):
    glossary = tmp_path / "glossary.yaml"
    glossary.write_text("translations:\n  es:\n    Beijing: Beijing (Pekín)\n", encoding="utf-8")
    assert city_name(Location(city="Beijing"), "es", glossary_file=glossary) == "Beijing (Pekín)"


# --- page --------------------------------------------------------------------------------------


def test_the_page_has_subheadline_caption_credit_and_end_mark(site):
    doc = page(site, "en")
    assert doc.xpath("string(//hgroup/h1)") == EXHIBITION["title"]
    assert doc.xpath("string(//hgroup/p[@class='subheadline'])") == EXHIBITION["subheadline"]
    caption = doc.xpath("string(//figure/figcaption)")
    assert "The exhibition poster." in caption and "ANSO/Li Wei" in caption
    assert doc.xpath("string(//p[@class='end-mark'])") == "###"
    assert "+86 10 5555 0100" in doc.xpath("string(//article)")  # the contact's phone
    assert "[caption]" not in doc.xpath("string(//article)")


def test_the_dateline_uses_the_readers_city_and_one_date_style(site):
    assert page(site, "en").xpath("string(//article/p[@class='meta'])") == "30 August 2021 · Beijing, China"
    assert page(site, "ar").xpath("string(//article/p[@class='meta'])") == "30 أغسطس 2021 · بكين، الصين"
    body = page(site, "es").xpath("string(//article)")
    assert "Pekín, 30 de agosto de 2021" in body


def test_translated_pages_say_so_and_link_the_original(site):
    assert page(site, "en").xpath("//p[@class='translated']") == []
    for lang in ("es", "ar"):
        (notice,) = page(site, lang).xpath("//main//p[@class='translated']")
        (link,) = notice.xpath("a")
        assert link.get("href") == "../en/exhibition.html" and link.get("hreflang") == "en"
    assert "tradujo automáticamente del inglés" in page(site, "es").xpath("string(//p[@class='translated'])")


def test_share_links_are_plain_links_to_each_network(site):
    doc = page(site, "en")
    links = doc.xpath("//nav[@class='share']//a/@href")
    assert [link.split("/")[2] if "//" in link else link.split(":")[0] for link in links] == [
        "x.com", "www.facebook.com", "www.linkedin.com", "bsky.app", "mailto"]
    assert all("http%3A%2F%2F127.0.0.1%3A8000%2Fsite%2Fen%2Fexhibition.html" in link for link in links)
    assert doc.xpath("//script[@src]") == []  # no third-party script


def test_related_releases_share_a_tag_and_came_before(site):
    doc = page(site, "en")
    assert doc.xpath("//section[@class='related']//a/@href") == ["../en/earlier-forum.html"]
    assert page(site, "en", "earlier-forum").xpath("//section[@class='related']") == []  # nothing before it


def test_a_print_stylesheet_hides_what_paper_cannot_use(site):
    css = page(site, "en").xpath("string(//style)")
    assert "@media print" in css and ".share" in css.split("@media print", 1)[1]


def test_an_svg_image_gets_a_png_preview_for_social_cards(site):
    doc = page(site, "en")
    og = {m.get("property"): m.get("content") for m in doc.xpath("//meta[@property]")}
    assert og["og:image"].endswith("/site/media/exhibition-poster-social.png")
    assert og["og:image:type"] == "image/png" and og["og:image:width"] == "1200"
    png = (site / "site" / "media" / "exhibition-poster-social.png").read_bytes()
    assert png_size(png) == (1200, 675)
    assert doc.xpath("//figure/img/@src") == ["../media/exhibition-poster.svg"]  # the page keeps its SVG
    manifest = json.loads((site / "outbox" / "exhibition" / "manifest.json").read_text())
    assert "site/media/exhibition-poster-social.png" in {f["path"] for f in manifest["files"]}


def test_svg_to_png_draws_the_picture():
    png, width, height = svg_to_png(SVG, 600)
    assert (width, height) == (600, 338) and png_size(png) == (600, 338)


def test_a_web_svg_image_warns_that_previews_will_not_show(tmp_path, argos_models):
    settings = Settings(out_dir=tmp_path / "out")
    record = {"id": "web-svg", "title": "Forum", "date": "2021-01-01", "summary": "Met.", "languages": [],
              "image": {"url": "https://media.example.org/poster.svg", "alt": "A poster"}}
    pipeline.prepare([(None, Event.model_validate(record))], settings)
    service.approve_all(settings, reviewer="ana")
    report = publish(settings, now=NOW)
    assert any("web-svg" in w and "SVG" in w and "LinkedIn" in w for w in report.warnings), report.warnings


# --- feeds ---------------------------------------------------------------------------------------


def test_feed_entries_do_not_repeat_the_headline(site):
    for kind in ("atom.xml", "rss.xml"):
        parsed = feedparser.parse((site / "feeds" / "en" / kind).read_bytes())
        for entry in parsed.entries:
            content = entry.content[0].value if "content" in entry else entry.get("description", "")
            assert "<h1>" not in content and not content.lstrip().startswith(entry.title)
    feed = json.loads((site / "feeds" / "en" / "feed.json").read_text())
    assert all("<h1>" not in item["content_html"] for item in feed["items"])


def test_a_subscribe_page_per_language_linked_from_the_navigation(site):
    for lang in ("en", "es", "ar"):
        doc = page(site, lang, "subscribe")
        codes = doc.xpath("//ul[@class='feeds']//code/text()")
        assert f"http://127.0.0.1:8000/feeds/{lang}/atom.xml" in codes
        assert f"http://127.0.0.1:8000/feeds/{lang}/rss.xml" in codes
        assert f"http://127.0.0.1:8000/feeds/{lang}/feed.json" in codes
        assert "http://127.0.0.1:8000/feeds/all/atom.xml" in codes
        assert doc.xpath("//nav[@class='site-nav']/a[@aria-current='page']/@href") == ["subscribe.html"]
        for name in ("exhibition.html", "index.html"):
            assert page(site, lang, Path(name).stem).xpath("//nav[@class='site-nav']/a[2]/@href") == ["subscribe.html"]
    assert "feed reader" in page(site, "en", "subscribe").xpath("string(//main)")


# --- outbound files -------------------------------------------------------------------------------


def test_outbound_files_carry_release_line_url_image_contact_and_end_mark(site):
    folder = site / "outbox" / "exhibition" / "en"
    markdown = (folder / "press-release.md").read_text(encoding="utf-8")
    text = (folder / "press-release.txt").read_text(encoding="utf-8")
    doc = html.fromstring((folder / "press-release.html").read_bytes())
    line = "EMBARGOED UNTIL 30 August 2021, 02:00 UTC (10:00 UTC+08:00)"
    url = "http://127.0.0.1:8000/site/en/exhibition.html"
    image = "http://127.0.0.1:8000/site/media/exhibition-poster.svg"
    assert markdown.startswith(f"**{line}**  \nWeb version: <{url}>\n\n# {EXHIBITION['title']}\n")
    assert text.startswith(f"{line}\nWeb version: {url}\n\n{EXHIBITION['title'].upper()}\n")
    assert f"![A stylised green leaf](<{image}>)" in markdown
    for content in (markdown, text):
        assert "Press office: press@example.org, +86 10 5555 0100" in content
        assert f"Image: {image}" in content and "Alt text: A stylised green leaf" in content
        assert "Caption: The exhibition poster." in content and "Credit: ANSO/Li Wei" in content
        assert "[image]" not in content and "[caption]" not in content
    assert "\n\\#\\#\\#\n" in markdown and "\n###\n" in text
    assert doc.xpath("string(//p[@class='release-line']/strong)") == line
    assert doc.xpath("//p[@class='release-line']/a/@href") == [url]
    assert doc.xpath("string(//p[@class='end-mark'])") == "###"
    assert "ANSO/Li Wei" in doc.xpath("string(//figcaption)")


def test_a_release_without_embargo_is_for_immediate_release_in_its_language(site):
    assert (site / "outbox" / "earlier-forum" / "en" / "press-release.txt").read_text().startswith(
        "FOR IMMEDIATE RELEASE\n")
    assert (site / "outbox" / "earlier-forum" / "es" / "press-release.txt").read_text().startswith(
        "PARA DIFUSIÓN INMEDIATA\nVersión web: http://127.0.0.1:8000/site/es/earlier-forum.html\n")
    assert (site / "outbox" / "exhibition" / "ar" / "press-release.md").read_text().startswith(
        "**محظور النشر حتى 30 أغسطس 2021، 02:00 UTC")


def test_the_release_is_read_back_from_its_outbound_markdown():
    from pressflow.publish.outbox import release_of_outbound

    wrapped = "**FOR IMMEDIATE RELEASE**  \nWeb version: <u>\n\n# Title\n\nText.\n\n\\#\\#\\#\n\n## Image\n\n- Image: x\n"
    assert release_of_outbound(wrapped) == "# Title\n\nText.\n"


@pytest.mark.parametrize("publish_at, lang, expected", [
    ("2021-08-30T10:00:00+08:00", "en", "EMBARGOED UNTIL 30 August 2021, 02:00 UTC (10:00 UTC+08:00)"),
    ("2021-08-30T21:30:00-05:00", "en", "EMBARGOED UNTIL 31 August 2021, 02:30 UTC (30 August 2021, 21:30 UTC-05:00)"),
    ("2021-08-30T02:00:00Z", "es", "EMBARGO HASTA EL 30 de agosto de 2021, 02:00 UTC"),
    (None, "zh", "即时发布"),
])
def test_the_release_line_gives_the_embargo_in_utc_and_the_records_offset(publish_at, lang, expected):
    from pressflow.publish.model import Item
    from pressflow.publish.outbox import release_line
    from pressflow.publish.pages import labels

    event = validate_record({"title": "T", "date": "2021-08-30", "summary": "S", "publish_at": publish_at})
    item = Item("t", lang, "T", "S", "# T\n", {}, event.date, NOW, NOW, event=event, publish_at=event.publish_at)
    assert release_line(item, labels(lang)) == expected


# --- posts and generated lines ----------------------------------------------------------------


@pytest.mark.parametrize("channel, least", [("bluesky", 270), ("x", 250), ("mastodon", 400)])
def test_posts_use_their_room_with_summary_and_hashtags(events, settings, channel, least):
    from pressflow.platforms import PLATFORMS
    from pressflow.render import Renderer, choose_post, strip_keep

    renderer = Renderer(settings)
    for _, event in events:
        text, _ = choose_post(channel, tuple(strip_keep(v) for v in renderer.post(event, "en", channel).variants))
        platform = PLATFORMS[channel]
        assert least <= platform.count(text) <= platform.limit, (event.slug, platform.count(text))
        assert event.title in text and event.summary.split()[0] in text.split(event.title, 1)[1]
        assert event.hashtags[0] in text and renderer.page_url("en", event.slug) in text


def test_linkedin_lists_organizers_without_guessing_articles(events, settings):
    from pressflow.render import Renderer, strip_keep

    renderer = Renderer(settings)
    for _, event in events:
        text = strip_keep(renderer.post(event, "en", "linkedin").variants[0])
        assert "Organized by" not in text
        assert f"Organizers: {'; '.join(event.organizers)}." in text


# Every generated sentence of the site, read by a person, in every bundled language (English as
# the source); and the rules that make the sentence right whatever the source language.
TRANSLATED_LINES = {
    "en": None,
    "es": "Este texto se tradujo automáticamente del inglés y lo revisaron personas antes de publicarlo. "
          "Leer el original en inglés",
    "fr": "Ce texte a été traduit automatiquement de sa version originale en anglais et relu par des personnes "
          "avant sa publication. Lire l’original en anglais",
    "pt": "Este texto foi traduzido automaticamente do inglês e revisado por pessoas antes da publicação. "
          "Ler o original em inglês",
    "ru": "Этот текст переведён машинным переводом с языка «английский» и проверен людьми перед публикацией. "
          "Читать оригинал (английский)",
    "zh": "本文由机器从英语翻译，并在发布前经人工审校。 阅读英语原文",
    "ar": "تُرجم هذا النص آليًا من الإنجليزية وراجعه أشخاص قبل نشره. اقرأ النص الأصلي بالإنجليزية",
}


def bundled_label_languages() -> list[str]:
    from pressflow.publish.pages import _all_labels

    return sorted(_all_labels())


def test_every_bundled_language_has_every_label():
    from pressflow.publish.pages import _all_labels

    labels = _all_labels()
    assert set(TRANSLATED_LINES) == set(labels)
    for lang, words in labels.items():
        assert set(words) == set(labels["en"]), lang
        assert all(value.strip() == value and "  " not in value for value in words.values()), lang


@pytest.mark.parametrize("lang", sorted(TRANSLATED_LINES))
def test_the_machine_translation_line_reads_right(lang):
    from pressflow.records.languages import language_name
    from pressflow.publish.pages import labels

    t = labels(lang)
    if TRANSLATED_LINES[lang] is not None:
        name = language_name("en", lang)
        line = f"{t['translated'].replace('{language}', name)} {t['original'].replace('{language}', name)}"
        assert line == TRANSLATED_LINES[lang]
    for source in bundled_label_languages():  # any bundled language may be the source
        name = language_name(source, lang)
        sentence = t["translated"].replace("{language}", name)
        assert "{" not in sentence and sentence.endswith((".", "。"))
        if lang == "fr":  # no elision to guess: "de l’chinois" would be wrong
            assert "l’" + name not in sentence and "de " + name not in sentence
        if lang in ("es", "pt"):  # language names are masculine: del/do + name
            assert f" {'del' if lang == 'es' else 'do'} {name} " in sentence


def test_the_release_line_and_labels_of_outbound_files_read_right():
    from pressflow.publish.pages import labels

    assert labels("en")["immediate"] == "FOR IMMEDIATE RELEASE" and labels("en")["embargoed"] == "EMBARGOED UNTIL"
    assert labels("fr")["embargoed"].endswith("JUSQU’AU")  # "... JUSQU’AU 30 août 2021"
    assert labels("es")["embargoed"].endswith("HASTA EL")  # "... HASTA EL 30 de agosto de 2021"


def test_markup_in_the_new_fields_is_shown_as_text(tmp_path):
    from pressflow.publish import PublishReport
    from pressflow.publish.model import Image as PublishedImage, Item
    from pressflow.publish.pages import Pages
    from pressflow.publish.writer import Output
    from pressflow.render import Renderer, strip_keep
    from pressflow.render.document import release_document, release_markdown

    hostile = "<script>alert('x')</script> & <b>bold</b>"
    event = validate_record({
        "title": "Forum", "date": "2021-01-01", "summary": "Met.", "subheadline": hostile,
        "location": {"city": {"en": hostile}, "country": "CN"},
        "image": {"url": "https://media.example.org/a.jpg", "alt": hostile, "caption": hostile, "credit": hostile}})
    settings = Settings(out_dir=tmp_path / "out")
    markdown = strip_keep(Renderer(settings).release(event, "en").variants[0])
    document = release_document(markdown, event, markdown, "en")
    alt = document.image.alt
    item = Item(event.slug, "en", document.title, document.summary, release_markdown(document, image_lines=False),
                {}, event.date, NOW, NOW, image=event.image.url, image_alt=alt, event=event,
                image_caption=document.image.caption, tags=["forum"], document=document)
    image = PublishedImage(event.image.url, "image/jpeg", None, alt)
    page = Pages(Output(settings, PublishReport())).page(item, [item], image)
    assert "<script>" not in page.split("</head>", 1)[1] and "<b>bold</b>" not in page
    doc = html.fromstring(page)
    assert doc.xpath("string(//p[@class='subheadline'])") == hostile
    assert hostile in doc.xpath("string(//figcaption)") and doc.xpath("//figure/img/@alt") == [hostile]
    assert hostile in doc.xpath("string(//p[@class='meta'])")
