"""XLIFF 1.2 and TMX 1.4b round trips through translate-toolkit, on a real SQLite store."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from translate.storage import tmx as ttk_tmx
from translate.storage import xliff as ttk_xliff
from translate.storage.placeables import StringElem
from translate.storage.placeables.xliff import X
from typer.testing import CliRunner

from pressflow.core import db
from pressflow.drafts import store
from pressflow.memory.store import SqlMemory
from pressflow.publish import ledger
from pressflow.cli import app
from pressflow.core.config import Settings

from conftest import EVENTS, decoding_capped, add_release_row

SEGMENTS = [
    {"key": "⟦0⟧ opens an office in Tashkent.", "values": ["ANSO"], "source": "ANSO opens an office in Tashkent.",
     "target": "⟦0⟧ abre una oficina en Taskent.", "text": "ANSO abre una oficina en Taskent."},
    {"key": "It serves the Aral Sea region.", "values": [], "source": "It serves the Aral Sea region.",
     "target": "Sirve a la region.", "text": "Sirve a la region."},
]
SOURCE = "# ANSO opens an office in Tashkent.\n\nIt serves the Aral Sea region.\n"
TEXT = "# ANSO abre una oficina en Taskent.\n\nSirve a la region.\n"


def add_release(settings, fingerprint="f1", segments=SEGMENTS, text=TEXT, *, slug="office", lang="es",
                publish_at=None) -> int:
    with db.session_scope(settings.db_url) as session:
        add_release_row(session, slug=slug, fingerprint=fingerprint, source_text=SOURCE, publish_at=publish_at)
        draft = store.add_draft(session, slug=slug, lang=lang, channel="release", fingerprint=fingerprint,
                                source_text=SOURCE, text=text, meta={"segments": segments},
                                qa=[{"kind": "identical_to_source", "segment": 1}])
        session.flush()
        return draft.id


def uid(draft_id, index, text) -> str:
    """A unit's id: draft, sentence, and the mark of the sentence's text as exported."""
    from pressflow.exchange.xliff import text_mark

    return f"{draft_id}:{index}:{text_mark(text)}"


def cli(settings, *args):
    result = CliRunner().invoke(app, [*args, "--out", str(settings.out_dir)])
    return result.exit_code, result.output


def export(settings, path) -> ttk_xliff.xlifffile:
    code, output = cli(settings, "review", "export", "--release", "office", "--lang", "es", "-o", str(path))
    assert code == 0, output
    return ttk_xliff.xlifffile.parsefile(str(path))


def draft(settings, draft_id):
    with db.session_scope(settings.db_url) as session:
        d = store.get_draft(session, draft_id)
        return {"text": d.text, "revision": d.revision, "authors": [r.author for r in d.revisions]}


def test_export_is_xliff_12_with_placeholders_states_notes_and_stable_ids(settings, tmp_path):
    draft_id = add_release(settings)
    first = export(settings, tmp_path / "a.xlf")
    raw = (tmp_path / "a.xlf").read_text(encoding="utf-8")
    assert 'version="1.2"' in raw and "urn:oasis:names:tc:xliff:document:1.2" in raw
    units = first.getunits()
    assert [u.xmlelement.get("id") for u in units] == [uid(draft_id, 0, SEGMENTS[0]["text"]),
                                                       uid(draft_id, 1, SEGMENTS[1]["text"])]
    assert '<source><x id="0" equiv-text="ANSO"/> opens an office in Tashkent.</source>' in raw
    assert 'state="needs-review-translation"><x id="0" equiv-text="ANSO"/> abre una oficina' in raw
    assert "QA identical_to_source" in units[1].getnotes("developer")
    again = export(settings, tmp_path / "b.xlf")
    assert [u.xmlelement.get("id") for u in again.getunits()] == [u.xmlelement.get("id") for u in units]


@pytest.mark.skipif(not shutil.which("pofilter"), reason="translate-toolkit's pofilter is not on PATH")
def test_pofilter_checks_an_export(settings, tmp_path):
    add_release(settings)
    export(settings, tmp_path / "a.xlf")
    # translate-toolkit's own checker, every default check: it reads the file, and apart from the
    # machine sentences being marked for review (our state needs-review-translation, which it
    # reads as such) nothing in the export fails: placeholders, numbers, punctuation, spacing
    result = subprocess.run(["pofilter", "--progress=none", str(tmp_path / "a.xlf"), str(tmp_path / "checked.xlf")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "Error" not in result.stderr, result.stderr
    checked = ttk_xliff.xlifffile.parsefile(str(tmp_path / "checked.xlf"))
    failures = {note.split(":")[0] for u in checked.getunits() for note in u.getnotes("pofilter").split("\n")
                if ":" in note and not note.startswith((" ", "If", "Note", "Then", "specify", "fuzzy", "messages",
                                                         "extracted"))}
    assert len(checked.getunits()) == 2 and failures <= {"isfuzzy", "isreview"}, failures


def test_a_file_translate_toolkit_wrote_comes_back_as_revisions_and_memory(settings, tmp_path):
    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    unit = exported.getunits()[1]  # an agency's tool edits the second sentence's target
    unit.target = "Sirve a la región del mar de Aral."
    exported.savefile(str(tmp_path / "back.xlf"))

    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 0, output
    assert "imported 1 changed sentence(s) into 1 draft(s); 1 unchanged" in output
    now = draft(settings, draft_id)
    assert now["text"] == "# ANSO abre una oficina en Taskent.\n\nSirve a la región del mar de Aral.\n"
    assert now["authors"] == ["pressflow", "agency"]
    memory = SqlMemory(settings.db_url).lookup("en", "es", "human", [s["key"] for s in SEGMENTS])
    assert memory == {"It serves the Aral Sea region.": "Sirve a la región del mar de Aral."}

    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 0 and "imported 0 changed sentence(s) into 0 draft(s); 2 unchanged" in output
    assert draft(settings, draft_id)["revision"] == 2  # the same file again changes nothing

    exported_again = export(settings, tmp_path / "c.xlf")
    assert 'state="translated"' in (tmp_path / "c.xlf").read_text(encoding="utf-8")
    assert exported_again.getunits()[1].target == "Sirve a la región del mar de Aral."


def test_dropped_or_invented_placeholders_are_refused(settings, tmp_path):
    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    first, second = exported.getunits()
    first.rich_target = [StringElem(["La alianza abre una oficina."])]  # <x id="0"/> dropped
    second.rich_target = [StringElem(["Sirve ", X(id="3"), " a la región."])]  # <x id="3"/> invented
    exported.savefile(str(tmp_path / "bad.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "bad.xlf"))
    assert code == 1
    first, second = uid(draft_id, 0, SEGMENTS[0]["text"]), uid(draft_id, 1, SEGMENTS[1]["text"])
    assert f"office/es/release/1 (unit {first}) target: placeholder(s) 0 dropped: not imported" in output
    assert f"office/es/release/2 (unit {second}) target: placeholder(s) 3 invented or repeated: not imported" \
        in output
    assert draft(settings, draft_id)["revision"] == 1  # nothing saved, nothing published broken


def test_a_file_exported_before_the_record_changed_is_refused(settings, tmp_path):
    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    exported.getunits()[1].target = "Sirve a Asia Central."
    exported.savefile(str(tmp_path / "back.xlf"))
    changed = [SEGMENTS[0], {**SEGMENTS[1], "key": "It serves Central Asia.", "source": "It serves Central Asia."}]
    add_release(settings, fingerprint="f2", segments=changed)  # the record changed: prepared again
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"))
    assert code == 1
    assert output.count("\n") == 1 and "release office changed since this file was exported" in output
    assert draft(settings, draft_id)["revision"] == 1


def test_tmx_round_trip_and_a_fresh_store_prepares_from_it(argos_models, settings, tmp_path):
    from pressflow.prepare import pipeline
    from pressflow.records import load_records

    loaded = load_records([EVENTS / "2021-09-12-green-aral-sea-office.yaml"])
    events = [(p, e.model_copy(update={"languages": ["es"]})) for p, e in loaded.events]
    with decoding_capped():
        first = pipeline.prepare(events, settings)
    assert first.stats.translated > 0
    path = tmp_path / "memory.tmx"
    code, output = cli(settings, "memory", "export", "--format", "tmx", "-o", str(path), "--source", "en",
                       "--target", "es")
    assert code == 0, output
    read = ttk_tmx.tmxfile.parsefile(str(path))  # read back with translate-toolkit
    assert len(read.units) >= first.stats.translated
    assert 'version="1.4"' in path.read_text(encoding="utf-8")
    assert {u.gettarget() for u in read.units} and all(u.source for u in read.units)

    fresh = Settings(out_dir=tmp_path / "fresh")
    code, output = cli(fresh, "memory", "import", str(path), "--as", "human")
    assert code == 0 and "imported" in output, output
    with decoding_capped():
        second = pipeline.prepare(events, fresh)
    assert second.stats.translated == 0 and second.stats.from_memory == first.stats.unique


MARKS = [
    {"key": "Use ⟦3⟧ and ⟦0⟧ for ⟦0⟧ now.", "values": ["ANSO"], "source": "Use ⟦3⟧ and ⟦0⟧ for ANSO now.",
     "target": "Usa ⟦3⟧ y ⟦0⟧ para ⟦0⟧ ya.", "text": "Usa ⟦3⟧ y ⟦0⟧ para ANSO ya."},
    {"key": "It serves the Aral Sea region.", "values": [], "source": "It serves the Aral Sea region.",
     "target": "Sirve a la region.", "text": "Sirve a la region."},
]


def test_record_text_with_placeholder_marks_round_trips_as_text(settings, tmp_path):
    # "⟦3⟧" and the first "⟦0⟧" are the record's own text; only ANSO is a protected item
    draft_id = add_release(settings, segments=MARKS, text="# Usa ⟦3⟧ y ⟦0⟧ para ANSO ya.\n\nSirve a la region.\n")
    exported = export(settings, tmp_path / "a.xlf")
    raw = (tmp_path / "a.xlf").read_text(encoding="utf-8")
    assert '<source>Use ⟦3⟧ and ⟦0⟧ for <x id="0" equiv-text="ANSO"/> now.</source>' in raw
    assert 'Usa ⟦3⟧ y ⟦0⟧ para <x id="0" equiv-text="ANSO"/> ya.</target>' in raw
    exported.getunits()[0].rich_target = [StringElem(["Usa ⟦3⟧ y ⟦0⟧ con ", X(id="0"), " hoy."])]
    exported.savefile(str(tmp_path / "back.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 0, output
    assert draft(settings, draft_id)["text"] == "# Usa ⟦3⟧ y ⟦0⟧ con ANSO hoy.\n\nSirve a la region.\n"


def status_of(settings, draft_id):
    with db.session_scope(settings.db_url) as session:
        return store.get_draft(session, draft_id).status


def rewrite_ids(path, ids: dict[int, str]) -> None:
    """What a hand (or a tool) can do to a file: point unit N at another id."""
    file = ttk_xliff.xlifffile.parsefile(str(path))
    for n, uid in ids.items():
        file.getunits()[n].xmlelement.set("id", uid)
    file.savefile(str(path))


def test_an_import_never_crosses_release_or_language(settings, tmp_path):
    from pressflow.drafts import reviewers

    es = add_release(settings)
    zh = add_release(settings, lang="zh", text=TEXT)  # (its text does not matter here)
    other = add_release(settings, slug="forum", fingerprint="g1")
    reviewers.add_user(settings.db_url, "lucia", "a long password", ["es"])
    exported = export(settings, tmp_path / "a.xlf")
    for unit in exported.getunits():
        unit.target = unit.target.replace("Sirve a la region.", "Sirve a la región del Aral.").replace(
            "abre una oficina", "inaugura una oficina")
    exported.savefile(str(tmp_path / "back.xlf"))
    rewrite_ids(tmp_path / "back.xlf", {0: uid(zh, 1, SEGMENTS[1]["text"])})  # Spanish pointed at the zh draft
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "lucia")
    assert code == 1
    assert (f"office/es/release/1 (unit {uid(zh, 1, SEGMENTS[1]['text'])}) id: draft {zh} is release office in zh (release); this file is "
            f"office in es (release): not imported") in output
    assert "imported 1 changed sentence(s) into 1 draft(s)" in output  # the good unit went in
    assert draft(settings, zh)["revision"] == 1 and draft(settings, es)["revision"] == 2
    assert SqlMemory(settings.db_url).lookup("en", "zh", "human", [s["key"] for s in SEGMENTS]) == {}

    exported = export(settings, tmp_path / "b.xlf")  # release office's file pointed at release forum
    exported.getunits()[1].target = "Sirve a toda la región."
    exported.savefile(str(tmp_path / "b.xlf"))
    rewrite_ids(tmp_path / "b.xlf", {1: uid(other, 1, SEGMENTS[1]["text"])})
    code, output = cli(settings, "review", "import", str(tmp_path / "b.xlf"))
    assert code == 1 and f"id: draft {other} is release forum in es (release); this file is office in es" in output
    assert draft(settings, other)["revision"] == 1


def test_a_reviewer_account_bounds_the_languages_a_file_may_change(settings, tmp_path):
    from pressflow.drafts import reviewers

    es = add_release(settings)
    reviewers.add_user(settings.db_url, "wang", "a long password", ["zh"])
    exported = export(settings, tmp_path / "a.xlf")
    exported.getunits()[1].target = "Sirve a la región del Aral."
    exported.savefile(str(tmp_path / "back.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "wang")
    assert code == 1 and output.count("\n") == 1, output
    assert "the file is in es; reviewer wang may change zh only: nothing imported" in output
    assert draft(settings, es)["revision"] == 1
    # a file whose header was made to say zh, for a zh-only account, is still refused whole
    raw = (tmp_path / "back.xlf").read_text(encoding="utf-8")
    (tmp_path / "zh.xlf").write_text(raw.replace('target-language="es"', 'target-language="zh"'), encoding="utf-8")
    code, output = cli(settings, "review", "import", str(tmp_path / "zh.xlf"), "--reviewer", "wang")
    assert code == 1 and "is for es but its target-language is zh: nothing imported" in output
    assert draft(settings, es)["revision"] == 1


def test_two_units_with_one_id_are_both_refused(settings, tmp_path):
    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    exported.getunits()[0].rich_target = [StringElem([X(id="0"), " inaugura una oficina en Taskent."])]
    exported.getunits()[1].target = "Sirve a la región del Aral."
    exported.savefile(str(tmp_path / "back.xlf"))
    raw = (tmp_path / "back.xlf").read_text(encoding="utf-8")  # the second unit copied, with other text
    start = raw.rindex("<trans-unit", 0, raw.index(f'id="{uid(draft_id, 1, SEGMENTS[1]["text"])}"'))
    end = raw.index("</trans-unit>", start) + len("</trans-unit>")
    twin = raw[start:end].replace("Sirve a la región del Aral.", "Sirve a Asia Central.")
    (tmp_path / "back.xlf").write_text(raw[:end] + twin + raw[end:], encoding="utf-8")
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 1
    line = f"office/es/release/2 (unit {uid(draft_id, 1, SEGMENTS[1]['text'])}) id: 2 units of the file are sentence 2 of draft {draft_id}: " \
           "none of them imported"
    assert output.count(line) == 2, output
    assert "imported 1 changed sentence(s) into 1 draft(s)" in output  # the first unit went in
    assert draft(settings, draft_id)["text"] == "# ANSO inaugura una oficina en Taskent.\n\nSirve a la region.\n"


def drop_notes(path) -> None:
    """As CAT tools do: the returned file has none of the export's <note> elements."""
    file = ttk_xliff.xlifffile.parsefile(str(path))
    for unit in file.getunits():
        unit.removenotes()
    file.savefile(str(path))
    assert "<note" not in path.read_text(encoding="utf-8")


def test_a_reviewers_later_text_is_a_conflict_never_overwritten(settings, tmp_path):
    from pressflow.drafts import service

    draft_id = add_release(settings)
    exported = export(settings, tmp_path / "a.xlf")
    service.edit_segments(settings, draft_id, {1: "Sirve a la región del mar de Aral."}, author="maria")
    exported.getunits()[0].rich_target = [StringElem([X(id="0"), " inaugura una oficina en Taskent."])]
    exported.savefile(str(tmp_path / "stale.xlf"))  # sentence 2 comes back as exported
    drop_notes(tmp_path / "stale.xlf")
    exported.getunits()[1].target = "Sirve a la región."
    exported.savefile(str(tmp_path / "both.xlf"))  # sentence 2 changed by the agency too
    drop_notes(tmp_path / "both.xlf")

    code, output = cli(settings, "review", "import", str(tmp_path / "both.xlf"), "--reviewer", "agency")
    assert code == 1
    assert (f"conflict: {tmp_path / 'both.xlf'}: office/es/release/2 (unit {uid(draft_id, 1, SEGMENTS[1]['text'])}) "
            f"target: sentence 2 of draft {draft_id} was changed in pressflow after this file was exported "
            "(now revision 2): not imported, the text in pressflow kept") in output
    assert "imported 1 changed sentence(s) into 1 draft(s); 0 unchanged; 1 conflict(s)" in output
    assert draft(settings, draft_id)["text"] == \
        "# ANSO inaugura una oficina en Taskent.\n\nSirve a la región del mar de Aral.\n"

    code, output = cli(settings, "review", "import", str(tmp_path / "stale.xlf"), "--reviewer", "agency")
    assert code == 0 and "imported 0 changed sentence(s) into 0 draft(s); 2 unchanged" in output, output
    assert draft(settings, draft_id)["text"].endswith("Sirve a la región del mar de Aral.\n")


@pytest.mark.parametrize("decided", [store.APPROVED, store.PUBLISHED])
def test_an_import_never_approves(settings, tmp_path, decided):
    draft_id = add_release(settings)
    with db.session_scope(settings.db_url) as session:
        store.set_status(session, store.get_draft(session, draft_id), store.APPROVED, reviewer="maria")
        if decided == store.PUBLISHED:
            store.get_draft(session, draft_id).status = store.PUBLISHED
    exported = export(settings, tmp_path / "a.xlf")
    assert 'approved="yes"' in (tmp_path / "a.xlf").read_text(encoding="utf-8")
    exported.getunits()[1].target = "Sirve a la región del Aral."
    exported.savefile(str(tmp_path / "back.xlf"))
    code, output = cli(settings, "review", "import", str(tmp_path / "back.xlf"), "--reviewer", "agency")
    assert code == 0 and "imported 1 changed sentence(s) into 1 draft(s)" in output, output
    assert draft(settings, draft_id)["revision"] == 2
    assert status_of(settings, draft_id) == store.PENDING  # the agency's text waits for a reviewer


def tmx_file(path, units: list[tuple[str, str]], *, engine: str | None = None, author: str | None = None) -> None:
    """A TMX 1.4b file as another installation or an agency's tool writes it."""
    from xml.sax.saxutils import escape

    prop = f'<prop type="x-pressflow-origin">machine</prop><prop type="x-pressflow-engine">{engine}</prop>' \
        if engine else ""
    who = f' creationid="{author}"' if author else ""
    tus = "".join(f'<tu{who}>{prop}<tuv xml:lang="en"><seg>{escape(en)}</seg></tuv>'
                  f'<tuv xml:lang="es"><seg>{escape(es)}</seg></tuv></tu>' for en, es in units)
    path.write_text('<?xml version="1.0" encoding="utf-8"?>\n<tmx version="1.4"><header creationtool="x" '
                    'creationtoolversion="1" segtype="sentence" o-tmf="x" adminlang="en" srclang="en" '
                    f'datatype="plaintext"/><body>{tus}</body></tmx>', encoding="utf-8")


def test_machine_tmx_entries_are_suggestions_never_model_output(settings, tmp_path):
    model = "argos:en-es@1.9#0123456789"  # the installed model's id, as a TMX may name it
    tmx_file(tmp_path / "m.tmx", [("The forum opened in Lima today.", "El foro abrió hoy en Lima.")], engine=model)
    code, output = cli(settings, "memory", "import", str(tmp_path / "m.tmx"), "--as", "machine")
    assert code == 0 and "imported 1 entry as machine" in output, output
    memory = SqlMemory(settings.db_url)
    assert memory.lookup("en", "es", model, ["The forum opened in Lima today."]) == {}  # the stage's lookup
    found = memory.suggest("en", "es", ["The forum opened in Lima yesterday."])["The forum opened in Lima yesterday."]
    assert [(s.origin, s.who, s.text) for s in found] == [("machine", f"tmx:{model}", "El foro abrió hoy en Lima.")]


def test_a_human_tmx_never_silently_replaces_a_reviewers_entry(settings, tmp_path):
    SqlMemory(settings.db_url, author="maria").save("en", "es", "human", {
        "It serves the Aral Sea region.": "Sirve a la región del mar de Aral."})
    tmx_file(tmp_path / "h.tmx", [("The forum opened today.", "El foro abrió hoy."),
                                  ("It serves the Aral Sea region.", "Sirve a la región.")], author="lingua")
    code, output = cli(settings, "memory", "import", str(tmp_path / "h.tmx"), "--as", "human")
    assert code == 1
    assert (f"conflict: {tmp_path / 'h.tmx'}: <tu> 2 (es) seg: the memory has maria's translation of "
            "'It serves the Aral Sea region.', not the file's: kept (--replace-human to replace it)") in output
    assert "imported 1 entry as human; 1 reviewer's entry kept" in output
    memory = SqlMemory(settings.db_url)
    keys = ["It serves the Aral Sea region.", "The forum opened today."]
    assert memory.lookup("en", "es", "human", keys) == {
        "It serves the Aral Sea region.": "Sirve a la región del mar de Aral.", "The forum opened today.": "El foro abrió hoy."}
    code, output = cli(settings, "memory", "import", str(tmp_path / "h.tmx"), "--as", "human", "--replace-human")
    assert code == 0 and "imported 2 entries as human" in output, output
    assert memory.lookup("en", "es", "human", keys)["It serves the Aral Sea region."] == "Sirve a la región."


def test_an_exports_suggestions_never_carry_another_releases_unreleased_text(settings, tmp_path):
    now = dt.datetime.now(dt.timezone.utc)
    add_release(settings, slug="old", fingerprint="o1")  # released in es
    add_release(settings, slug="secret", fingerprint="s1", publish_at=now + dt.timedelta(days=3))  # under embargo
    with db.session_scope(settings.db_url) as session:
        ledger.save_publications(session, [{"release_slug": "old", "lang": "es", "content_hash": "h",
                                           "published_at": now, "updated_at": now, "first": True}])
    add_release(settings)  # release office, the one exported
    for learned, source, text in [
            ({"release": "secret"}, "It serves the whole Aral Sea region.", "Embargo: sirve a toda la región."),
            ({"release": "draft-only"}, "It serves the Aral Sea region well.", "Sin aprobar: sirve bien."),
            ({}, "It serves the Aral Sea regions.", "Origen desconocido."),
            ({"release": "old"}, "It serves the Aral Sea basin region.", "Sirve a la cuenca del Aral."),
            ({"release": "office"}, "It serves all the Aral Sea region.", "Sirve a toda la región del Aral."),
            ({"file": "agency.tmx"}, "It serves the Aral Sea's region.", "Sirve a la región del mar."),
    ]:
        SqlMemory(settings.db_url, author="maria", **learned).save("en", "es", "human", {source: text})
    notes = export(settings, tmp_path / "a.xlf").getunits()[1].getnotes("developer")
    assert "Sirve a la cuenca del Aral." in notes and "Sirve a toda la región del Aral." in notes
    assert "Sirve a la región del mar." in notes
    assert "Embargo" not in notes and "Sin aprobar" not in notes and "desconocido" not in notes
