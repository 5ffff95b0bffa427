"""Edits, by one rule: whichever way an edit comes (whole text, some sentences), it is aligned with
the draft's sentences once, by the target language's own sentence rules where the layout's glue
is gone; exactly the edited sentences reach the memory; the QA flags are recomputed; the cost of
an edit is bounded and a page view never aligns anything.

Drafts come from a real prepare with the tiny genuine en->zh and en->ar test models.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pressflow.render.document import DocumentError
from pressflow.core import db
from pressflow.drafts import service, store
from pressflow.memory.store import MemoryEntry
from pressflow.prepare import pipeline
from pressflow.cli import app as cli
from pressflow.core.config import Settings
from pressflow.core.errors import ReviewError
from pressflow.records import Event
from pressflow.render import RELEASE
from pressflow.translate import layout as layouts
from pressflow.translate.protect import needs_model

RECORD = {
    "id": "seed-bank",
    "title": "ANSO opens a seed bank in Kunming",
    "date": "2021-10-12",
    "summary": "The bank keeps 2,000 seeds. It opened on 12 October. Who may use it?",
    "body": ["The alliance built it with 12 partners. Scientists met in Kunming. Was it a success? Yes.",
             "Write to office@anso.org for a visit. The bank opens to the public in 2022."],
    "languages": ["zh", "ar"],
}


@pytest.fixture(scope="module")
def prepared_once(argos_models, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("edits") / "out"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "16")
        report = pipeline.prepare([(None, Event.model_validate(RECORD))], Settings(out_dir=out))
    assert {"zh", "ar"} <= set(report.releases["seed-bank"].languages), report
    db.get_engine(Settings(out_dir=out).db_url).dispose()
    return out


@pytest.fixture
def prepared(prepared_once, tmp_path) -> Settings:
    out = tmp_path / "out"
    shutil.copytree(prepared_once, out)
    return Settings(out_dir=out)


def release_id(settings: Settings, lang: str) -> int:
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, lang=lang, channel=RELEASE)
        return draft.id


def human_entries(settings: Settings, lang: str) -> dict[str, str]:
    with db.session_scope(settings.db_url) as session:
        rows = session.execute(select(MemoryEntry.source_text, MemoryEntry.text).where(
            MemoryEntry.target_lang == lang, MemoryEntry.origin == "human"))
        return dict(rows.all())


def write_clean_sentences(settings: Settings, draft_id: int, sentence) -> list[service.Sentence]:
    """A reviewer rewrites every translatable sentence (the test model writes gibberish)."""
    sentences = service.current_segments(settings, draft_id)
    wanted = {s.index: sentence(s.index) for s in sentences if needs_model(s.key)}
    saved = service.edit_segments(settings, draft_id, wanted, author="lin")
    assert saved.revision == 2 and saved.learned == len(wanted)
    return service.current_segments(settings, draft_id)


def test_a_chinese_edit_is_aligned_by_chinese_sentence_rules(prepared):
    draft_id = release_id(prepared, "zh")
    sentences = write_clean_sentences(prepared, draft_id, lambda i: f"第{i}句话。")
    changed = [s for s in sentences if needs_model(s.key)][3]
    learned_before = human_entries(prepared, "zh")
    text = service.get_text(prepared, draft_id)["text"]
    # The reviewer writes Chinese as it is written: no space between sentences (the layout's glue
    # is gone, so only Chinese sentence rules can line the sentences up), and changes one sentence.
    edited = re.sub(r"(?<=。) (?=第)", "", text).replace(changed.text, "第一句话改好了。")
    assert edited.count("。第") >= 2
    saved = service.edit(prepared, draft_id, edited, author="lin")
    assert (saved.revision, saved.learned) == (3, 1)
    assert human_entries(prepared, "zh") == {**learned_before, changed.key: "第一句话改好了。"}
    # The layout of the new revision is stored: the page shows it sentence by sentence.
    now = service.current_segments(prepared, draft_id)
    assert [s.text for s in now][changed.index] == "第一句话改好了。"


def test_an_arabic_edit_is_aligned_by_arabic_sentence_rules(prepared):
    draft_id = release_id(prepared, "ar")
    sentences = write_clean_sentences(prepared, draft_id, lambda i: f"الجملة رقم {i}؟" if i % 2 else f"الجملة رقم {i}.")
    learned_before = human_entries(prepared, "ar")
    text = service.get_text(prepared, draft_id)["text"]
    # No space after an Arabic question mark any more: English rules would see one sentence here.
    changed = [s for s in sentences if needs_model(s.key) and s.text.endswith(".")][2]
    edited = text.replace("؟ ", "؟").replace(changed.text, "الجملة الثانية بعد التعديل.")
    assert "؟الجملة" in edited
    saved = service.edit(prepared, draft_id, edited, author="salma")
    assert saved.learned == 1
    assert human_entries(prepared, "ar") == {**learned_before, changed.key: "الجملة الثانية بعد التعديل."}


def test_unchanged_sentences_change_nothing(prepared):
    draft_id = release_id(prepared, "zh")
    sentences = service.current_segments(prepared, draft_id)
    saved = service.edit_segments(prepared, draft_id, {s.index: s.text for s in sentences}, author="lin")
    assert (saved.revision, saved.learned) == (None, 0)
    assert service.get_text(prepared, draft_id)["revision"] == 1 and human_entries(prepared, "zh") == {}
    with pytest.raises(ReviewError, match="has no sentence 999"):
        service.edit_segments(prepared, draft_id, {998: "x"}, author="lin")


def test_review_show_after_review_edit_lists_the_new_texts_flags(prepared):
    draft_id = release_id(prepared, "zh")
    sentences = service.current_segments(prepared, draft_id)
    [title] = [s for s in sentences if "seed bank" in s.source]
    # The reviewer keeps ANSO (protected) and the period: the title's flags are the new text's.
    service.edit_segments(prepared, draft_id, {title.index: "ANSO 在昆明开设种子库"}, author="lin")
    out = str(prepared.out_dir)
    shown = CliRunner().invoke(cli, ["review", "show", str(draft_id), "--out", out]).output
    assert f"(sentence {title.index + 1}): Protected item missing" not in shown
    # Now drop ANSO in the CLI: the next `review show` says so, with what the check means.
    text = service.get_text(prepared, draft_id)["text"].replace("ANSO 在昆明", "在昆明", 1)
    edited = prepared.out_dir / "edited.md"
    edited.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["review", "edit", str(draft_id), "--file", str(edited), "--out", out,
                                      "--reviewer", "lin"])
    assert result.exit_code == 0 and "saved draft" in result.output and "protected_missing" in result.output
    shown = CliRunner().invoke(cli, ["review", "show", str(draft_id), "--out", out]).output
    assert f"QA protected_missing (sentence {title.index + 1}): Protected item missing: ANSO" in shown
    assert "protected_missing: A name, number, link" in shown  # the explanation
    listed = CliRunner().invoke(cli, ["review", "list", "--flag", "protected_missing", "--out", out]).output
    assert f"{draft_id:>5}" in listed
    wrong = CliRunner().invoke(cli, ["review", "list", "--flag", "no_such_check", "--out", out])
    assert wrong.exit_code == 1 and "is not a QA check" in wrong.output


def test_a_huge_edit_is_refused_at_once(prepared):
    draft_id = release_id(prepared, "zh")
    text = service.get_text(prepared, draft_id)["text"]
    huge = (text * (165_000 // len(text) + 1))[:165_000]
    started = time.perf_counter()
    with pytest.raises(ReviewError, match="at most 50,000"):
        service.edit(prepared, draft_id, huge, author="mallory")
    assert time.perf_counter() - started < 5
    assert service.get_text(prepared, draft_id)["revision"] == 1


def test_an_edit_near_the_limit_is_aligned_within_a_bounded_time(prepared):
    draft_id = release_id(prepared, "zh")
    text = service.get_text(prepared, draft_id)["text"]
    long = text * (service.MAX_DRAFT_CHARS // len(text))  # the text repeated up to the limit
    started = time.perf_counter()
    with pytest.raises(DocumentError, match=f"^draft {draft_id}: unexpected text at the end"):
        service.edit(prepared, draft_id, long, author="mallory")  # aligned, then refused: not a release
    assert time.perf_counter() - started < 5


def test_the_diff_is_near_linear_on_the_attacks_shapes():
    base = "".join(f"# Heading {i}\n\nSentence {i} one. Sentence {i} two, with words.\n\n" for i in range(400))
    for new in (base * 10, base[::-1], "x" * 200_000, "\n" * 100_000):
        started = time.perf_counter()
        layouts.equal_blocks(base, new)
        assert time.perf_counter() - started < 5, len(new)


def review_page(settings: Settings, draft_id: int) -> str:
    from fastapi.testclient import TestClient

    from pressflow.drafts import reviewers
    from pressflow.review_app import create_app

    reviewers.add_user(settings.db_url, "lin", "a-long-password", ["zh"])
    with TestClient(create_app(settings)) as client:
        page = client.get("/signin")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/signin", data={"name": "lin", "password": "a-long-password", "csrf_token": token})
        return client.get(f"/drafts/{draft_id}").text


def test_a_page_view_never_aligns(prepared, monkeypatch):
    draft_id = release_id(prepared, "zh")
    write_clean_sentences(prepared, draft_id, lambda i: f"第{i}句话。")

    def no_alignment(*args, **kwargs):
        raise AssertionError("a page view aligned the draft")

    monkeypatch.setattr(layouts, "follow", no_alignment)
    monkeypatch.setattr(layouts, "resplit", no_alignment)
    html = review_page(prepared, draft_id)
    assert "第0句话。" in html and 'name="segment"' in html


def test_a_draft_edited_before_layouts_were_stored_is_aligned_once(prepared):
    draft_id = release_id(prepared, "zh")
    write_clean_sentences(prepared, draft_id, lambda i: f"第{i}句话。")
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, draft_id)
        expected = layouts.current_layout(draft)
        draft.meta = {k: v for k, v in draft.meta.items() if k != "layout"}  # as an older store has it
    assert "第0句话。" in review_page(prepared, draft_id)  # aligned through the revisions, then kept
    with db.session_scope(prepared.db_url) as session:
        draft = store.get_draft(session, draft_id)
        assert draft.meta["layout"]["revision"] == 2 and layouts.current_layout(draft) == expected


def test_only_the_changed_lines_are_split_again():
    """A machine sentence with a stray 。 elsewhere does not stop an edit from being learned:
    only the lines the reviewer changed go through the language's sentence rules."""
    segments = [{"key": "⟦0⟧ opens an office", "values": ["ANSO"], "text": "ANSO 开设。一个办公室"},
                {"key": "It will serve Asia.", "values": [], "text": "它将服务亚洲。"},
                {"key": "It opened today.", "values": [], "text": "它今天开放。"}]
    text = "# ANSO 开设。一个办公室\n\n它将服务亚洲。 它今天开放。\n"
    before = layouts.first_layout(text, segments)
    edited = "# ANSO 开设。一个办公室\n\n它将服务亚洲。它于今天正式开放。\n"  # space gone, sentence 3 rewritten
    after = layouts.align(before, edited, "zh")
    assert after.segments == ("ANSO 开设。一个办公室", "它将服务亚洲。", "它于今天正式开放。")
    assert layouts.changed_segments(segments, before, after) == {"It opened today.": "它于今天正式开放。"}
    # Splitting the whole text by Chinese rules would have found four sentences, not three.
    assert layouts.resplit(edited, "zh", 3) is None
