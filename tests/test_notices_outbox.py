"""The notices outbox: written with the drafts, claimed by one sender at a time, sent once.

Claims are checked with real concurrent senders on SQLite and PostgreSQL; sending, against a
real Prefect server, and against a port where none listens (the server is down).
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from conftest import decoding_capped
from pressflow.core import db
from pressflow.core.config import Settings
from pressflow.drafts import notices
from pressflow.flows import events
from pressflow.prepare import pipeline
from pressflow.records import validate_record


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request, tmp_path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(out_dir=tmp_path / "out", database_url=url)


def add_notices(settings: Settings, count: int) -> list[int]:
    with db.session_scope(settings.db_url) as session:
        for number in range(count):
            notices.record(session, notices.AWAITING_REVIEW, f"release-{number % 7}", "es")
    with db.session_scope(settings.db_url) as session:
        return [row.id for row in notices.unsent(session)]


def claim_in(settings: Settings, now: dt.datetime | None = None) -> tuple[str, list[int]]:
    with db.session_scope(settings.db_url) as session:
        token, rows = notices.claim(session, now)
    return token, [row.id for row in rows]


def test_senders_claiming_at_once_take_each_notice_once(store_settings):
    ids = add_notices(store_settings, 300)
    senders, start = 4, threading.Barrier(4)
    claimed: list[list[int]] = []

    def sender() -> None:
        start.wait()
        for _ in range(3):
            claimed.append(claim_in(store_settings)[1])

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    taken = [notice for claim in claimed for notice in claim]
    assert sorted(taken) == ids  # every notice claimed, none twice
    assert len(claimed) == 3 * senders


def test_a_claim_is_a_lease_and_only_its_holder_marks_it_sent(store_settings):
    ids = add_notices(store_settings, 3)
    first, taken = claim_in(store_settings)
    assert taken == ids and claim_in(store_settings)[1] == []  # held: nobody else takes it
    later = db.utcnow() + notices.LEASE + dt.timedelta(seconds=1)  # the first sender died
    second, retaken = claim_in(store_settings, later)
    assert retaken == ids
    with db.session_scope(store_settings.db_url) as session:
        assert notices.mark_sent(session, first, ids) == 0  # its lease is gone
        assert notices.mark_sent(session, second, ids) == 3
    assert claim_in(store_settings, later + notices.LEASE * 2)[1] == []  # sent is sent
    with db.session_scope(store_settings.db_url) as session:
        assert notices.waiting_count(session) == 0


def test_notices_left_without_a_server_are_dropped_after_a_week(settings):
    add_notices(settings, 2)
    with db.session_scope(settings.db_url) as session:
        assert notices.forget_old(session) == 0
        assert notices.forget_old(session, db.utcnow() + notices.KEEP + dt.timedelta(minutes=1)) == 2
        assert notices.waiting_count(session) == 0


def record(languages: list[str]):
    return validate_record({"id": "water-forum", "title": "Water forum", "date": "2021-06-04",
                            "languages": languages, "summary": "Scientists met in Beijing to plan joint projects."})


def prepared(settings: Settings, languages: list[str]) -> None:
    with decoding_capped():
        pipeline.prepare([(None, record(languages))], settings)


def test_notices_are_written_with_the_drafts_they_announce(settings, argos_models):
    prepared(settings, ["es", "zh"])
    with db.session_scope(settings.db_url) as session:
        rows = notices.unsent(session)
    assert sorted((row.kind, row.lang) for row in rows) == [(notices.AWAITING_REVIEW, lang) for lang in ("en", "es", "zh")]
    (told,) = events.waiting_notices(settings)  # one event for the release
    assert told.payload["languages"] == ["en", "es", "zh"]
    prepared(settings, ["es", "zh"])  # nothing new: nothing more to tell
    with db.session_scope(settings.db_url) as session:
        assert len(notices.unsent(session)) == 3


def test_without_a_server_notices_wait(settings, argos_models, no_prefect_server):
    prepared(settings, ["es"])
    assert events.flush_notices(settings) == events.Flushed(sent=0, waiting=2)


@pytest.mark.slow
def test_notices_wait_while_the_server_is_down_and_go_out_once_it_is_back(settings, argos_models, prefect_server):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from test_durable_runs import recorded_events
    from test_prefect_server import free_port

    prepared(settings, ["es"])
    with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):  # nobody listens
        assert events.flush_notices(settings) == events.Flushed(sent=0, waiting=2)
    with db.session_scope(settings.db_url) as session:
        assert [row.claimed_by for row in notices.unsent(session)] == [None, None]  # given back at once
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert events.flush_notices(settings) == events.Flushed(sent=1)
    assert events.flush_notices(settings) == events.Flushed()  # sent once
    found = recorded_events(events.AWAITING_REVIEW, since, slug="water-forum")
    assert [event.payload["languages"] for event in found] == [["en", "es"]]
