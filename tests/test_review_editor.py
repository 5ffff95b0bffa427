"""`pressflow review edit ID` without --file opens $EDITOR, as the README says: a real editor
(a small shell script that rewrites the file it is given), in a real `pressflow` process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.records import Event


@pytest.fixture
def spanish_draft(argos_models, tmp_path, monkeypatch) -> tuple[Settings, int]:
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "24")  # random-weight models never stop on their own
    settings = Settings(out_dir=tmp_path / "out")
    event = Event(id="water-forum", title="Water forum", date="2021-09-12", summary="Scientists met in Tashkent.",
                  languages=["es"])
    pipeline.prepare([(None, event)], settings)
    with db.session_scope(settings.db_url) as session:
        return settings, store.list_drafts(session, lang="es", channel="release")[0].id


def edit_with(editor_body: str, tmp_path, settings: Settings, draft_id: int) -> subprocess.CompletedProcess:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\n" + editor_body)
    editor.chmod(0o755)
    env = {**os.environ, "EDITOR": str(editor), "VISUAL": str(editor)}
    return subprocess.run([sys.executable, "-m", "pressflow.cli", "review", "edit", str(draft_id),
                           "--reviewer", "ana", "--out", str(settings.out_dir)],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_review_edit_opens_the_editor_and_saves_what_it_wrote(spanish_draft, tmp_path):
    settings, draft_id = spanish_draft
    # The editor is given one file: it replaces its text, as a person would, and saves.
    before = service.get_text(settings, draft_id)["text"]
    result = edit_with("sed -i '1s/.*/# Los científicos se reunieron en Tashkent/' \"$1\"\n", tmp_path, settings,
                       draft_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"saved draft {draft_id} revision 2"), result.stdout
    assert result.stderr == ""
    after = service.get_text(settings, draft_id)["text"]
    assert after.splitlines()[0] == "# Los científicos se reunieron en Tashkent"
    assert after.splitlines()[1:] == before.splitlines()[1:]


def test_an_edit_that_breaks_the_release_is_refused_in_one_line(spanish_draft, tmp_path):
    settings, draft_id = spanish_draft
    result = edit_with('printf "Los científicos se reunieron en Tashkent.\\n" > "$1"\n', tmp_path, settings, draft_id)
    assert result.returncode == 1
    assert result.stderr == (f"error: draft {draft_id}: the title line is missing: a release starts with '# ' and "
                             "its title; found 'Los científicos se reunieron en Tashkent...'\n")
    assert service.get_text(settings, draft_id)["revision"] == 1


def test_review_edit_with_the_file_left_as_it_was_saves_nothing(spanish_draft, tmp_path):
    settings, draft_id = spanish_draft
    result = edit_with("exit 0\n", tmp_path, settings, draft_id)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "no change\n"
    assert service.get_text(settings, draft_id)["revision"] == 1


def test_an_editor_that_fails_is_one_line(spanish_draft, tmp_path):
    settings, draft_id = spanish_draft
    result = edit_with("exit 3\n", tmp_path, settings, draft_id)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert service.get_text(settings, draft_id)["revision"] == 1
