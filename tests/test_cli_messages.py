"""What the CLI says: what prepare added, counted QA flags, when an embargo ends, one plain line
for a file that cannot be read, one line whatever a name holds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pressflow.cli import messages
from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.prepare import pipeline
from pressflow.cli import app
from pressflow.core.config import Settings
from pressflow.records import Event

SHORT_OUTPUT = "24"  # random-weight models never stop on their own


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def spanish_store(argos_models, tmp_path, monkeypatch) -> Settings:
    """One release prepared in English (approved) and Spanish (pending), by the pipeline."""
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)
    settings = Settings(out_dir=tmp_path / "out")
    event = Event(id="water-forum", title="Water forum", date="2021-09-12", summary="Scientists met in Tashkent.",
                  languages=["es"])
    pipeline.prepare([(None, event)], settings)
    return settings


# --- review list: a flag repeated is counted --------------------------------------------------


def test_flag_counts_count_a_kind_once_in_order_of_first_appearance():
    flags = [{"kind": "protected_missing"}] * 12 + [{"kind": "over_limit"}, {"kind": "protected_missing"}]
    assert service.flag_counts(flags) == "protected_missing x13, over_limit"


def test_review_list_counts_a_repeated_flag_instead_of_repeating_it(spanish_store):
    with db.session_scope(spanish_store.db_url) as session:
        draft = store.list_drafts(session, lang="es", channel="release")[0]
        # As the translation stage leaves a release whose 12 sentences each lost a protected name.
        draft.qa = [{"kind": "protected_missing", "segment": i, "items": ["ANSO"]} for i in range(12)]
        draft_id = draft.id
    listed = cli("review", "list", "--lang", "es", "--channel", "release", "--out", spanish_store.out_dir)
    assert listed.exit_code == 0, listed.output
    [row] = listed.stdout.splitlines()
    assert row.startswith(f"{draft_id:>5}  draft")
    assert row.endswith("QA: protected_missing x12"), row


# --- review edit --file: one plain line ---------------------------------------------------------


@pytest.mark.parametrize("make, says", [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "not a regular file (a folder); only plain files are read"),
    (lambda p: p.write_bytes(b"\xff\xfe caf\xe9"), "not UTF-8 text (byte 0); save the file as UTF-8"),
], ids=["missing", "folder", "latin1"])
def test_review_edit_with_a_file_it_cannot_read_says_so_in_one_line(spanish_store, tmp_path, make, says):
    path = tmp_path / "missing.md"
    make(path)
    with db.session_scope(spanish_store.db_url) as session:
        draft_id = store.list_drafts(session, lang="es")[0].id
    result = cli("review", "edit", draft_id, "--file", path, "--out", spanish_store.out_dir)
    assert result.exit_code == 1
    assert result.stderr == f"error: {path}: {says}\n"


def test_review_edit_names_a_file_with_a_line_break_on_one_line(spanish_store, tmp_path):
    path = tmp_path / "new\nsaved draft 1 revision 9.md"
    with db.session_scope(spanish_store.db_url) as session:
        draft_id = store.list_drafts(session, lang="es")[0].id
    result = cli("review", "edit", draft_id, "--file", path, "--out", spanish_store.out_dir)
    assert result.exit_code == 1
    assert result.stderr == f"error: {str(path)!r}: no such file\n"


# --- prepare: what was added --------------------------------------------------------------------


def test_prepared_line_says_what_each_language_added():
    from pressflow.prepare.pipeline import ReleaseOutcome

    outcome = ReleaseOutcome("Summit", "unchanged", ["ar", "en", "zh"], {"ar": 1, "zh": 9})
    assert messages.prepared("summit", outcome) == "prepared summit: ar (1 new draft), en (unchanged), zh (9 new drafts)"
    assert messages.prepared("summit", ReleaseOutcome("Summit", "changed", ["en"])) == "prepared summit: en (changed)"
    assert messages.prepared("summit", ReleaseOutcome("Summit", "new", ["en"])) == "prepared summit: en (new)"


@pytest.mark.slow
def test_prepare_after_installing_a_model_says_what_it_added(prefect_harness, argos_models, tmp_path, monkeypatch):
    import argostranslate.settings as argos_settings

    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)
    record = tmp_path / "summit.yaml"
    record.write_text(yaml.safe_dump({"id": "summit", "title": "Summit", "date": "2021-06-04",
                                      "summary": "Scientists met in Shanghai.", "languages": ["zh"]}))
    out = tmp_path / "out"
    installed = argos_settings.package_dirs
    with monkeypatch.context() as no_models:
        empty = tmp_path / "no-models"
        empty.mkdir()
        no_models.setattr(argos_settings, "package_dirs", [empty])
        before = cli("prepare", "--local", record, "--out", out)
    assert "prepared summit: en (new)\n" in before.stdout, before.output
    assert argos_settings.package_dirs == installed  # the model is back, as after `models install`

    after = cli("prepare", "--local", record, "--out", out)

    assert after.exit_code == 0, after.output
    with db.session_scope(Settings(out_dir=out).db_url) as session:
        added = len(store.list_drafts(session, slug="summit", lang="zh"))
    assert added > 0
    assert f"prepared summit: en (unchanged), zh ({added} new drafts)\n" in after.stdout, after.output


# --- publish: until when an embargo holds -------------------------------------------------------


def test_embargo_until_in_utc_and_in_the_record_offset():
    moment = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert messages.embargo_until(moment, moment.isoformat()) == (
        "until 2030-01-01 02:00 UTC (10:00 +08:00 in the record); publish again after that")
    late = dt.datetime(2030, 1, 1, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30)))
    assert messages.embargo_until(late, late.isoformat()) == (
        "until 2030-01-02 05:00 UTC (2030-01-01 23:30 -05:30 in the record); publish again after that")
    utc = dt.datetime(2030, 1, 1, 2, 0, tzinfo=dt.timezone.utc)
    assert messages.embargo_until(utc, "2030-01-01T02:00:00Z") == "until 2030-01-01 02:00 UTC; publish again after that"


@pytest.mark.slow
def test_publish_of_an_embargoed_release_says_until_when(prefect_harness, tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    event = Event(id="later", title="Later", date="2021-06-04", summary="Not yet.", languages=[],
                  publish_at="2099-03-01T09:30:00+08:00")
    pipeline.prepare([(None, event)], settings)
    result = cli("publish", "--local", "--out", settings.out_dir)
    assert result.exit_code == 0, result.output
    assert ("embargoed later until 2099-03-01 01:30 UTC (09:30 +08:00 in the record); publish again after that\n"
            in result.stdout), result.output


# --- one message, one line ------------------------------------------------------------------------


def test_one_line_escapes_line_breaks_and_control_characters_only():
    from pressflow.core.errors import one_line, printable

    assert one_line("a\nb\rc\x1b[31m\u2028d é 中") == "a\\nb\\rc\\x1b[31m\\u2028d é 中"
    assert printable("events/é.yaml") == "events/é.yaml"
    assert printable("x\nprepared y.yaml") == "'x\\nprepared y.yaml'"


@pytest.mark.slow
def test_prepare_names_a_missing_path_with_a_line_break_on_one_line(prefect_harness, tmp_path):
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({"id": "good", "title": "Good", "date": "2021-06-04",
                                                        "summary": "Fine.", "languages": []}))
    bad = tmp_path / "nowhere\nprepared fake: en (changed)"
    result = cli("prepare", "--local", bad, tmp_path / "good.yaml", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if not line.startswith("recorded in Prefect")] == [
        f"error: {str(bad)!r}: no such file or folder"]
    assert [line for line in result.stdout.splitlines() if line.startswith("prepared")] == [
        "prepared good: en (new)"]
