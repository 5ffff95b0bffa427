"""Tests of the draft store through `pipeline.prepare` and the review actions, on real SQLite
and on a real PostgreSQL server (PRESSFLOW_TEST_POSTGRES_URL; skipped without it, except in CI).

Drafts are never overwritten: an unchanged record adds nothing, a changed one adds new drafts
and supersedes the pending ones it replaces (approved and published text stays as it was), and
every edit is a revision; an edit based on an old revision is refused.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.memory.store import SqlMemory
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.core.errors import ReviewError
from pressflow.platforms import PLATFORMS
from pressflow.publish import publish
from pressflow.records import Event
from pressflow.render import RELEASE
from pressflow.translate.stage import HUMAN

CHANNELS = [RELEASE, *PLATFORMS]
RECORD = {
    "id": "water-forum",
    "title": "Water forum opens in Tashkent",
    "date": "2021-09-12",
    "summary": "Scientists from five countries met to restore the Aral Sea.",
    "languages": ["es"],
    "hashtags": ["#AralSea"],
}
NOW = dt.datetime(2021, 9, 13, 8, 0, tzinfo=dt.timezone.utc)
# Random-weight models never stop on their own; short outputs keep the module set-up quick.
SHORT_OUTPUT = "24"


def event(**changes) -> Event:
    return Event.model_validate({**RECORD, **changes})


def drafts(settings: Settings, **filters) -> list[store.Draft]:
    with db.session_scope(settings.db_url) as session:
        return store.list_drafts(session, **filters)


def by_status(settings: Settings) -> dict[str, int]:
    counts: dict[str, int] = {}
    for draft in drafts(settings):
        counts[draft.status] = counts.get(draft.status, 0) + 1
    return counts


def draft_id(settings: Settings, lang: str, channel: str, status: str = store.PENDING) -> int:
    [draft] = drafts(settings, lang=lang, channel=channel, status=status)
    return draft.id


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def prepared_once(request, argos_models, tmp_path_factory) -> tuple[Path, str | None]:
    """An output folder where the record was prepared once (en approved, es pending), and for
    PostgreSQL the database holding the store (a template for each test's copy)."""
    out = tmp_path_factory.mktemp("prepared") / "out"
    url = request.getfixturevalue("module_postgres_databases")() if request.param == "postgres" else None
    settings = Settings(out_dir=out, database_url=url)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)
        report = pipeline.prepare([(None, event())], settings)
    assert report.drafts_added == 2 * len(CHANNELS), report
    # SQLite folds its WAL into the file before copies; PostgreSQL copies only unused databases
    db._engines.pop(settings.db_url).dispose()
    return out, url


@pytest.fixture
def prepared(prepared_once, tmp_path, request) -> Settings:
    """A private copy of the prepared store, so each test can change it."""
    prepared_out, template = prepared_once
    out = tmp_path / "out"
    if prepared_out.exists():  # with PostgreSQL, prepare leaves nothing there
        shutil.copytree(prepared_out, out)
    if template is None:
        return Settings(out_dir=out)
    copy = request.getfixturevalue("postgres_databases")(template=make_url(template).database)
    return Settings(out_dir=out, database_url=copy)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_store(request, tmp_path) -> str:
    """The URL of an empty store: a SQLite file, or a fresh PostgreSQL database."""
    return request.getfixturevalue("postgres_url") if request.param == "postgres" else f"sqlite:///{tmp_path / 's.db'}"


# --- re-running prepare --------------------------------------------------------------------


def test_first_prepare_stores_every_draft_pending_the_source_too(prepared):
    assert by_status(prepared) == {store.PENDING: 2 * len(CHANNELS)}
    assert {d.channel for d in drafts(prepared, lang="en")} == set(CHANNELS)
    with db.session_scope(prepared.db_url) as session:
        for draft in store.list_drafts(session, lang="es"):
            assert draft.status == store.PENDING and draft.revision == 1
            assert RECORD["title"] in draft.source_text
            assert draft.meta["engines"] and draft.meta["segments"]
            assert [r.number for r in draft.revisions] == [1]


def test_a_first_prepare_calls_the_release_new(tmp_path):
    report = pipeline.prepare([(None, event(languages=[]))], Settings(out_dir=tmp_path / "out"))
    assert report.releases["water-forum"].status == "new"


def test_unchanged_record_adds_no_drafts(prepared):
    before = [(d.id, d.status, d.text) for d in drafts(prepared)]
    report = pipeline.prepare([(None, event())], prepared)
    assert report.drafts_added == 0
    assert report.releases["water-forum"].status == "unchanged"
    assert report.stats.translated == 0
    assert [(d.id, d.status, d.text) for d in drafts(prepared)] == before


def test_changed_record_adds_drafts_and_supersedes_pending_ones(prepared):
    # A reviewer approved the Spanish release and it was published; the posts are still pending.
    service.decide(prepared, {i: service.Seen() for i in [draft_id(prepared, "es", RELEASE)]}, store.APPROVED, reviewer="ana")
    publish(prepared, now=NOW)
    published_es = draft_id(prepared, "es", RELEASE, store.PUBLISHED)
    old = {d.id: d for d in drafts(prepared)}

    changed = event(summary="Scientists from five countries met to restore the Aral Sea and its delta.")
    report = pipeline.prepare([(None, changed)], prepared)
    assert report.releases["water-forum"].status in ("changed", "translated")
    assert report.drafts_added == 2 * len(CHANNELS)

    now = {d.id: d for d in drafts(prepared)}
    assert len(now) == len(old) + 2 * len(CHANNELS)
    for draft_id_, before in old.items():
        after = now[draft_id_]
        assert after.text == before.text and after.fingerprint == before.fingerprint  # history kept
        if before.status == store.PENDING:
            assert after.status == store.SUPERSEDED, (after.lang, after.channel)
        else:
            assert after.status == before.status, (after.lang, after.channel)
    assert now[published_es].status == store.PUBLISHED
    new = [d for i, d in now.items() if i not in old]
    assert {d.fingerprint for d in new} == {changed.fingerprint()}
    assert all("delta" in d.source_text for d in new if d.channel == RELEASE)
    assert sorted(d.status for d in new if d.lang == "es") == [store.PENDING] * len(CHANNELS)
    with db.session_scope(prepared.db_url) as session:
        release = session.get(store.Release, "water-forum")
        assert release.fingerprint == changed.fingerprint()
        assert release.record["summary"] == changed.summary
        # Until the new Spanish text is approved, the published one is what readers get.
        assert store.publishable_drafts(session, "water-forum")["es"][RELEASE].id == published_es


def test_changed_record_reuses_the_memory_for_unchanged_sentences(prepared):
    report = pipeline.prepare([(None, event(title="Water forum opens in Nukus"))], prepared)
    assert report.drafts_added == 2 * len(CHANNELS)
    assert report.stats.from_memory > 0
    assert report.stats.translated < report.stats.unique


# --- edits and revisions ---------------------------------------------------------------------


def test_edit_adds_a_revision(prepared):
    target = draft_id(prepared, "es", "x")
    assert service.edit(prepared, target, "Foro del agua en Taskent #AralSea\n", author="ana", note="typo").revision == 2
    assert service.edit(prepared, target, "Foro del agua en Tashkent #AralSea\n", author="ben").revision == 3
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, target)
        assert draft.revision == 3 and draft.text == "Foro del agua en Tashkent #AralSea\n"
        assert draft.status == store.PENDING  # editing is not approving
        assert [(r.number, r.author) for r in draft.revisions] == [(1, "pressflow"), (2, "ana"), (3, "ben")]
        assert draft.revisions[1].note == "typo"
        assert draft.revisions[0].text != draft.text  # the machine text is still there


def test_edit_conflict_is_refused_with_a_clear_message(prepared):
    target = draft_id(prepared, "es", "mastodon")
    opened = service.get_text(prepared, target)
    service.edit(prepared, target, "Texto de Ana.\n", author="ana", expected_revision=opened["revision"])
    with pytest.raises(ReviewError) as caught:
        service.edit(prepared, target, "Texto de Ben.\n", author="ben", expected_revision=opened["revision"])
    message = str(caught.value)
    assert f"draft {target} was changed by ana (revision 2) after you opened it (revision 1)" in message
    assert "reload" in message
    assert service.get_text(prepared, target) == {"text": "Texto de Ana.\n", "revision": 2}


def test_empty_edit_is_refused(prepared):
    with pytest.raises(ReviewError, match="empty"):
        service.edit(prepared, draft_id(prepared, "es", "x"), "  \n", author="ana")


def test_an_edit_of_a_published_draft_waits_for_review_and_the_published_revision_stays(prepared):
    service.approve_all(prepared, reviewer="ana")
    publish(prepared, now=NOW)
    target = draft_id(prepared, "es", "linkedin", store.PUBLISHED)
    assert service.edit(prepared, target, "Texto corregido.\n", author="ana").revision == 2
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, target)
        assert (draft.status, draft.approved_revision, draft.text) == (store.PENDING, 1, "Texto corregido.\n")
        chosen = store.publishable_drafts(session, draft.release_slug)["es"]["linkedin"]
        assert chosen.text != "Texto corregido.\n"


def test_an_edit_of_an_approved_draft_is_not_approved_by_its_author(prepared):
    # An approval stands for the text the reviewer saw; the editor's text waits for a reviewer.
    target = draft_id(prepared, "es", "x")
    service.decide(prepared, {target: service.Seen()}, store.APPROVED, reviewer="ana")
    assert service.edit(prepared, target, "Texto de Ben.\n", author="ben").revision == 2
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, target)
        assert (draft.status, draft.reviewer, draft.approved_revision) == (store.PENDING, None, 1)


def test_superseded_drafts_can_be_neither_edited_nor_reviewed(prepared):
    old = draft_id(prepared, "es", "bluesky")
    pipeline.prepare([(None, event(summary="A new summary for the forum."))], prepared)
    with pytest.raises(ReviewError, match="superseded"):
        service.edit(prepared, old, "Nuevo.\n", author="ana")
    with pytest.raises(ReviewError, match="superseded"):
        service.decide(prepared, {i: service.Seen() for i in [old]}, store.APPROVED, reviewer="ana")


def test_unknown_draft_is_named(prepared):
    with pytest.raises(ReviewError, match="no draft with id 9999"):
        service.show(prepared, 9999)


def test_reject_keeps_the_reason(prepared):
    target = draft_id(prepared, "es", RELEASE)
    service.decide(prepared, {i: service.Seen() for i in [target]}, store.REJECTED, reviewer="ana", reason="names mistranslated")
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, target)
        assert (draft.status, draft.reviewer, draft.reason) == (store.REJECTED, "ana", "names mistranslated")
        assert RELEASE not in store.publishable_drafts(session, "water-forum").get("es", {})


def test_an_aligned_edit_teaches_the_memory(prepared):
    target = draft_id(prepared, "es", RELEASE)
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, target)
        segments, text = draft.meta["segments"], draft.text
    # The reviewer rewrites every sentence (the random model's output does not split into
    # sentences the way the source does, and an edit is learned only where sentences line up).
    sentences = ["Se abre el foro del agua en Taskent."] + [f"Oración {i}." for i in range(1, len(segments))]
    edited = text
    for segment, sentence in zip(segments, sentences):
        edited = edited.replace(segment["text"], sentence, 1)
    service.edit(prepared, target, edited, author="ana")
    first = segments[0]
    learned = SqlMemory(prepared.db_url).lookup("en", "es", HUMAN, [first["key"]])
    assert learned == {first["key"]: "Se abre el foro del agua en Taskent."}
    # The next release with the same title gets the reviewer's sentence, not the model's.
    report = pipeline.prepare([(None, event(id="water-forum-2", summary="Another summary."))], prepared)
    assert report.drafts_added == 2 * len(CHANNELS)
    with db.session_scope(prepared.db_url) as session:
        [draft] = store.list_drafts(session, slug="water-forum-2", lang="es", channel=RELEASE)
        assert draft.text.startswith("# Se abre el foro del agua en Taskent.\n")


# --- the store itself ------------------------------------------------------------------------


def test_times_are_stored_in_utc(empty_store):
    url = empty_store
    when = dt.datetime(2021, 8, 30, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with db.session_scope(url) as session:
        store.upsert_release(session, slug="s", title="T", date=dt.date(2021, 8, 30), publish_at=when,
                             fingerprint="f", record={}, source_file=None)
    db._engines.pop(url).dispose()  # read back by a new engine, as another process would
    with db.session_scope(url) as session:
        release = session.get(store.Release, "s")
        assert release.publish_at == when and release.publish_at.tzinfo == dt.timezone.utc


def test_naive_times_are_refused(empty_store):
    url = empty_store
    with pytest.raises(Exception, match="naive datetime"):
        with db.session_scope(url) as session:
            store.upsert_release(session, slug="s", title="T", date=dt.date(2021, 8, 30),
                                 publish_at=dt.datetime(2021, 8, 30, 10, 0), fingerprint="f", record={},
                                 source_file=None)


def test_approve_all_is_all_or_nothing_in_batches_and_leaves_decisions_made_meanwhile(prepared, monkeypatch):
    """`review approve --all` loads one batch of drafts at a time; a draft someone rejected after
    the queue was listed stays rejected, and then none of the listed drafts is approved."""
    listed = service.pending_ids(prepared)
    assert len(listed) >= 3
    batches: list[list[int]] = []
    real_in_batches = db.in_batches

    def small_batches(items, size=500):
        for batch in real_in_batches(items, 2):
            batches.append(batch)
            yield batch

    def listed_then_rejected(settings, **filters):  # another reviewer decides right after the listing
        service.decide(prepared, {listed[2]: service.Seen()}, store.REJECTED, reviewer="bo", reason="wrong")
        return listed

    monkeypatch.setattr(db, "in_batches", small_batches)
    monkeypatch.setattr(service, "pending_ids", listed_then_rejected)
    with pytest.raises(store.DraftChanged, match="became rejected by bo"):
        service.approve_all(prepared, reviewer="ana")

    assert max(map(len, batches)) == 2
    with db.session_scope(prepared.db_url) as session:
        statuses = {d.id: (d.status, d.reviewer) for d in store.list_drafts(session) if d.id in listed}
    assert statuses.pop(listed[2]) == (store.REJECTED, "bo")
    assert set(statuses.values()) == {(store.PENDING, None)}
    monkeypatch.undo()
    assert service.approve_all(prepared, reviewer="ana") == len(listed) - 1  # once the queue is read again
