"""The release document: each draft revision's text as typed fields, parsed when it is stored or
edited (strictly, one line saying what is wrong), and the only thing publishing reads."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import feedparser
import pytest
import yaml
from lxml import html

from pressflow import publish
from pressflow.core import db
from pressflow.core.config import Settings
from pressflow.drafts import service, store
from pressflow.prepare.pipeline import prepare
from pressflow.records import Event, load_records
from pressflow.render import Renderer, markdown_to_html, markdown_to_text, strip_keep
from pressflow.render.document import (DocumentError, ReleaseDocument, load_document, parse_release,
                                       release_document, release_markdown, shape_for)

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-migrations.db"
RECORD = {
    "id": "forum", "title": "Forum on green technology", "subheadline": "Three days online",
    "date": "2021-06-11", "summary": "Scientists met online.", "location": {"city": "Tashkent", "country": "UZ"},
    "languages": ["en"], "body": ["The forum opened on Monday.", "It closed on Wednesday."],
    "quotes": [{"speaker": "Dr. Ana Lima", "role": "Chair", "text": "We will share every result."}],
    "organizers": ["ANSO"], "links": [{"title": "Programme", "url": "https://example.org/programme"}],
    "image": {"url": "https://media.example.org/forum.jpg", "alt": "The forum's hall", "caption": "Day one",
              "credit": "Photo: ANSO"},
    "contact": {"name": "Press office", "email": "press@example.org"},
}


def event(**fields) -> Event:
    return Event.model_validate({**RECORD, **fields})


def rendered(settings: Settings, ev: Event) -> str:
    return strip_keep(Renderer(settings).release(ev, "en").variants[0])


def write_record(tmp_path: Path, **fields) -> Path:
    path = tmp_path / "records" / "forum.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({**RECORD, **fields}, allow_unicode=True), encoding="utf-8")
    return path


def prepare_path(settings: Settings, path: Path) -> None:
    loaded = load_records([path])
    assert not loaded.errors and prepare(loaded.events, settings).ok


def the_release(settings: Settings) -> store.Draft:
    with db.session_scope(settings.db_url) as session:
        return store.list_drafts(session, channel="release", slug="forum")[-1]


def approve_pending(settings: Settings) -> None:
    assert service.approve_all(settings, reviewer="ana") > 0


# --- the document and its Markdown -------------------------------------------------------------


def test_a_rendered_release_is_a_document_field_by_field_and_back(settings):
    ev = event()
    markdown = rendered(settings, ev)
    document = release_document(markdown, ev, markdown, "en")
    assert release_markdown(document) == markdown  # what the reviewer reads is the document
    assert (document.title, document.subheadline) == ("Forum on green technology", "Three days online")
    assert document.summary.startswith("Tashkent, 11 June 2021") and document.summary.endswith("Scientists met online.")
    assert document.body == ["The forum opened on Monday.", "It closed on Wednesday."]
    assert [(q.text, q.speaker) for q in document.quotes] == [("“We will share every result.”", "Dr. Ana Lima")]
    assert [(link.title, link.url) for link in document.links] == [("Programme", "https://example.org/programme")]
    assert (document.image.alt, document.image.caption, document.image.credit) == ("The forum's hall", "Day one",
                                                                                   "Photo: ANSO")
    assert (document.dateline.city, document.dateline.country, str(document.dateline.date)) == \
        ("Tashkent", "UZ", "2021-06-11")
    assert document.contact.email == "press@example.org"
    assert "[image]:" not in release_markdown(document, image_lines=False)
    assert load_document(document.model_dump(mode="json")) == document


def test_prose_that_looks_like_markdown_structure_is_text(settings):
    """A paragraph starting '# ' or '>' is the record's text, not a heading or a quote, and a quote
    may have paragraphs: each survives into the document and out to the page as written."""
    ev = event(body=["# 1 in Asia for the third year.", "> Not a quote,\n# nor a heading.", "#hashtag day."],
               quotes=[{"speaker": "Dr. Ana Lima", "text": "We will share every result.\n\nAnd every method."}])
    markdown = rendered(settings, ev)
    document = release_document(markdown, ev, markdown, "en")
    assert release_markdown(document) == markdown
    assert [q.text for q in document.quotes] == ["“We will share every result.\n\nAnd every method.”"]
    page = html.fragment_fromstring(markdown_to_html(release_markdown(document, image_lines=False)),
                                    create_parent="div")
    assert page.xpath("//h1/text()") == ["Forum on green technology"]  # the title, and no other
    assert [" ".join(p.text_content().split()) for p in page.xpath("./p")][1:4] == \
        ["# 1 in Asia for the third year.", "> Not a quote, # nor a heading.", "#hashtag day."]
    [quote] = page.xpath("//blockquote")
    assert [p.text_content() for p in quote.xpath("p")] == \
        ["“We will share every result.", "And every method.”", "— Dr. Ana Lima"]
    assert "# 1 in Asia" in markdown_to_text(release_markdown(document, image_lines=False))


def test_prose_that_looks_like_structure_is_translated_and_published_as_text(settings, argos_models, tmp_path):
    prepare_path(settings, write_record(
        tmp_path, languages=["es", "zh"], body=["# 1 in Asia for the third year.", "> Not a quote."],
        quotes=[{"speaker": "Dr. Ana Lima", "text": "We will share every result.\n\nAnd every method."}]))
    with db.session_scope(settings.db_url) as session:
        releases = {d.lang: d for d in store.list_drafts(session, channel="release", slug="forum")}
        documents = {lang: load_document(store.document_of(session, d.id, d.revision)) for lang, d in releases.items()}
    assert set(documents) == {"en", "es", "zh"}
    assert all(isinstance(d, ReleaseDocument) for d in documents.values()), {k: d.text for k, d in releases.items()}
    approve_pending(settings)
    report = publish.publish(settings)
    assert report.releases == {"forum": ["en", "es", "zh"]}, report.held
    for lang in ("en", "es", "zh"):
        page = html.parse(str(settings.out_dir / "site" / lang / "forum.html")).getroot()
        assert len(page.xpath("//main//h1")) == 1, lang
        assert len(page.xpath("//main//blockquote")) == 1, lang
        assert len(page.xpath("//main//blockquote/p")) == 3, lang  # two paragraphs and the speaker


class FieldEngine:
    """Translates into German by upper-casing, or as `rewrite` says; keeps what it was given."""

    def __init__(self, rewrite=str.upper):
        self.sentences: list[str] = []
        self.rewrite = rewrite

    def route(self, source, target):
        from test_engine_seam import Shout

        return [Shout(source, target)]

    def translate(self, leg, sentences, progress=None):
        self.sentences += sentences
        return [self.rewrite(sentence) for sentence in sentences]


def translated_release(settings: Settings, engine, **fields) -> tuple[ReleaseDocument, store.Draft]:
    event = Event.model_validate({**RECORD, "languages": ["de"], **fields})
    assert prepare([(None, event)], settings, engine=engine).ok
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, channel="release", slug="forum", lang="de")
        return load_document(store.document_of(session, draft.id, draft.revision)), draft


def test_a_release_is_translated_field_by_field(settings):
    engine = FieldEngine()
    document, draft = translated_release(settings, engine)
    source = release_document(rendered(settings, event()), event(), rendered(settings, event()), "en")
    assert document.title == source.title.upper() and document.subheadline == source.subheadline.upper()
    assert document.body == [paragraph.upper() for paragraph in source.body]
    assert [q.text for q in document.quotes] == ["“WE WILL SHARE EVERY RESULT.”"]
    assert document.quotes[0].attribution == "— Dr. Ana Lima, CHAIR"  # the name kept, the role translated
    assert [(link.text, link.url) for link in document.links] == \
        [("PROGRAMME: https://example.org/programme", "https://example.org/programme")]
    assert (document.image.alt, document.image.caption, document.image.credit) == \
        ("THE FORUM'S HALL", "DAY ONE", "Photo: ANSO")
    assert document.lang == "de" and document.dateline == source.dateline
    # The image's description went to the engine as a text of its own, not behind a mark it could move.
    assert "The forum's hall" in engine.sentences and not any("[image]" in s for s in engine.sentences)
    # What the reviewer reads is the document written out, and reads back as the same document.
    assert draft.text == release_markdown(document)
    assert release_document(draft.text, event(languages=["de"]), rendered(settings, event()), "de") == document


def test_a_model_that_writes_structure_cannot_add_it_to_a_release(settings):
    """A model's output is a sentence: line breaks and a leading '#' in it are not the page's structure."""
    engine = FieldEngine(lambda sentence: f"# {sentence}\n\n## INJECTED\n\n> quoted")
    document, draft = translated_release(settings, engine)
    page = html.fragment_fromstring(markdown_to_html(release_markdown(document, image_lines=False)),
                                    create_parent="div")
    original = release_document(rendered(settings, event()), event(), rendered(settings, event()), "en")
    source = html.fragment_fromstring(markdown_to_html(release_markdown(original, image_lines=False)),
                                      create_parent="div")
    for element in ("h1", "h2", "h3", "blockquote", "ul", "ol", "li", "p"):  # the source's blocks, no more
        assert len(page.xpath(f"//{element}")) == len(source.xpath(f"//{element}")), element
    assert document.body[0].startswith("\\# ")  # the model's '#' is text
    assert release_document(draft.text, event(languages=["de"]), rendered(settings, event()), "de") == document


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.replace("# Forum on green technology\n\n", "", 1),
     "the title line is missing: a release starts with '# ' and its title; found '## Three days online'"),
    (lambda t: t.replace("It closed on Wednesday.\n\n", "", 1), "paragraph 3 is missing: found '> “We will share every result.” > > — Dr...' in its place"),
    (lambda t: t.replace(">\n> — Dr. Ana Lima", "> — Dr. Ana Lima", 1), "quote 1 must be three lines"),
    (lambda t: t.replace("https://example.org/programme", "the programme", 1),
     "link 1 must keep its address https://example.org/programme"),
    (lambda t: t.replace("[caption]: Day one", "Day one", 1), "the image caption line"),
    (lambda t: t + "\nOne more paragraph.\n", "the image caption line"),
])
def test_a_broken_structure_is_refused_in_one_line(settings, change, message):
    ev = event()
    markdown = rendered(settings, ev)
    with pytest.raises(DocumentError) as raised:
        parse_release(change(markdown), shape_for(ev, markdown), "en")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_a_paragraph_left_out_is_named():
    ev = event(quotes=[], organizers=[], links=[], image=None, contact=None)
    text = "# Forum on green technology\n\n## Three days online\n\nTashkent, 11 June 2021. Scientists met online.\n\n" \
           "The forum opened on Monday.\n"
    with pytest.raises(DocumentError, match="^paragraph 3 is missing$"):
        parse_release(text, shape_for(ev), "en")


# --- what a reviewer saves, approves and publishes ----------------------------------------------


def test_an_edit_with_a_broken_structure_is_refused_and_nothing_is_saved(settings, tmp_path):
    prepare_path(settings, write_record(tmp_path))
    release = the_release(settings)
    broken = release.text.replace("# Forum on green technology", "Forum on green technology", 1)
    with pytest.raises(DocumentError) as raised:
        service.edit(settings, release.id, broken, author="bea")
    assert str(raised.value) == (f"draft {release.id}: the title line is missing: a release starts with '# ' and "
                                 "its title; found 'Forum on green technology'")
    assert the_release(settings).revision == 1


def test_what_the_reviewer_approved_is_exactly_what_goes_out_even_after_the_record_changes(settings, tmp_path):
    path = write_record(tmp_path)
    prepare_path(settings, path)
    release = the_release(settings)
    edited = (release.text.replace("Forum on green technology", "Green technology forum", 1)
              .replace("Scientists met online.", "Scientists met online, reviewed.")
              .replace("We will share every result.", "We will share each result.")
              .replace("[caption]: Day one", "[caption]: The first day"))
    service.edit(settings, release.id, edited, author="bea")
    approve_pending(settings)
    with db.session_scope(settings.db_url) as session:
        approved = load_document(store.document_of(session, release.id, 2))
    assert isinstance(approved, ReleaseDocument) and approved.title == "Green technology forum"
    publish.publish(settings)
    # A changed record waits for review; the approved document stays what is published.
    prepare_path(settings, write_record(tmp_path, title="Renamed forum", summary="Changed.", quotes=[],
                                        image={**RECORD["image"], "caption": "Another caption"}))
    report = publish.publish(settings)
    assert report.waiting == {"forum": ["en"]}

    page = html.fromstring((settings.out_dir / "site" / "en" / "forum.html").read_text(encoding="utf-8"))
    assert page.xpath("string(//h1)") == approved.title
    assert page.xpath("//meta[@name='description']/@content") == [approved.summary]
    assert page.xpath("string(//figcaption)").startswith(approved.image.caption)
    assert "“We will share each result.”" in page.xpath("string(//blockquote)")
    entry = feedparser.parse((settings.out_dir / "feeds" / "en" / "atom.xml").read_bytes()).entries[0]
    assert (entry.title, entry.summary) == (approved.title, approved.summary)
    feed = json.loads((settings.out_dir / "feeds" / "en" / "feed.json").read_text(encoding="utf-8"))
    assert (feed["items"][0]["title"], feed["items"][0]["summary"]) == (approved.title, approved.summary)
    outbox = settings.out_dir / "outbox" / "forum"
    markdown = (outbox / "en" / "press-release.md").read_text(encoding="utf-8")
    assert release_markdown(approved, image_lines=False).strip() in markdown
    assert f"Caption: {approved.image.caption}" in markdown
    text = (outbox / "en" / "press-release.txt").read_text(encoding="utf-8")
    assert approved.summary in text and "Renamed" not in text and "Changed." not in text
    manifest = json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["titles"] == {"en": approved.title}
    assert (outbox / "en" / "posts" / "x.txt").read_text(encoding="utf-8").startswith("Forum on green technology")


def test_a_moved_embargo_is_the_one_the_outbound_files_give(settings, tmp_path):
    """The text approved stays what goes out, but the embargo it is held to is the record's latest:
    the release line must say that one, not the time the approved version had."""
    prepare_path(settings, write_record(tmp_path, publish_at="2021-06-10T10:00:00+08:00"))
    approve_pending(settings)
    prepare_path(settings, write_record(tmp_path, publish_at="2021-06-12T09:30:00+00:00", summary="Changed."))
    report = publish.publish(settings)
    assert report.releases == {"forum": ["en"]}
    text = (settings.out_dir / "outbox" / "forum" / "en" / "press-release.txt").read_text(encoding="utf-8")
    assert "Scientists met online." in text and "Changed." not in text  # the approved text
    assert text.startswith("EMBARGOED UNTIL 12 June 2021, 09:30 UTC\n"), text[:80]


def test_an_approved_revision_without_a_document_is_held_back_with_a_reason(settings, tmp_path):
    prepare_path(settings, write_record(tmp_path))
    release = the_release(settings)
    approve_pending(settings)
    with db.session_scope(settings.db_url) as session:
        session.execute(store.update(store.Revision).where(store.Revision.draft_id == release.id)
                        .values(document=None))
    report = publish.publish(settings)
    assert "en" not in report.releases.get("forum", [])
    assert any(f"of draft {release.id} has no release document" in line for line in report.warnings)


def test_approving_a_revision_without_a_document_is_refused(settings, tmp_path):
    prepare_path(settings, write_record(tmp_path))
    release = the_release(settings)
    with db.session_scope(settings.db_url) as session:
        session.execute(store.update(store.Revision).where(store.Revision.draft_id == release.id)
                        .values(document=None, text="no structure"))
        session.execute(store.update(store.Draft).where(store.Draft.id == release.id).values(text="no structure"))
    with pytest.raises(service.ReviewError, match=f"^draft {release.id}: the title line is missing.*then approve it$"):
        service.decide(settings, {release.id: service.Seen()}, store.APPROVED, reviewer="ana")


# --- stores from before documents -----------------------------------------------------------------


def test_an_old_stores_revisions_get_their_documents_in_the_migration(tmp_path):
    out = tmp_path / "out"
    (out / "state").mkdir(parents=True)
    shutil.copy(FIXTURE, out / "state" / "pressflow.db")
    settings = Settings(out_dir=out)
    with db.session_scope(settings.db_url) as session:
        rows = session.execute(store.select(store.Revision.text, store.Revision.document, store.Draft.channel,
                                            store.Draft.release_slug)
                               .join(store.Draft, store.Draft.id == store.Revision.draft_id)).all()
    assert rows and all(row.document is not None for row in rows)
    releases = [(load_document(row.document), row.text) for row in rows if row.channel == "release"]
    # Each as its text reads (the image's line, of old written into the contact's paragraph, apart)
    assert releases and all(release_markdown(d, image_lines=False).strip() in text for d, text in releases)
    assert {d.title for d, _ in releases} >= {"ANSO supports the Global Health and Development Summit: Vaccines and "
                                              "Global Health"}
    x_posts = [load_document(row.document).text for row in rows if row.channel == "x"]
    assert any("edited by a reviewer" in text for text in x_posts)
    connection = sqlite3.connect(out / "state" / "pressflow.db")
    assert (7,) in connection.execute("SELECT number FROM schema_migrations").fetchall()
