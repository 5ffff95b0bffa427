"""The Prefect flows, run for real against the session's Prefect test server.

`prepare_flow` takes records as a typed parameter (what the Prefect UI form sends) or as file
paths; both store drafts and leave a 'prepare-summary' table artifact, read back through the
Prefect client. `publish_flow` publishes what was approved, as of the clock: its records' dates
and (absent) embargoes are in the past, so no test needs to move time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
import yaml

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.core.config import Settings
from pressflow.platforms import PLATFORMS
from pressflow.records import Event

pytestmark = pytest.mark.slow

CHANNELS = 1 + len(PLATFORMS)


@pytest.fixture(autouse=True)
def short_outputs(monkeypatch):
    # Random-weight models never stop on their own; short outputs keep these runs quick.
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "24")


def artifact_tables(key: str) -> list[list[dict]]:
    """Every table artifact stored under `key`, newest first, as the Prefect API returns them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC)

    tables = []
    for artifact in asyncio.run(read()):
        assert artifact.type == "table"
        data = artifact.data
        tables.append(json.loads(data) if isinstance(data, str) else data)  # JSON text, or already parsed
    return tables


def drafts_of(settings: Settings, slug: str) -> list[store.Draft]:
    with db.session_scope(settings.db_url) as session:
        return store.list_drafts(session, slug=slug)


def test_prepare_flow_with_events_as_parameter(prefect_harness, argos_models, tmp_path):
    from pressflow.flows.prepare import prepare_flow

    event = Event(id="flow-param", title="Flow forum", date=dt.date(2021, 9, 1),
                  summary="Records can come from the Prefect form.", languages=["es", "pt"])
    out = tmp_path / "out"
    summary = prepare_flow(events=[event], out_dir=str(out))
    assert summary.errors == []
    assert summary.releases["flow-param"].languages == ["en", "es"]
    assert set(summary.skipped["flow-param"]) == {"pt"}
    assert summary.failed == {}
    assert summary.drafts_added == 2 * CHANNELS
    assert summary.stats.translated > 0
    drafts = drafts_of(Settings(out_dir=out), "flow-param")
    assert sorted((d.lang, d.status) for d in drafts) == \
        sorted([("en", store.PENDING)] * CHANNELS + [("es", store.PENDING)] * CHANNELS)
    [table, *_] = artifact_tables("prepare-summary")
    rows = {row["release"]: row for row in table}
    assert rows["flow-param"]["languages"] == "en, es"
    assert rows["flow-param"]["skipped"].startswith("pt: no translation model installed for en->pt")


def test_prepare_flow_with_paths_then_publish_flow(prefect_harness, argos_models, tmp_path):
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    records = tmp_path / "records"
    records.mkdir()
    (records / "good.yaml").write_text(yaml.safe_dump(
        {"id": "flow-paths", "title": "Paths forum", "date": "2021-09-02", "summary": "Records from files.",
         "languages": ["zh"]}), encoding="utf-8")
    (records / "bad.yaml").write_text("title: Missing everything else\n", encoding="utf-8")
    out = tmp_path / "out"
    summary = prepare_flow(paths=[str(records)], out_dir=str(out))
    assert len(summary.errors) == 1 and "bad.yaml" in summary.errors[0]
    assert summary.releases["flow-paths"].languages == ["en", "zh"]
    settings = Settings(out_dir=out)
    assert {d.lang for d in drafts_of(settings, "flow-paths")} == {"en", "zh"}
    [table, *_] = artifact_tables("prepare-summary")
    assert [row["release"] for row in table] == ["flow-paths"]

    # A second run of the same records changes nothing.
    again = prepare_flow(paths=[str(records / "good.yaml")], out_dir=str(out))
    assert again.drafts_added == 0 and again.releases["flow-paths"].status == "unchanged"

    service.approve_all(settings, reviewer="ana")
    published = publish_flow(out_dir=str(out))
    assert published.releases == {"flow-paths": ["en", "zh"]}
    assert published.files_written > 0
    assert (out / "feeds" / "zh" / "atom.xml").is_file()
    assert {d.status for d in drafts_of(settings, "flow-paths")} == {store.PUBLISHED}
    [table, *_] = artifact_tables("publish-summary")
    assert [row["release"] for row in table] == ["flow-paths"]
    assert publish_flow(out_dir=str(out)).files_written == 0


def test_publish_flow_takes_no_publish_time(prefect_harness, tmp_path):
    """Its parameters are the form the Prefect UI shows: a time there would lift every embargo."""
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    assert set(publish_flow.parameters.properties) == {"out_dir", "not_before"}
    embargoed = Event(id="flow-embargo", title="Not yet", date=dt.date(2021, 9, 3), summary="Later.", languages=[],
                      publish_at=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1))
    out = tmp_path / "out"
    prepare_flow(events=[embargoed], out_dir=str(out))
    summary = publish_flow(out_dir=str(out))
    assert summary.embargoed == ["flow-embargo"] and summary.releases == {}
    assert not (out / "site" / "en" / "flow-embargo.html").exists()
    # `not_before` can only hold a run back: a far one is refused, not waited for or honoured.
    state = publish_flow(out_dir=str(out), not_before=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1),
                         return_state=True)
    assert state.is_failed() and "schedule the run for that time instead" in str(state.result(raise_on_failure=False))
    assert not (out / "site" / "en" / "flow-embargo.html").exists()


def test_a_run_started_before_its_embargo_waits_for_it(prefect_harness, tmp_path):
    """A worker starts a scheduled run up to 10 s early (its prefetch); the embargo run waits it out."""
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    embargo = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=12)).replace(microsecond=0)
    soon = Event(id="flow-soon", title="Soon", date=dt.date(2021, 9, 3), summary="In a moment.", languages=[],
                 publish_at=embargo)
    out = tmp_path / "out"
    prepare_flow(events=[soon], out_dir=str(out))
    service.approve_all(Settings(out_dir=out), reviewer="ana")
    summary = publish_flow(out_dir=str(out), not_before=embargo)
    assert dt.datetime.now(dt.timezone.utc) >= embargo
    assert summary.releases == {"flow-soon": ["en"]}
    assert (out / "site" / "en" / "flow-soon.html").is_file()


def test_a_publish_run_waits_for_the_one_publish_slot(prefect_harness, tmp_path):
    """Publish runs however started share one slot: a second waits while another holds it."""
    import threading

    from prefect.concurrency.sync import concurrency

    from pressflow.flows import PUBLISH_LIMIT, ensure_limit
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    out = tmp_path / "out"
    prepare_flow(events=[Event(id="slot", title="Slot", date=dt.date(2021, 9, 3), summary="S.", languages=[])],
                 out_dir=str(out))
    service.approve_all(Settings(out_dir=out), reviewer="ana")
    ensure_limit(PUBLISH_LIMIT, 1)
    holding, release, done = threading.Event(), threading.Event(), []

    def hold() -> None:  # another publish run, as the slot sees it
        with concurrency(PUBLISH_LIMIT, occupy=1, strict=True):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(30)
    second = threading.Thread(target=lambda: done.append(publish_flow(out_dir=str(out))))
    second.start()
    second.join(8)
    assert second.is_alive() and not done  # queued on the slot
    assert not (out / "site" / "en" / "slot.html").exists()
    release.set()
    holder.join(30)
    second.join(120)
    assert done and done[0].releases == {"slot": ["en"]}
    assert (out / "site" / "en" / "slot.html").is_file()


def run_logs(flow_run_id, want: str, timeout: float = 30) -> list[str]:
    """The run's log messages on the server, once one contains `want` (logs arrive in batches)."""
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    async def read() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
            return [log.message for log in logs]

    APILogHandler().flush()
    deadline = time.monotonic() + timeout
    while True:
        messages = asyncio.run(read())
        if any(want in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def flow_run(flow_run_id):
    from prefect.client.orchestration import get_client

    async def read():
        async with get_client() as client:
            return await client.read_flow_run(flow_run_id)

    return asyncio.run(read())


def test_a_failed_language_and_a_refused_record_end_completed_with_failures(prefect_harness, argos_models, tmp_path,
                                                                           monkeypatch):
    """The run's state is named for it and its message names them; pressflow's own log lines,
    naming the failing language, are in the run's logs; the artifact keeps a failed column."""
    import shutil

    from conftest import ROOT
    from pressflow.flows.prepare import prepare_flow

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    release = templates / "release.md.j2"
    release.write_text('{% if lang == "zh" %}{{ no_such_variable }}{% endif %}\n' + release.read_text())
    monkeypatch.setenv("PRESSFLOW_TEMPLATES", str(templates))
    records = tmp_path / "records"
    records.mkdir()
    (records / "good.yaml").write_text(yaml.safe_dump(
        {"id": "half-fails", "title": "Half forum", "date": "2021-09-04", "summary": "Spanish yes, Chinese no.",
         "languages": ["es", "zh"]}), encoding="utf-8")
    (records / "refused.yaml").write_text("title: No date, no summary\n", encoding="utf-8")

    state = prepare_flow(paths=[str(records)], out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_completed() and state.name == "Completed with failures", state
    assert "1 record(s) refused" in state.message and "refused.yaml" in state.message
    assert "half-fails in zh (rendering failed" in state.message
    report = state.result()
    assert report.releases["half-fails"].languages == ["en", "es"] and list(report.failed["half-fails"]) == ["zh"]

    run = flow_run(state.state_details.flow_run_id)
    assert run.name == "prepare records/" and run.state.name == "Completed with failures"
    messages = run_logs(run.id, "(zh): rendering failed")
    assert any(m.startswith("half-fails (zh): rendering failed") for m in messages), messages
    assert any("refused.yaml" in m for m in messages), messages
    [table, *_] = artifact_tables("prepare-summary")
    [row] = table
    assert row["release"] == "half-fails" and row["failed"].startswith("zh: rendering failed")
    assert len(row["failed"]) <= 90  # a short reason; the details are in the second artifact


def test_a_clean_run_is_plainly_completed_and_named_for_its_releases(prefect_harness, tmp_path):
    from pressflow.flows.prepare import prepare_flow
    from pressflow.flows.publish import publish_flow

    events = [Event(id=f"clean-{n}", title=f"Clean {n}", date=dt.date(2021, 9, 5), summary="English only.",
                    languages=[]) for n in range(3)]
    state = prepare_flow(events=events, out_dir=str(tmp_path / "out"), return_state=True)
    assert state.is_completed() and state.name == "Completed", state
    assert flow_run(state.state_details.flow_run_id).name == "prepare 3 releases"
    published = publish_flow(out_dir=str(tmp_path / "out"), return_state=True)
    assert published.name == "Completed" and "files written" in published.message
    name = flow_run(published.state_details.flow_run_id).name
    assert name.startswith("publish ") and dt.datetime.strptime(name, "publish %Y-%m-%d %H:%M")


def test_retries_are_only_for_errors_that_can_pass():
    """A corrupt model, a bad record or an integrity error is not retried; a locked database is."""
    from prefect.states import Failed
    from sqlalchemy.exc import IntegrityError, OperationalError

    from pressflow.core.errors import ModelLoadError, RecordError
    from pressflow.flows import can_pass

    def failed(exc):
        return Failed(data=exc)

    assert can_pass(None, None, failed(OperationalError("UPDATE", {}, Exception("database is locked"))))
    assert can_pass(None, None, failed(TimeoutError("publish lock")))
    assert not can_pass(None, None, failed(ModelLoadError("cannot open the en-zh model")))
    assert not can_pass(None, None, failed(RecordError("a.yaml", "bad date")))
    assert not can_pass(None, None, failed(IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))))


def test_a_language_stored_in_this_store_is_cached_for_prefect_and_a_new_store_translates_it(
        prefect_harness, argos_models, tmp_path):
    """The language task's cache key says "stored in this store": Prefect skips it there (a
    retried or re-triggered run), while a new store, even at the same path, translates it."""
    import shutil

    from prefect import flow

    from pressflow.flows.prepare import TaskSteps, language_task, on_threads
    from pressflow.prepare import pipeline

    event = Event(id="cached-forum", title="Cached forum", date=dt.date(2021, 9, 1),
                  summary="A language is done once it is stored.", languages=["es"])
    settings = Settings(out_dir=tmp_path / "out")

    def registered() -> list[pipeline.Job]:
        (job,), _ = pipeline.register([(None, event)], settings)
        return [job]

    jobs = registered()

    @flow
    def language_again():
        state = language_task("es", jobs, settings, return_state=True)
        return state.name, state.result(), TaskSteps(threads=on_threads()).language("es", jobs, settings)

    name, report, again = language_again()
    assert (name, report.drafts_added) == ("Completed", CHANNELS) and report.stats.translated > 0
    assert (again.drafts_added, again.stats.translated) == (0, 0)  # asked again in the run: Cached, nothing added
    assert language_again()[0] == "Cached"  # and in a run triggered again

    db._engines.pop(settings.db_url).dispose()
    shutil.rmtree(settings.out_dir)  # the store is made anew at the same path
    jobs = registered()
    name, report, _ = language_again()
    assert (name, report.drafts_added) == ("Completed", CHANNELS)
    assert [d.lang for d in drafts_of(settings, "cached-forum")].count("es") == CHANNELS
