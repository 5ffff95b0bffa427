"""The review gate: only a revision a reviewer approved goes out, one version of a release per
language, and what the reviewer did not see is never approved on their behalf."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from pressflow import publish
from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.core.config import Settings
from pressflow.core.errors import ReviewError
from pressflow.prepare.pipeline import prepare
from pressflow.records import Event, load_records

FIXTURE = Path(__file__).parent / "fixtures" / "store-before-migrations.db"


def record(tmp_path: Path, name: str, **fields) -> Path:
    data = {"title": "Forum on green technology", "date": "2021-06-11", "summary": "Scientists met online.",
            "location": {"city": "Tashkent", "country": "UZ"}, "languages": ["en"],
            "quotes": [{"speaker": "Dr. Ana Lima", "text": "We will share every result."}], **fields}
    folder = tmp_path / "records"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def prepare_paths(settings: Settings, *paths: Path):
    loaded = load_records(list(paths))
    assert not loaded.errors, loaded.errors
    return prepare(loaded.events, settings)


def drafts(settings: Settings, **filters) -> list[store.Draft]:
    with db.session_scope(settings.db_url) as session:
        return store.list_drafts(session, **filters)


def approve_everything(settings: Settings, slug: str) -> None:
    ids = [d.id for d in drafts(settings, slug=slug, status=store.PENDING)]
    service.decide(settings, {i: service.Seen() for i in ids}, store.APPROVED, reviewer="ana")


def page(settings: Settings, slug: str) -> str:
    return (settings.out_dir / "site" / "en" / f"{slug}.html").read_text(encoding="utf-8")


def test_source_language_drafts_wait_for_review_by_default(settings, tmp_path):
    report = prepare_paths(settings, record(tmp_path, "forum.yaml"))
    slug = next(iter(report.releases))
    assert {d.status for d in drafts(settings, slug=slug)} == {store.PENDING}
    published = publish.publish(settings)
    assert published.releases == {}
    assert not (settings.out_dir / "site" / "en" / f"{slug}.html").exists()


def test_an_edited_record_keeps_the_approved_version_whole_until_the_new_one_is_approved(settings, tmp_path):
    path = record(tmp_path, "forum.yaml")
    slug = next(iter(prepare_paths(settings, path).releases))
    approve_everything(settings, slug)
    publish.publish(settings)
    assert "Tashkent" in page(settings, slug) and "We will share every result." in page(settings, slug)

    # The quote is retracted and the city changes; the new drafts wait for review.
    record(tmp_path, "forum.yaml", quotes=[], location={"city": "Samarkand", "country": "UZ"})
    prepare_paths(settings, path)
    report = publish.publish(settings, now=None)
    assert report.waiting == {slug: ["en"]}
    html = page(settings, slug)
    assert "Tashkent" in html and "Samarkand" not in html  # header, body and JSON-LD of one age
    assert "We will share every result." in html

    approve_everything(settings, slug)
    publish.publish(settings)
    html = page(settings, slug)
    assert "Samarkand" in html and "Tashkent" not in html
    assert "We will share every result." not in html


def test_an_edit_of_an_approved_draft_waits_while_the_approved_text_stays_published(settings, tmp_path):
    slug = next(iter(prepare_paths(settings, record(tmp_path, "forum.yaml")).releases))
    approve_everything(settings, slug)
    publish.publish(settings)
    release = next(d for d in drafts(settings, slug=slug) if d.channel == "release")
    edited = release.text.replace("Scientists met online.", "Scientists met online, unreviewed.")
    service.edit(settings, release.id, edited, author="bea")
    (after,) = [d for d in drafts(settings, slug=slug) if d.id == release.id]
    assert after.status == store.PENDING and after.approved_revision == 1 and after.revision == 2
    publish.publish(settings)
    assert "unreviewed" not in page(settings, slug)
    service.decide(settings, {release.id: service.Seen(2, store.PENDING)}, store.APPROVED, reviewer="ana")
    publish.publish(settings)
    assert "unreviewed" in page(settings, slug)


def test_a_post_over_its_limit_cannot_be_approved_and_never_reaches_the_outbox(settings, tmp_path):
    slug = next(iter(prepare_paths(settings, record(tmp_path, "forum.yaml")).releases))
    x = next(d for d in drafts(settings, slug=slug) if d.channel == "x")
    service.edit(settings, x.id, "word " * 69 + "word\n", author="ana")
    with pytest.raises(ReviewError, match=r"X post is 350 of 280"):
        service.decide(settings, {x.id: service.Seen()}, store.APPROVED, reviewer="ana")
    # All or nothing: the batch holding it approves none of the others either.
    ids = [d.id for d in drafts(settings, slug=slug, status=store.PENDING)]
    with pytest.raises(ReviewError):
        service.decide(settings, {i: service.Seen() for i in ids}, store.APPROVED, reviewer="ana")
    assert {d.status for d in drafts(settings, slug=slug)} == {store.PENDING}


def test_an_over_limit_post_approved_earlier_is_held_back_by_publish(settings, tmp_path):
    slug = next(iter(prepare_paths(settings, record(tmp_path, "forum.yaml")).releases))
    approve_everything(settings, slug)
    x = next(d for d in drafts(settings, slug=slug) if d.channel == "x")
    with db.session_scope(settings.db_url) as session:  # as a store approved under older rules holds it
        long = "word " * 69 + "word\n"
        session.execute(update(store.Revision).where(store.Revision.draft_id == x.id)
                        .values(text=long, document={"kind": "post", "lang": "en", "channel": "x", "text": long}))
    report = publish.publish(settings)
    assert not (settings.out_dir / "outbox" / slug / "en" / "posts" / "x.txt").exists()
    assert any("X post" in w and "350 of 280" in w for w in report.warnings)
    assert (settings.out_dir / "outbox" / slug / "en" / "posts" / "bluesky.txt").exists()


def test_decisions_are_bounded_by_the_actors_languages(settings, tmp_path):
    slug = next(iter(prepare_paths(settings, record(tmp_path, "forum.yaml")).releases))
    ids = [d.id for d in drafts(settings, slug=slug)]
    with pytest.raises(service.NotYourLanguage, match="reviews es only"):
        service.decide(settings, {ids[0]: service.Seen()}, store.APPROVED, reviewer="eva", languages=["es"])
    with pytest.raises(service.NotYourLanguage):
        service.edit(settings, ids[0], "# New\n", author="eva", languages=["es"])


def test_a_record_whose_slug_is_another_files_release_is_refused_naming_both(settings, tmp_path):
    first = record(tmp_path, "launch-a.yaml", title="Launch!")
    prepare_paths(settings, first)
    other = tmp_path / "elsewhere"
    other.mkdir()
    second = other / "launch-b.yaml"
    second.write_text(yaml.safe_dump({"title": "Launch?", "date": "2021-06-11", "summary": "Another one.",
                                      "languages": ["en"]}), encoding="utf-8")
    report = prepare_paths(settings, second)
    assert not report.ok
    (error,) = report.errors
    assert "launch-b.yaml" in error and "launch-a.yaml" in error and "Launch!" in error
    assert {d.source_text.splitlines()[0] for d in drafts(settings, channel="release")} == {"# Launch!"}
    # The same record moved to another file is the same release, not a clash.
    moved = other / "launch-a.yaml"
    shutil.move(first, moved)
    assert prepare_paths(settings, moved).ok


def test_an_optional_field_left_at_its_default_does_not_change_the_fingerprint():
    plain = Event.model_validate({"title": "T", "date": "2021-06-11", "summary": "S"})
    spelled_out = Event.model_validate({"title": "T", "date": "2021-06-11", "summary": "S", "tags": [],
                                        "quotes": [], "organizers": []})
    assert plain.fingerprint() == spelled_out.fingerprint()


def test_a_store_made_before_numbered_migrations_upgrades_in_place(tmp_path):
    """tests/fixtures/store-before-migrations.db was made by the code before this gate (commit
    056735b): four releases prepared, one approved and published with an edited X post."""
    out = tmp_path / "out"
    (out / "state").mkdir(parents=True)
    shutil.copy(FIXTURE, out / "state" / "pressflow.db")
    # The records as they were when the store was made (the bundled examples have gained fields since).
    events = Path(__file__).resolve().parent / "fixtures" / "events-before-migrations"
    with sqlite3.connect(out / "state" / "pressflow.db") as connection:  # as if made from this checkout
        for (source,) in connection.execute("SELECT source_file FROM releases").fetchall():
            connection.execute("UPDATE releases SET source_file = ? WHERE source_file = ?",
                               (str(events / Path(source).name), source))
    settings = Settings(out_dir=out)
    with db.session_scope(settings.db_url) as session:
        summit = store.list_drafts(session, slug="2021-06-04-global-health-summit")
        assert {d.approved_revision for d in summit} == {1, 2}  # each draft's approved text is its current one
        assert store.record_versions(session, [(summit[0].release_slug, summit[0].fingerprint)])
    connection = sqlite3.connect(out / "state" / "pressflow.db")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "store_schema" not in tables and "schema_migrations" in tables
    assert {"deliveries", "channel_sessions"} <= tables  # delivery's tables are the store's too
    # Its releases keep their drafts: preparing the same records again translates nothing anew.
    report = prepare(load_records([events]).events, settings)
    assert report.ok and {info.status for info in report.releases.values()} == {"unchanged"}
    # (Languages whose model another test installed in this process are new work, English is not.)
    assert not any("en" in info.added for info in report.releases.values())
    with db.session_scope(settings.db_url) as session:
        chosen = store.publishable_drafts(session, "2021-06-04-global-health-summit")["en"]
    assert "edited by a reviewer" in chosen["x"].text  # the reviewer's revision 2, as published before
