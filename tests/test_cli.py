"""Tests of the `pressflow` command, run the way users run it.

Commands that run the Prefect flows (`run`, `prepare`) are slow and use the session's Prefect
test server; review commands work on a store prepared by the pipeline; error output is checked
in a real subprocess, where a traceback would actually reach the terminal.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.prepare import pipeline
from pressflow.cli import app
from pressflow.core.config import Settings
from pressflow.platforms import PLATFORMS
from pressflow.records import Event, load_records, validate_record
from pressflow.render import RELEASE

EVENTS = Path(__file__).resolve().parents[1] / "events"
# Random-weight models never stop on their own; short outputs keep these runs quick.
SHORT_OUTPUT = "24"


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)

    def invoke(*args):
        return CliRunner().invoke(app, [str(a) for a in args])

    return invoke


def command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    # Typer ships its own copy of click: look for sub-commands rather than a click class.
    for name, sub in (getattr(command, "commands", None) or {}).items():
        paths += command_paths(sub, (*prefix, name))
    return paths


ALL_COMMANDS = command_paths(typer.main.get_command(app))


def test_the_command_tree_is_complete():
    names = {" ".join(p) for p in ALL_COMMANDS}
    assert {"prepare", "publish", "run", "serve", "review list", "review show", "review approve",
            "review reject", "review edit", "models list", "models install"} <= names


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "pressflow")
def test_help_works_everywhere(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    if path:
        assert path[-1] in result.output


# --- prepare and run (Prefect flows) ---------------------------------------------------------


@pytest.mark.slow
def test_run_the_examples_end_to_end(cli, prefect_harness, argos_models, tmp_path):
    out = tmp_path / "out"
    result = cli("run", EVENTS, "--auto-approve", "--out", out)
    assert result.exit_code == 0, result.output
    assert "approved" in result.stdout and "files written" in result.stdout
    # Languages without a model are explained once, with what to do about them.
    assert result.stderr.count("skipped languages without an installed translation model") == 1
    events = [event for _, event in load_records([EVENTS]).events]
    for event in events:
        assert f"published {event.slug}: " in result.stdout
        manifest = json.loads((out / "outbox" / event.slug / "manifest.json").read_text())
        assert "en" in manifest["languages"] and "zh" in manifest["languages"]  # every example involves CN
        listed = [f["path"] for f in manifest["files"]]
        assert len(listed) == len(set(listed))  # a file every language shares (the image) is listed once
        for f in manifest["files"]:
            assert hashlib.sha256((out / f["path"]).read_bytes()).hexdigest() == f["sha256"], f["path"]
        for lang in manifest["languages"]:
            assert (out / "site" / lang / f"{event.slug}.html").is_file()
            folder = out / "outbox" / event.slug / lang
            for name in ("press-release.md", "press-release.html", "press-release.txt"):
                assert (folder / name).is_file()
            assert {p.stem for p in (folder / "posts").glob("*.txt")} == set(PLATFORMS)
    beauty = json.loads((out / "outbox" / "2021-08-30-beauty-of-life-on-earth" / "manifest.json").read_text())
    assert beauty["languages"] == ["en", "es", "zh"]
    assert {"pt", "id", "ur"} <= {s["language"] for s in beauty["skipped_languages"]}
    for lang in ("en", "es", "zh"):
        for kind in ("rss", "atom"):
            assert (out / "feeds" / lang / f"{kind}.xml").is_file()
    # Run again: nothing new to prepare, nothing to write.
    again = cli("run", EVENTS, "--auto-approve", "--out", out)
    assert again.exit_code == 0, again.output
    assert "\n0 drafts stored;" in again.stdout and "\n0 files written," in again.stdout


def write_record(folder: Path, name: str, record: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(record, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def no_models(tmp_path, monkeypatch):
    """No translation model installed, whatever other tests installed."""
    import argostranslate.settings as argos_settings

    empty = tmp_path / "no-models"
    empty.mkdir()
    monkeypatch.setattr(argos_settings, "package_dirs", [empty])


@pytest.mark.slow
def test_run_without_models_says_once_which_are_missing(cli, prefect_harness, no_models, tmp_path):
    result = cli("run", EVENTS, "--auto-approve", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert result.output.count("skipped languages without an installed translation model") == 1
    assert result.output.count("pressflow models install en LANG") == 1


@pytest.fixture
def sources_pending(monkeypatch):
    """English drafts wait for review too, so a release needs no translation to have pending drafts."""
    monkeypatch.setenv("PRESSFLOW_AUTO_APPROVE_SOURCE", "0")


def english_only(slug: str) -> dict:
    return {"id": slug, "title": f"Forum {slug}", "date": "2021-09-01", "summary": "Delegates met to discuss water.",
            "languages": []}


def statuses(settings: Settings, slug: str) -> set[str]:
    with db.session_scope(settings.db_url) as session:
        return {d.status for d in store.list_drafts(session, slug=slug)}


@pytest.mark.slow
def test_auto_approve_approves_only_the_releases_of_this_run(cli, prefect_harness, sources_pending, tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    pipeline.prepare([(None, validate_record(english_only("waiting-for-review")))], settings)
    record = write_record(tmp_path, "now.yaml", english_only("published-now"))
    result = cli("run", record, "--auto-approve", "--out", settings.out_dir)
    assert result.exit_code == 0, result.output
    assert f"approved {1 + len(PLATFORMS)} drafts (--auto-approve)" in result.stdout
    assert statuses(settings, "published-now") == {store.PUBLISHED}
    assert statuses(settings, "waiting-for-review") == {store.PENDING}
    assert "waiting-for-review" not in result.stdout


@pytest.mark.slow
def test_auto_approve_names_the_qa_flags_of_what_it_approved(cli, prefect_harness, sources_pending, tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    record = write_record(tmp_path, "flagged.yaml", english_only("flagged"))
    pipeline.prepare([(record, validate_record(english_only("flagged")))], settings)
    dropped = {"kind": "protected_missing", "segment": 0, "items": ["https://anso.org.cn"]}
    with db.session_scope(settings.db_url) as session:
        for draft in store.list_drafts(session, slug="flagged"):
            if draft.channel in (RELEASE, "x"):
                draft.qa = [dropped, {**dropped, "segment": 1}]
            if draft.channel == "x":
                draft.qa = [*draft.qa, {"kind": "over_limit", "length": 300, "limit": 280}]
    # The record is unchanged since prepare: its pending drafts are still this run's to approve.
    result = cli("run", record, "--auto-approve", "--out", settings.out_dir)
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:") and "PRESSFLOW_SITE_URL" not in line]
    assert warnings == ["warning: flagged: en: approved with QA flags: protected_missing (release, x); "
                        "over_limit (x)"]


@pytest.fixture
def broken_spanish_page(tmp_path, monkeypatch) -> Path:
    """The real templates, except that the Spanish page cannot render (an undefined variable)."""
    from conftest import ROOT

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    page = templates / "page.html.j2"
    page.write_text(page.read_text().replace(
        "{% block body %}", '{% block body %}{% if lang == "es" %}{{ no_such_page_variable }}{% endif %}', 1))
    monkeypatch.setenv("PRESSFLOW_TEMPLATES", str(templates))
    return templates


@pytest.mark.slow
def test_a_language_that_fails_to_publish_is_named_and_exits_1(cli, prefect_harness, argos_models,
                                                               broken_spanish_page, tmp_path):
    record = write_record(tmp_path, "r.yaml", {"id": "half-published", "title": "Water forum", "date": "2021-09-12",
                                               "summary": "Scientists met in Tashkent.", "languages": ["es"]})
    out = tmp_path / "out"
    ran = cli("run", record, "--auto-approve", "--out", out)
    assert ran.exit_code == 1, ran.output
    assert "published half-published: en\n" in ran.stdout
    [error] = [line for line in ran.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: half-published: es: not published: rendering failed: template")
    assert "no_such_page_variable" in error
    # The Spanish drafts stay approved, so every publish tries again, and says so again.
    again = cli("publish", "--local", "--out", out)
    assert again.exit_code == 1, again.output
    assert [line for line in again.stderr.splitlines() if line.startswith("error:")] == [error]


@pytest.mark.slow
def test_prepare_reports_a_bad_record_and_stores_the_good_one(cli, prefect_harness, tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    bad = write_record(records, "a-bad.yaml", {"id": "bad-one", "title": "Bad", "date": "2021-13-45",
                                               "summary": "Wrong date."})
    write_record(records, "b-good.yaml", {"id": "good-one", "title": "Good", "date": "2021-09-01",
                                          "summary": "English only.", "languages": []})
    out = tmp_path / "out"
    result = cli("prepare", "--local", records, "--out", out)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert str(bad) in errors[0] and "record 'bad-one'" in errors[0] and "field 'date'" in errors[0]
    assert "Traceback" not in result.output
    assert "prepared good-one: en" in result.stdout
    with db.session_scope(Settings(out_dir=out).db_url) as session:
        assert {d.release_slug for d in store.list_drafts(session)} == {"good-one"}


@pytest.mark.slow
def test_prepare_a_missing_path_fails_but_prepares_the_rest(cli, prefect_harness, tmp_path):
    good = write_record(tmp_path, "good.yaml", {"id": "good-two", "title": "Good", "date": "2021-09-01",
                                                "summary": "English only.", "languages": []})
    result = cli("prepare", "--local", good, tmp_path / "nowhere.yaml", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'nowhere.yaml'}: no such file or folder" in result.stderr
    assert "prepared good-two" in result.stdout


# --- review ----------------------------------------------------------------------------------


@pytest.fixture
def reviewed_store(argos_models, tmp_path, monkeypatch) -> Settings:
    """One release prepared in English (approved) and Spanish (pending), by the pipeline."""
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", SHORT_OUTPUT)
    settings = Settings(out_dir=tmp_path / "out")
    event = Event(title="Water forum", date="2021-09-12", summary="Scientists met in Tashkent.", languages=["es"])
    pipeline.prepare([(None, event)], settings)
    service.approve_all(settings, reviewer="ana", lang="en")
    return settings


def pending_ids(settings: Settings) -> list[int]:
    with db.session_scope(settings.db_url) as session:
        return [d.id for d in store.list_drafts(session, status=store.PENDING)]


def test_review_list_and_show(cli, reviewed_store):
    out = reviewed_store.out_dir
    listed = cli("review", "list", "--out", out)
    assert listed.exit_code == 0, listed.output
    ids = pending_ids(reviewed_store)
    assert len(ids) == 1 + len(PLATFORMS)
    rows = listed.stdout.splitlines()
    assert len(rows) == len(ids) and all(" es " in row and "draft" in row for row in rows)
    everything = cli("review", "list", "--status", "all", "--out", out)
    assert len(everything.stdout.splitlines()) == 2 * len(ids)
    only_x = cli("review", "list", "--channel", "x", "--lang", "es", "--out", out)
    assert len(only_x.stdout.splitlines()) == 1
    shown = cli("review", "show", ids[0], "--out", out)
    assert shown.exit_code == 0, shown.output
    assert "--- source ---" in shown.stdout and "--- es ---" in shown.stdout
    assert "# Water forum" in shown.stdout


def test_review_approve_reject_edit(cli, reviewed_store, tmp_path):
    out = reviewed_store.out_dir
    release, x, *others = pending_ids(reviewed_store)
    text = tmp_path / "fixed.md"
    current = service.get_text(reviewed_store, release)["text"]
    text.write_text(current.replace(current.splitlines()[0], "# Foro del agua", 1), encoding="utf-8")
    edited = cli("review", "edit", release, "--file", text, "--reviewer", "ana", "--out", out)
    assert edited.exit_code == 0, edited.output
    assert f"saved draft {release} revision 2" in edited.stdout
    approved = cli("review", "approve", release, "--reviewer", "ana", "--out", out)
    assert approved.exit_code == 0 and "approved 1 draft(s)" in approved.stdout
    rejected = cli("review", "reject", x, "--reason", "too long", "--out", out)
    assert rejected.exit_code == 0 and "rejected 1 draft(s)" in rejected.stdout
    rest = cli("review", "approve", "--all", "--lang", "es", "--out", out)
    assert rest.exit_code == 0 and f"approved {len(others)} draft(s)" in rest.stdout
    with db.session_scope(reviewed_store.db_url) as session:
        draft = store.get_draft(session, release)
        assert (draft.status, draft.revision, draft.text) == (store.APPROVED, 2, text.read_text())
        assert store.get_draft(session, x).reason == "too long"
    assert cli("review", "list", "--out", out).stdout.strip() == "no drafts match"


def test_review_approve_without_ids_says_what_to_give(cli, reviewed_store):
    result = cli("review", "approve", "--out", reviewed_store.out_dir)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: give draft ids, or --all"


def test_a_pressflow_error_is_one_line(cli, reviewed_store):
    result = cli("review", "show", "9999", "--out", reviewed_store.out_dir)
    assert result.exit_code == 1
    assert result.stderr == "error: no draft with id 9999; see `pressflow review list`\n"


def _pressflow(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pressflow.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))


def test_errors_reach_the_terminal_as_one_line_and_debug_shows_the_traceback(reviewed_store):
    plain = _pressflow("review", "show", "9999", "--out", reviewed_store.out_dir)
    assert plain.returncode == 1
    assert plain.stderr.strip().splitlines() == ["error: no draft with id 9999; see `pressflow review list`"]
    assert "Traceback" not in plain.stdout + plain.stderr
    debug = _pressflow("--debug", "review", "show", "9999", "--out", reviewed_store.out_dir)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "NoSuchDraft: no draft with id 9999" in debug.stderr  # a ReviewError, named for its kind


@pytest.mark.slow
def test_bad_registry_file_is_one_line(cli, prefect_harness, tmp_path, monkeypatch):
    registry = tmp_path / "countries.yaml"
    registry.write_text("- not a mapping\n")
    # --countries sets PRESSFLOW_COUNTRIES for the process; monkeypatch removes it after the test
    # (a delenv of an unset variable would have nothing to undo, and the bad registry would leak).
    monkeypatch.setenv("PRESSFLOW_COUNTRIES", str(registry))
    record = write_record(tmp_path, "r.yaml", {"title": "T", "date": "2021-09-01", "summary": "S.",
                                               "countries": ["KZ"]})
    result = cli("--countries", registry, "prepare", "--local", record, "--out", tmp_path / "out")
    assert result.exit_code == 1
    # (The test settings let Prefect log task failures too; the CLI's own message is one line.)
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert str(registry) in error and "must be a mapping" in error
    assert "Traceback" not in result.stderr
