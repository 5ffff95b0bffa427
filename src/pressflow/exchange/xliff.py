"""XLIFF 1.2 out to a translation agency or CAT tool, and back in as reviewers' revisions.

Written and read with translate-toolkit (`translate.storage.xliff`), the library the CAT-tool
world and Weblate use. One `<file>` per draft (its `original` names release, language and
channel), one `<trans-unit>` per sentence, id `DRAFT:SENTENCE`, stable across exports of the same
draft. Protected items (names, URLs, numbers with units...) are `<x id="N" equiv-text="..."/>`
placeholders, so CAT tools keep them as tags; a unit coming back with one dropped or invented
is refused (never saved, never published). Each unit's target `state` says where the sentence
stands: `needs-review-translation` (machine text), `translated` (a reviewer's edit), `final`
(the draft is approved or published). Notes carry the sentence's QA flags and memory
suggestions, and the draft revision exported (an import refuses drafts edited since).

An import saves each changed draft through `drafts.service.edit_segments`, the edit the CLI
and the review page use: a new revision by the importing reviewer, the changed sentences into
the memory as human entries, QA recomputed. Unchanged units change nothing, so importing the
same file twice changes nothing the second time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from translate.storage import xliff as ttk_xliff
from translate.storage.placeables import StringElem
from translate.storage.placeables.xliff import X

from ..core import db
from ..core.config import Settings
from ..core.errors import ExchangeError, PressflowError
from ..core.files import write_atomic
from ..drafts import service, store
from ..memory import fuzzy
from ..translate import checks

NAMESPACE = "urn:oasis:names:tc:xliff:document:1.2"
REVISION_NOTE = "pressflow"  # <note from="pressflow">draft 12 revision 3</note>
_PLACEHOLDER = re.compile(r"⟦\s*(\d+)\s*⟧")
_REVISION = re.compile(r"draft (\d+) revision (\d+)")


class Xliff12Unit(ttk_xliff.xliffunit):
    namespace = NAMESPACE


class Xliff12File(ttk_xliff.xlifffile):
    """translate-toolkit's XLIFF store, writing version 1.2 (its default skeleton says 1.1)."""

    UnitClass = Xliff12Unit
    namespace = NAMESPACE
    XMLskeleton = (f'<?xml version="1.0" ?>\n<xliff version="1.2" xmlns="{NAMESPACE}">\n'
                   "<file original='NoName' source-language='en' datatype='plaintext'><body></body></file>\n</xliff>")

    def drop_empty_files(self) -> None:
        """translate-toolkit needs a <file> to start from; one left without units is dropped."""
        for node in list(self.document.getroot().iterchildren(f"{{{NAMESPACE}}}file")):
            if next(node.iter(f"{{{NAMESPACE}}}trans-unit"), None) is None:
                node.getparent().remove(node)


def _rich(key: str, values: tuple[str, ...]) -> list[StringElem]:
    """A sentence with ⟦N⟧ placeholders as translate-toolkit rich text with <x id="N"/>."""
    parts: list = []
    position = 0
    for match in _PLACEHOLDER.finditer(key):
        if match.start() > position:
            parts.append(key[position:match.start()])
        parts.append(X(id=match.group(1)))
        position = match.end()
    if position < len(key):
        parts.append(key[position:])
    return [StringElem(parts)]


def _plain(rich: list[StringElem]) -> str:
    """Rich text back to a sentence with ⟦N⟧ placeholders."""
    out: list[str] = []

    def walk(element) -> None:
        if isinstance(element, str):
            out.append(element)
        elif isinstance(element, X) or type(element).__name__ in ("X", "Ph", "Bx", "Ex", "G"):
            if element.id is not None:
                out.append(f"⟦{element.id}⟧")
            for sub in getattr(element, "sub", []) if not isinstance(element, X) else []:
                walk(sub)
        else:
            for sub in getattr(element, "sub", []):
                walk(sub)

    for element in rich:
        walk(element)
    return "".join(out)


def _state(draft: store.Draft, sentence: service.Sentence, machine_text: str) -> int:
    if draft.status in (store.APPROVED, store.PUBLISHED):
        return ttk_xliff.xliffunit.S_FINAL
    if sentence.text.strip() != machine_text.strip():
        return ttk_xliff.xliffunit.S_TRANSLATED
    return ttk_xliff.xliffunit.S_NEEDS_REVIEW


def _with_placeholders(text: str, values: tuple[str, ...]) -> str:
    for index, value in enumerate(values):
        text = text.replace(value, f"⟦{index}⟧", 1)
    return text


def export(settings: Settings, path: Path, *, slug: str, lang: str, channel: str | None = None) -> int:
    """Write the current drafts of a release in a language (one channel, or all) as XLIFF 1.2;
    returns how many units were written."""
    file = Xliff12File(sourcelanguage=settings.source_language, targetlanguage=lang)
    units = 0
    with db.session_scope(settings.db_url) as session:
        drafts = [d for d in store.list_drafts(session, slug=slug, lang=lang, channel=channel)
                  if d.status != store.SUPERSEDED and d.meta.get("segments")]
        if not drafts:
            raise ExchangeError(f"release {slug} has no drafts in {lang}"
                                + (f" for channel {channel}" if channel else "") + "; see `pressflow review list`")
        for draft in drafts:
            units += _export_draft(settings, session, file, draft)
    file.drop_empty_files()
    write_atomic(path, bytes(file))
    _verify(path, units)
    return units


def _export_draft(settings: Settings, session, file: Xliff12File, draft: store.Draft) -> int:
    sentences = service.current_segments(settings, draft.id)
    if not sentences:
        return 0  # edited past its sentences: nothing a CAT tool could align
    segments = draft.meta["segments"]
    suggestions = fuzzy.draft_suggestions(session, draft, settings.source_language)
    original = f"{draft.release_slug}/{draft.lang}/{draft.channel}"
    for sentence in sentences:
        unit = file.addsourceunit(sentence.source, filename=original, createifmissing=True)
        unit.setid(f"{draft.id}:{sentence.index}")
        unit.xmlelement.set("resname", f"{original}/{sentence.index + 1}")
        unit.rich_source = _rich(sentence.key, sentence.values)
        unit.rich_target = _rich(_with_placeholders(sentence.text, sentence.values), sentence.values)
        for x in unit.xmlelement.iter():  # what each tag stands for, for the translator
            if not isinstance(x.tag, str) or etree.QName(x).localname != "x" or not (x.get("id") or "").isdigit():
                continue
            index = int(x.get("id"))
            if index < len(sentence.values):
                x.set("equiv-text", sentence.values[index])
        unit.set_state_n(_state(draft, sentence, segments[sentence.index].get("text", "")))
        for flag in sentence.flags:
            unit.addnote(f"QA {flag['kind']}: {checks.describe(flag)}", origin="developer")
        for suggestion in suggestions.get(sentence.index, []):
            unit.addnote(suggestion.line(), origin="developer")
        unit.addnote(f"draft {draft.id} revision {draft.revision}", origin=REVISION_NOTE)
    return len(sentences)


def _verify(path: Path, units: int) -> None:
    """Read the file back with translate-toolkit: what we hand an agency, its tools can read."""
    read = Xliff12File.parsefile(str(path))
    if len([u for u in read.getunits() if not u.isheader()]) != units:
        raise ExchangeError(f"{path}: translate-toolkit reads back a different number of units than written")


# --- import ------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import did: drafts saved, sentences changed, and units refused (with why)."""

    saved: dict[int, int] = field(default_factory=dict)  # draft id -> new revision
    sentences: int = 0
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass
class _Unit:
    draft_id: int
    index: int
    source: str  # with ⟦N⟧
    target: str  # with ⟦N⟧
    revision: int | None
    where: str


def _units(path: Path) -> list[_Unit]:
    try:
        file = ttk_xliff.xlifffile.parsefile(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is one line naming the file
        raise ExchangeError(f"{path}: not a readable XLIFF file ({type(exc).__name__}: {exc})") from exc
    units = []
    for unit in file.getunits():
        if unit.isheader():
            continue
        uid = unit.xmlelement.get("id") or ""
        match = re.fullmatch(r"(\d+):(\d+)", uid)
        if not match:
            raise ExchangeError(f"{path}: trans-unit {uid!r} was not exported by pressflow (ids are DRAFT:SENTENCE)")
        note = _REVISION.search(unit.getnotes(REVISION_NOTE) or "")
        units.append(_Unit(int(match.group(1)), int(match.group(2)), _plain(unit.rich_source),
                           _plain(unit.rich_target) if unit.target is not None else "",
                           int(note.group(2)) if note else None,
                           unit.xmlelement.get("resname") or uid))
    return units


def import_file(settings: Settings, path: Path, *, reviewer: str) -> ImportReport:
    """Take a translated XLIFF file back: changed units become revisions by `reviewer`.

    Raises ExchangeError, saving nothing, when the file is stale: a release's record changed
    since the export (its source sentences differ, or its drafts were prepared again).
    """
    units = _units(path)
    by_draft: dict[int, list[_Unit]] = {}
    for unit in units:
        by_draft.setdefault(unit.draft_id, []).append(unit)
    plans = {draft_id: _plan(settings, path, draft_id, draft_units) for draft_id, draft_units in by_draft.items()}
    report = ImportReport()
    for draft_id, (changes, refused, unchanged, revision) in plans.items():
        report.refused += refused
        report.unchanged += unchanged
        if changes:
            edit = service.edit_segments(settings, draft_id, changes, author=reviewer, expected_revision=revision,
                                        note=f"XLIFF import from {path.name}")
            if edit.revision is not None:
                report.saved[draft_id] = edit.revision
                report.sentences += len(changes)
    return report


def _plan(settings: Settings, path: Path, draft_id: int, units: list[_Unit]):
    """(changes {index: sentence}, refused lines, unchanged count, expected revision) for a draft;
    raises ExchangeError when the file is stale for it."""
    with db.session_scope(settings.db_url) as session:
        try:
            draft = store.get_draft(session, draft_id)
        except PressflowError as exc:
            raise ExchangeError(f"{path}: {exc}") from exc
        slug, status, revision = draft.release_slug, draft.status, draft.revision
    if status == store.SUPERSEDED:
        raise ExchangeError(f"{path}: release {slug} changed since this file was exported: its record was "
                            f"prepared again (draft {draft_id} is superseded); export it again")
    current = {s.index: s for s in service.current_segments(settings, draft_id)}
    changes, refused, unchanged = {}, [], 0
    for unit in units:
        sentence = current.get(unit.index)
        if sentence is None or unit.source.strip() != sentence.key.strip():
            now = sentence.key if sentence else "(no such sentence)"
            raise ExchangeError(f"{path}: release {slug} changed since this file was exported: sentence "
                                f"{unit.index + 1} of draft {draft_id} was {unit.source!r}, is now {now!r}; export it again")
        target = unit.target.strip()
        if not target or target == _with_placeholders(sentence.text, sentence.values).strip():
            unchanged += 1
            continue
        wanted, got = _ids(unit.source), _ids(target)
        if wanted != got:
            refused.append(_placeholder_problem(unit, wanted, got))
            continue
        if unit.revision is not None and unit.revision != revision:
            refused.append(f"{unit.where}: draft {draft_id} was edited in pressflow since this file was exported "
                           f"(revision {unit.revision}, now {revision}): not imported; export it again")
            continue
        changes[unit.index] = _fill(target, sentence.values)
    return changes, refused, unchanged, revision


def _ids(text: str) -> list[int]:
    return sorted(int(i) for i in _PLACEHOLDER.findall(text))


def _placeholder_problem(unit: _Unit, wanted: list[int], got: list[int]) -> str:
    dropped = sorted(set(wanted) - set(got)) or [i for i in wanted if wanted.count(i) > got.count(i)]
    invented = sorted(set(got) - set(wanted)) or [i for i in got if got.count(i) > wanted.count(i)]
    said = []
    if dropped:
        said.append(f"placeholder(s) {', '.join(map(str, sorted(set(dropped))))} dropped")
    if invented:
        said.append(f"placeholder(s) {', '.join(map(str, sorted(set(invented))))} invented or repeated")
    return f"{unit.where}: {' and '.join(said)}: not imported (the protected items must stay as they are)"


def _fill(target: str, values: tuple[str, ...]) -> str:
    return _PLACEHOLDER.sub(lambda m: values[int(m.group(1))], target)
