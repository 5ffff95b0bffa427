"""Events that say what a run did to each release, and the automation that tells reviewers.

The event contents are built from real prepare and publish reports (tiny genuine Argos models,
a real SQLite store). Then, against a real `prefect server` with its event services on: a Webhook
block points at an HTTP receiver on loopback, the automations of `automations/notify-reviewers.yaml`
are created with `prefect automation create --from-file` as the README says, the prepare and
publish flows run, the events are read back from the server's events API, and the webhook call
the automation makes arrives at the receiver with the release and its languages.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, approve_all, decoding_capped
from webhook_receiver import Receiver
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.flows import events
from pressflow.records import validate_record

AUTOMATIONS = ROOT / "automations" / "notify-reviewers.yaml"
BROKEN, FINE = "broken-release", "fine-release"
WAIT = 90  # seconds for an event to be persisted, or an automation to act on it


def record(slug: str, languages: list[str]) -> dict:
    return {"id": slug, "title": f"ANSO forum “{slug}”", "date": "2021-06-04", "languages": languages,
            "summary": "Scientists from member countries met in Beijing to plan joint projects."}


@pytest.fixture
def broken_templates(tmp_path) -> Path:
    """The real templates, except that the release text cannot render in Chinese for one release
    (a staff edit gone wrong: an undefined variable), which fails that language of that release."""
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    release = templates / "release.md.j2"
    release.write_text(f'{{% if lang == "zh" and event.id == "{BROKEN}" %}}{{{{ no_such_variable }}}}{{% endif %}}\n'
                       + release.read_text())
    return templates


@pytest.fixture
def prepared(tmp_path, argos_models, broken_templates):
    settings = Settings(out_dir=tmp_path / "out", templates_dir=broken_templates, review_url="https://review.example.org")
    records = [(None, validate_record(record(BROKEN, ["es", "zh"]))), (None, validate_record(record(FINE, ["es"])))]
    with decoding_capped():
        report = pipeline.prepare(records, settings)
    return settings, records, report


def sent_all(settings) -> None:
    """What a flow's flush does once the server took the events: every waiting notice is sent."""
    from pressflow.core import db
    from pressflow.drafts import notices

    with db.session_scope(settings.db_url) as session:
        token, rows = notices.claim(session)
    with db.session_scope(settings.db_url) as session:
        assert notices.mark_sent(session, token, [row.id for row in rows]) == len(rows)


def test_prepare_tells_which_drafts_await_review_and_which_languages_failed(prepared):
    settings, _, report = prepared
    notices = {(n.event, n.slug): n for n in events.waiting_notices(settings)}
    assert set(notices) == {(events.AWAITING_REVIEW, BROKEN), (events.AWAITING_REVIEW, FINE),
                            (events.TRANSLATION_FAILED, BROKEN)}
    fine = notices[events.AWAITING_REVIEW, FINE]
    assert fine.resource["prefect.resource.id"] == f"pressflow.release.{FINE}"
    assert fine.payload["languages"] == ["en", "es"]  # the source language is reviewed too
    # the release and its posts, one draft per channel, in English and Spanish
    by_language = fine.payload["drafts_by_language"]
    assert fine.payload["drafts"] == by_language["en"] + by_language["es"] and by_language["es"] > 1
    assert fine.payload["review_url"] == "https://review.example.org/"
    assert fine.payload["message"].startswith(f"{fine.payload['drafts']} drafts of “ANSO forum “{FINE}”” await review (en, es)")
    broken = notices[events.AWAITING_REVIEW, BROKEN]
    assert broken.payload["languages"] == ["en", "es"]  # Chinese failed: nothing of it waits
    failed = notices[events.TRANSLATION_FAILED, BROKEN]
    assert failed.payload["languages"] == ["zh"]
    assert "no_such_variable" in failed.payload["reasons"]["zh"]
    assert "failed in zh" in failed.payload["message"]


def test_a_rerun_over_unchanged_records_tells_nobody_again(prepared):
    settings, records, _ = prepared
    sent_all(settings)
    with decoding_capped():
        pipeline.prepare(records, settings)
    # Nothing new awaits review; the language that fails still fails, and says so.
    assert [(n.event, n.slug) for n in events.waiting_notices(settings)] == [(events.TRANSLATION_FAILED, BROKEN)]


def test_publish_tells_what_went_out_new_and_nothing_when_nothing_changed(prepared):
    from pressflow.publish import publish

    settings, _, _ = prepared
    approve_all(settings)
    before = events.publications(settings)
    report = publish(settings)
    notices = {n.slug: n for n in events.publish_notices(report, settings, before)}
    assert set(notices) == {BROKEN, FINE} and {n.event for n in notices.values()} == {events.PUBLISHED}
    assert notices[FINE].payload["languages"] == ["en", "es"]
    assert notices[FINE].payload["urls"]["es"] == f"{settings.site_url}/site/es/{FINE}.html"

    before = events.publications(settings)
    assert events.publish_notices(publish(settings), settings, before) == []

    # The release is put under embargo again (its record gains a publish_at to come): withdrawn.
    later = validate_record({**record(FINE, ["es"]), "publish_at": "2100-01-01T00:00:00Z"})
    with decoding_capped():
        pipeline.prepare([(None, later)], settings)
    before = events.publications(settings)
    (withdrawn,) = events.publish_notices(publish(settings), settings, before)
    assert (withdrawn.event, withdrawn.slug) == (events.WITHDRAWN, FINE)
    assert withdrawn.payload["message"].startswith(f"Withdrew “ANSO forum “{FINE}””: it is under embargo again")


# --- against a real Prefect server, with a real webhook receiver ------------------------------

@pytest.fixture
def receiver():
    receiver = Receiver("/hooks/reviewers", wait=WAIT)
    yield receiver
    receiver.close()


def prefect(*args: str, env: dict[str, str]) -> str:
    from test_prefect_server import PREFECT

    result = subprocess.run([PREFECT, "--no-prompt", *args], env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"prefect {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def install_automations(tmp_path: Path, env: dict[str, str]) -> None:
    """The README's three steps: look up the Webhook block's id, put it in the file, create."""
    block = json.loads(prefect("block", "inspect", "webhook/pressflow-reviewers", "--output", "json", env=env))
    filled = tmp_path / "notify-reviewers.yaml"
    filled.write_text(AUTOMATIONS.read_text(encoding="utf-8").replace("WEBHOOK_BLOCK_ID", block["id"]), encoding="utf-8")
    out = prefect("automation", "create", "--from-file", str(filled), env=env)
    assert "Created 2 automation(s)" in out, out


def read_events(prefix: str, since: dt.datetime, want: int) -> list:
    """Events whose name starts with `prefix`, read back from the server once `want` are there."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    event_filter = EventFilter(event=EventNameFilter(prefix=[prefix]),
                               occurred=EventOccurredFilter(since=since, until=since + dt.timedelta(hours=1)))
    deadline = time.monotonic() + WAIT
    while True:
        with get_client(sync_client=True) as client:
            found = client.read_events(event_filter, limit=50).events
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(1)


@pytest.mark.slow
def test_reviewers_are_told_through_the_automation_and_the_events_are_recorded(
        tmp_path, prefect_server, receiver, argos_models, broken_templates):
    from prefect.blocks.webhook import Webhook
    from prefect.client.orchestration import get_client

    from pressflow.flows import using_settings
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    # What a team does once (README): a Webhook block for their chat or mail relay, the automations.
    Webhook(url=receiver.url, headers={"Content-Type": "application/json"}).save("pressflow-reviewers", overwrite=True)
    install_automations(tmp_path, prefect_server)
    with get_client(sync_client=True) as client:
        assert {a.name for a in client.read_automations()} >= {"pressflow-notify-reviewers",
                                                               "pressflow-translation-failed"}

    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    settings = Settings(out_dir=tmp_path / "out", templates_dir=broken_templates, review_url="https://review.example.org")
    records = [record(BROKEN, ["es", "zh"]), record(FINE, ["es"])]
    with using_settings(settings), decoding_capped():
        prepare_flow(events=[validate_record(r) for r in records])

    recorded = read_events("pressflow.release.", since, want=3)
    by_kind = {(e.event, e.resource.id): e for e in recorded}
    assert set(by_kind) == {(events.AWAITING_REVIEW, f"pressflow.release.{BROKEN}"),
                            (events.AWAITING_REVIEW, f"pressflow.release.{FINE}"),
                            (events.TRANSLATION_FAILED, f"pressflow.release.{BROKEN}")}
    fine = by_kind[events.AWAITING_REVIEW, f"pressflow.release.{FINE}"]
    assert fine.payload["languages"] == ["en", "es"] and fine.payload["drafts"] > 1  # the source is reviewed too
    assert any(r.role == "flow-run" for r in fine.related)  # which run said so
    assert events.waiting_notices(settings) == []  # the outbox knows they went out

    # The automation's webhook call, as the reviewers' chat receives it.
    (told,) = receiver.wait_for(lambda m: m["event"] == events.AWAITING_REVIEW and m["release"] == FINE)
    assert told["languages"] == ["en", "es"] and told["drafts"] == fine.payload["drafts"]
    assert told["review_url"] == "https://review.example.org/"
    assert told["text"] == fine.payload["message"]
    assert told["flow_run"].startswith("prefect.flow-run.")
    (failed,) = receiver.wait_for(lambda m: m["event"] == events.TRANSLATION_FAILED)
    assert failed["release"] == BROKEN and failed["languages"] == ["zh"]
    assert "no_such_variable" in failed["reasons"]["zh"]

    approve_all(settings)
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    with using_settings(settings):
        publish_flow()
    published = read_events(events.PUBLISHED, since, want=2)
    assert {e.payload["release"]: e.payload["languages"] for e in published} == {
        BROKEN: ["en", "es"], FINE: ["en", "es"]}
