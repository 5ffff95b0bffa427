"""An XLIFF file that declares a DTD or entities is refused in one line naming the file, and its
entities are never expanded (not internal ones, not a billion laughs, not an external file)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from typer.testing import CliRunner

from conftest import add_release_row
from pressflow.core import db
from pressflow.drafts import store
from pressflow.cli import app

SEGMENTS = [{"key": "Office", "values": [], "source": "Office", "target": "Oficina", "text": "Oficina"},
            {"key": "It serves the Aral Sea region.", "values": [], "source": "It serves the Aral Sea region.",
             "target": "Sirve a la region.", "text": "Sirve a la region."}]


SOURCE = "# Office\n\nIt serves the Aral Sea region.\n"


def add_draft(settings) -> int:
    with db.session_scope(settings.db_url) as session:
        add_release_row(session, slug="office", fingerprint="f1", source_text=SOURCE)
        draft = store.add_draft(session, slug="office", lang="es", channel="release", fingerprint="f1",
                                source_text=SOURCE, text="# Oficina\n\nSirve a la region.\n",
                                meta={"segments": SEGMENTS}, qa=[])
        session.flush()
        return draft.id


def xliff(doctype: str, target: str, draft_id: int) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
{doctype}
<xliff version="1.2" xmlns="urn:oasis:names:tc:xliff:document:1.2">
<file original="office/es/release" source-language="en" target-language="es" datatype="plaintext"><body>
<trans-unit id="{draft_id}:1" resname="office/es/release/2">
<source>It serves the Aral Sea region.</source><target>{target}</target>
<note from="pressflow">draft {draft_id} revision 1</note>
</trans-unit></body></file></xliff>
"""


SECRET = "not-for-the-translation-memory"
LAUGHS = "<!DOCTYPE xliff [<!ENTITY a0 \"lol\">" + "".join(
    f"<!ENTITY a{i} \"{f'&a{i - 1};' * 10}\">" for i in range(1, 10)) + "]>"


@pytest.mark.parametrize("doctype, target", [
    ('<!DOCTYPE xliff [<!ENTITY region "región del mar de Aral">]>', "Sirve a la &region;."),
    (LAUGHS, "&a9;"),
    ('<!DOCTYPE xliff [<!ENTITY secret SYSTEM "file://{secret}">]>', "&secret;"),
    ('<!DOCTYPE xliff SYSTEM "http://127.0.0.1:9/xliff.dtd">', "Sirve a la región."),
    ("<!DOCTYPE xliff>", "Sirve a la región."),
], ids=["internal-entity", "billion-laughs", "external-entity", "external-dtd", "bare-doctype"])
def test_an_xliff_file_with_a_dtd_is_refused_in_one_line(settings, tmp_path, doctype, target):
    draft_id = add_draft(settings)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    path = tmp_path / "back.xlf"
    path.write_text(xliff(doctype.format(secret=secret), target, draft_id), encoding="utf-8")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["review", "import", str(path), "--out", str(settings.out_dir)])
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line == (f"error: {path}: declares a DTD (<!DOCTYPE ...>); XLIFF files with a DTD or entities are "
                    "refused and never expanded: remove the DOCTYPE and export or save the file again"), line
    with db.session_scope(settings.db_url) as session:
        assert store.get_draft(session, draft_id).revision == 1
    assert SECRET not in result.output


def test_the_same_file_without_its_doctype_imports(settings, tmp_path):
    draft_id = add_draft(settings)
    path = tmp_path / "back.xlf"
    path.write_text(xliff("", "Sirve a la región del mar de Aral.", draft_id), encoding="utf-8")
    result = CliRunner().invoke(app, ["review", "import", str(path), "--out", str(settings.out_dir)])
    assert result.exit_code == 0, result.output
    assert "imported 1 changed sentence(s) into 1 draft(s)" in result.output


def test_an_unreadable_xliff_file_is_one_line_naming_it(settings, tmp_path):
    path = tmp_path / "broken.xlf"
    path.write_text("<xliff version='1.2'><file>", encoding="utf-8")
    result = CliRunner().invoke(app, ["review", "import", str(path), "--out", str(settings.out_dir)])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: {path}: not a readable XLIFF file"), line
