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
from pressflow.cli import app
from pressflow.core.config import Settings

from conftest import EVENTS, decoding_capped

SEGMENTS = [
    {"key": "⟦0⟧ opens an office in Tashkent.", "values": ["ANSO"], "source": "ANSO opens an office in Tashkent.",
     "target": "⟦0⟧ abre una oficina en Taskent.", "text": "ANSO abre una oficina en Taskent."},
    {"key": "It serves the Aral Sea region.", "values": [], "source": "It serves the Aral Sea region.",
     "target": "Sirve a la region.", "text": "Sirve a la region."},
]
SOURCE = "# ANSO opens an office in Tashkent.\n\nIt serves the Aral Sea region.\n"
TEXT = "# ANSO abre una oficina en Taskent.\n\nSirve a la region.\n"


def add_release(settings, fingerprint="f1", segments=SEGMENTS, text=TEXT) -> int:
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug="office", title="Office", date=dt.date(2021, 9, 12), publish_at=None,
                             fingerprint=fingerprint, record={}, source_file=None)
        draft = store.add_draft(session, slug="office", lang="es", channel="release", fingerprint=fingerprint,
                                source_text=SOURCE, text=text, meta={"segments": segments},
                                qa=[{"kind": "identical_to_source", "segment": 1}])
        session.flush()
        return draft.id


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
    assert [u.xmlelement.get("id") for u in units] == [f"{draft_id}:0", f"{draft_id}:1"]
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
    assert "office/es/release/1: placeholder(s) 0 dropped: not imported" in output
    assert "office/es/release/2: placeholder(s) 3 invented or repeated: not imported" in output
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
