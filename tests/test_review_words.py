"""The CLI and the review page use the same words: `--status pending`, a refused unknown status,
the QA filter's option labels, and no Prefect advice after a failed prepare."""

from __future__ import annotations

import datetime as dt
import sys

from typer.testing import CliRunner

from pressflow.core import db
from pressflow.drafts import store
from pressflow.cli import app
from pressflow.translate import checks


def cli(settings, *args):
    result = CliRunner().invoke(app, [*args, "--out", str(settings.out_dir)])
    return result.exit_code, result.output


def a_pending_draft(settings) -> int:
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug="office", title="Office", date=dt.date(2021, 9, 12), publish_at=None,
                             fingerprint="f1", record={}, source_file=None)
        draft = store.add_draft(session, slug="office", lang="es", channel="release", fingerprint="f1",
                                source_text="Hello.", text="Hola.")
        session.flush()
        return draft.id


def test_status_pending_lists_what_the_review_page_calls_pending(settings):
    draft_id = a_pending_draft(settings)
    for word in ("pending", "draft", "Pending"):
        code, output = cli(settings, "review", "list", "--status", word)
        assert code == 0 and output.split()[:2] == [str(draft_id), "draft"], (word, output)
    code, output = cli(settings, "review", "list")
    assert code == 0 and "no drafts match" not in output


def test_an_unknown_status_is_an_error_naming_the_statuses(settings):
    a_pending_draft(settings)
    code, output = cli(settings, "review", "list", "--status", "bogus")
    assert code == 1 and "'bogus' is not a draft status" in output and "pending" in output, output


def test_the_length_filter_label_has_no_none_of_none():
    assert checks.describe({"kind": "over_limit"}) == "Over the platform's length limit"
    assert checks.describe({"kind": "over_limit", "length": 300, "limit": 280}).endswith(": 300 of 280")


def test_a_failed_prepare_gives_one_line_about_prefect(settings, tmp_path, no_prefect_server):
    """The one line saying what a run without a Prefect server does not record; no other advice."""
    from pressflow.cli import NOT_RECORDED

    bad = tmp_path / "bad.yaml"
    bad.write_text("title: No date\nsummary: The date is missing.\n")
    result = CliRunner().invoke(app, ["prepare", str(bad), "--out", str(settings.out_dir)])
    assert result.exit_code == 1
    assert [line for line in result.output.splitlines() if "Prefect" in line or "PREFECT" in line] == [NOT_RECORDED]
