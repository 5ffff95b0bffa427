"""Bidi controls and invisible characters ("Trojan Source") in drafts: records refuse them at the
door (text_rules), and a machine translation or a reviewer's edit that brings one in is flagged
by the `invisible_characters` QA check and cannot be approved, by whichever way it is approved.
The zero-width joiner where a script or an emoji needs it is neither flagged nor refused."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import add_release_row
from pressflow.drafts import service

from pressflow.drafts import store

from pressflow.drafts import reviewers
from pressflow.cli import app as cli
from pressflow.core.errors import ReviewError
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode
from pressflow.translate.checks import CHECKS, Sentence, check_sentence, describe
from pressflow.core import db

PASSWORD = "correct horse battery"
SEGMENTS = [
    {"key": "The office opens today.", "values": [], "source": "The office opens today.",
     "target": "La oficina abre hoy.", "text": "La oficina abre hoy."},
    {"key": "It serves the region.", "values": [], "source": "It serves the region.",
     "target": "Sirve a la región.", "text": "Sirve a la región."},
]
SOURCE = "# The office opens today.\n\nIt serves the region.\n"
TEXT = "# La oficina abre hoy.\n\nSirve a la región.\n"


def add_draft(settings, lang="es", channel="release") -> int:
    with db.session_scope(settings.db_url) as session:
        add_release_row(session, slug="office", fingerprint="f1", source_text=SOURCE)
        draft = store.add_draft(session, slug="office", lang=lang, channel=channel, fingerprint="f1",
                                source_text=SOURCE, text=TEXT, meta={"segments": SEGMENTS})
        session.flush()
        return draft.id


def status(settings, draft_id) -> str:
    with db.session_scope(settings.db_url) as session:
        return store.get_draft(session, draft_id).status


def flagged(qa: list[dict]) -> list[dict]:
    return [flag for flag in qa if flag["kind"] == "invisible_characters"]


# --- the check -----------------------------------------------------------------------------------


def test_the_check_is_registered_and_names_each_character():
    assert CHECKS["invisible_characters"].label and "Trojan Source" in CHECKS["invisible_characters"].explanation
    flags = check_sentence(Sentence("Pay 100 to Alice.", "Paga 100 a \u202eecilA\u202c y \u200b.", "en", "es"))
    [flag] = [f for f in flags if f["kind"] == "invisible_characters"]
    assert flag["items"] == ["U+202E RIGHT-TO-LEFT OVERRIDE", "U+202C POP DIRECTIONAL FORMATTING",
                             "U+200B ZERO WIDTH SPACE"]
    many = check_sentence(Sentence("a b", "a\u2066b\u2069 \u2066c\u2069", "en", "es"))
    assert describe(flagged(many)[0]) == ("Invisible or reordering characters: U+2066 LEFT-TO-RIGHT ISOLATE x2, "
                                          "U+2069 POP DIRECTIONAL ISOLATE x2")


@pytest.mark.parametrize("target, lang", [
    ("Nuestro equipo 👩\u200d💻 abre la oficina.", "es"),  # an emoji ZWJ sequence
    ("دفتر را امروز باز می\u200cکنیم.", "fa"),  # Persian: the non-joiner inside a word
    ("هذا\u200dمكتب.", "ar"),
    ("ক্\u200dষ অফিস খোলা হয়েছে।", "bn"),
    ("שלום\u200f! המשרד נפתח.", "he"),  # the bidi marks stay allowed
])
def test_a_legitimate_joiner_or_mark_is_not_flagged(target, lang):
    assert flagged(check_sentence(Sentence("The office opens.", target, "en", lang))) == []


# --- edits, then approval ------------------------------------------------------------------------


def test_an_edit_with_a_right_to_left_override_is_flagged_and_cannot_be_approved(settings):
    draft_id = add_draft(settings)
    saved = service.edit(settings, draft_id, "# La oficina abre hoy.\n\nSirve a la \u202enóigeR.\n", author="lin")
    assert flagged(saved.qa) == [{"kind": "invisible_characters", "items": ["U+202E RIGHT-TO-LEFT OVERRIDE"],
                                  "segment": 1}]
    with pytest.raises(ReviewError, match="cannot be approved: its text contains an invisible bidi control "
                                          r"\(U\+202E RIGHT-TO-LEFT OVERRIDE"):
        service.decide(settings, {draft_id: service.Seen()}, store.APPROVED, reviewer="ana")
    assert status(settings, draft_id) == store.PENDING
    assert "U+202E" in service.show(settings, draft_id)  # `review show` names it, with the check's explanation
    # approve-all is all or nothing: a clean draft beside it stays pending too
    other = add_draft(settings, lang="fr")
    with pytest.raises(ReviewError, match="U\\+202E"):
        service.approve_all(settings, reviewer="ana")
    assert status(settings, other) == store.PENDING
    # `run --auto-approve` leaves it pending and says why, and approves the others
    approval = service.approve_releases(settings, ["office"], reviewer="auto-approve")
    assert approval.count == 1 and status(settings, other) == store.APPROVED
    assert len(approval.left) == 1 and f"draft {draft_id} cannot be approved" in approval.left[0]
    # deleting the character makes it approvable
    clean = service.edit(settings, draft_id, "# La oficina abre hoy.\n\nSirve a la región.\n", author="lin")
    assert flagged(clean.qa) == []
    assert service.decide(settings, {draft_id: service.Seen()}, store.APPROVED, reviewer="ana") == 1


def test_an_invisible_character_between_sentences_is_flagged_for_the_whole_draft(settings):
    draft_id = add_draft(settings)
    # (On the blank line between the title and the text, the joiner would join them: refused as no release.)
    with pytest.raises(ReviewError, match="the title line is missing"):
        service.edit(settings, draft_id, "# La oficina abre hoy.\n\u2060\nSirve a la región.\n", author="lin")
    saved = service.edit(settings, draft_id, "# La oficina abre hoy.\n\nSirve a la región.\n\u2060\n", author="lin")
    assert flagged(saved.qa) == [{"kind": "invisible_characters", "items": ["U+2060 WORD JOINER"]}]
    with pytest.raises(ReviewError, match="WORD JOINER"):
        service.decide(settings, {draft_id: service.Seen()}, store.APPROVED, reviewer="ana")


def test_a_legitimate_joiner_in_an_edit_is_approved(settings):
    draft_id = add_draft(settings, lang="fa")
    saved = service.edit(settings, draft_id, "# دفتر امروز باز می\u200cشود 👩\u200d💻\n\nبه منطقه خدمت می\u200cکند.\n",
                        author="lin")
    assert flagged(saved.qa) == []
    assert service.decide(settings, {draft_id: service.Seen()}, store.APPROVED, reviewer="ana") == 1


def test_review_edit_and_review_approve_on_the_command_line(settings, tmp_path):
    draft_id = add_draft(settings)
    edited = tmp_path / "edit.md"
    edited.write_text("# La oficina abre hoy.\n\nSirve a la \u202enóigeR.\n", encoding="utf-8")
    out = ["--out", str(settings.out_dir)]
    result = CliRunner().invoke(cli, ["review", "edit", str(draft_id), "--file", str(edited), "--reviewer", "lin", *out])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["review", "approve", str(draft_id), "--reviewer", "ana", *out])
    assert result.exit_code != 0 and "U+202E RIGHT-TO-LEFT OVERRIDE" in result.output
    assert "\u202e" not in result.output  # the message names the character, never prints it
    assert status(settings, draft_id) == store.PENDING


def test_the_review_page_flags_the_edit_and_refuses_to_approve_it(settings):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    app = create_app(settings, PublishMode(on_approve=False, via_prefect=False))
    draft_id = add_draft(settings)
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
    assert client.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": token}).status_code == 303
    page = client.get(f"/drafts/{draft_id}").text
    fields = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1), "expected_revision": "1"}
    response = client.post(f"/drafts/{draft_id}/save",
                           data={**fields, "text": "# La oficina abre hoy.\n\nSirve a la \u202enóigeR.\n"})
    assert response.status_code == 303, response.text
    page = client.get(f"/drafts/{draft_id}").text
    assert "Invisible or reordering characters" in page
    response = client.post(f"/drafts/{draft_id}/approve",
                           data={**fields, "expected_revision": "2", "expected_status": store.PENDING})
    assert response.status_code == 303
    assert "cannot be approved" in client.get(response.headers["location"]).text
    assert status(settings, draft_id) == store.PENDING
