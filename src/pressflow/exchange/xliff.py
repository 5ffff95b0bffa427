"""XLIFF 1.2 out to a translation agency or CAT tool, and back in as reviewers' revisions.

Written and read with translate-toolkit (`translate.storage.xliff`), the library the CAT-tool
world and Weblate use. One `<file>` per draft (its `original` names release, language and
channel), one `<trans-unit>` per sentence, id `DRAFT:SENTENCE:MARK`, MARK being the start of the
SHA-256 of the sentence's text as exported: CAT tools keep ids and drop notes, so the id is what
ties a returned unit to the text it was exported with. Protected items (names, URLs, numbers
with units...) are `<x id="N" equiv-text="..."/>` placeholders, so CAT tools keep them as tags;
a unit coming back with one dropped or invented is refused (never saved, never published).
Marks the record's own text holds ("see ⟦3⟧") are text in the file, never tags: only the
stage's placeholders become `<x/>`. Each unit's target `state` says where the sentence stands:
`needs-review-translation` (machine text), `translated` (a reviewer's edit), `signed-off` (the
draft is approved or published). Notes carry the sentence's QA flags, memory suggestions (only
from the same release, releases out in the language, or imported files) and the revision
exported.

An import trusts the file no further than pressflow can check it. The whole file is refused,
nothing saved, when it is not one release in one language, when that release has no drafts in
that language, when the importing reviewer's account may not change that language, or when the
release's record changed since the export. Otherwise each unit is taken or refused alone (one
line naming the unit and the field): an id that is not ours, or names a draft of another
release, language or channel, or appears twice; placeholders dropped or invented; a sentence a
reviewer changed in pressflow since the export (a conflict: their text is kept). The rest is
saved through `drafts.service.edit_segments`, the edit the CLI and the review page use: a new
revision by the importing reviewer, awaiting review (an import never approves), QA recomputed.
A unit as it was exported, or as it is now, changes nothing, so importing the same file twice
changes nothing the second time.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

from lxml import etree
from sqlalchemy.engine import Row
from translate.storage import xliff as ttk_xliff
from translate.storage.placeables import StringElem
from translate.storage.placeables.xliff import X

from ..core import db, text_rules
from ..core.config import Settings
from ..core.errors import ExchangeError, PressflowError
from ..core.db import utcnow
from ..core.files import write_atomic
from ..drafts import reviewers, service, store
from ..memory import fuzzy
from ..publish import ledger
from ..translate import checks
from ..translate.marks import KEEP_CLOSE, KEEP_OPEN

NAMESPACE = "urn:oasis:names:tc:xliff:document:1.2"
REVISION_NOTE = "pressflow"  # <note from="pressflow">draft 12 revision 3</note>
_PLACEHOLDER = re.compile(r"⟦\s*(\d+)\s*⟧")
_REVISION = re.compile(r"draft (\d+) revision (\d+)")
MARK_LENGTH = 12  # hex digits of a sentence text's SHA-256 in a unit id
_UNIT_ID = re.compile(rf"(\d+):(\d+)(?::([0-9a-f]{{{MARK_LENGTH}}}))?")


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


Part = Union[str, int]  # literal text, or the index of a protected item


def _key_parts(key: str, values: tuple[str, ...], source: str) -> list[Part]:
    """A protected sentence as literal text and placeholders.

    The stage numbers a sentence's protected items ⟦0⟧, ⟦1⟧, ... in order, one each; record text
    may hold the same marks literally ("see ⟦3⟧"), which are text, never placeholders. Which
    marks are the stage's is decided against the sentence itself (`source`): the literal ones
    stand there as they are, the stage's stand for its protected items.
    """
    marks = list(_PLACEHOLDER.finditer(key))
    if not values or not marks:
        return [key] if key else []
    choices = [[j for j, m in enumerate(marks) if int(m.group(1)) == i] for i in range(len(values))]
    fallback = None
    for chosen in itertools.islice(itertools.product(*choices), 1000):
        if any(a >= b for a, b in zip(chosen, chosen[1:])):
            continue
        real = {j: int(marks[j].group(1)) for j in chosen}
        fallback = fallback or real
        if _fits(key, marks, real, source):
            break
    else:
        real = fallback or {}
    parts: list[Part] = []
    position = 0
    for j, match in enumerate(marks):
        if j in real:
            parts += [key[position:match.start()], real[j]]
            position = match.end()
    parts.append(key[position:])
    return _merged(parts)


def _fits(key: str, marks: list[re.Match], real: dict[int, int], source: str) -> bool:
    """Whether `source` reads as `key` with these marks standing for protected items."""
    pattern, position = [], 0
    for j, match in enumerate(marks):
        if j in real:
            pattern += [_literal(key[position:match.start()]), "(.*?)"]
            position = match.end()
    pattern.append(_literal(key[position:]))
    return re.fullmatch("".join(pattern), source.strip(), re.S) is not None


def _literal(text: str) -> str:
    text = text.replace(KEEP_OPEN, "").replace(KEEP_CLOSE, "")
    return r"\s*".join(re.escape(word) for word in re.split(r"\s+", text))


def _text_parts(text: str, values: tuple[str, ...]) -> list[Part]:
    """A sentence's current text with its protected items as placeholders (each item's first
    occurrence, as the memory learns it); anything else, marks included, stays literal text."""
    parts: list[Part] = [text]
    for index, value in enumerate(values):
        if not value:
            continue
        for at, part in enumerate(parts):
            if isinstance(part, str) and value in part:
                before, after = part.split(value, 1)
                parts[at:at + 1] = [before, index, after]
                break
    return _merged(parts)


def _merged(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        elif part != "":
            out.append(part)
    return out


def _rich(parts: list[Part]) -> list[StringElem]:
    """Literal text and placeholders as translate-toolkit rich text with <x id="N"/>."""
    return [StringElem([X(id=str(part)) if isinstance(part, int) else part for part in parts])]


def _parts(rich: list[StringElem]) -> list[Part]:
    """Rich text back to literal text and placeholders; a tag whose id is not a placeholder's
    number is kept as -1, which no protected item has (refused as invented)."""
    out: list[Part] = []

    def walk(element) -> None:
        if isinstance(element, str):
            out.append(element)
        elif isinstance(element, X) or type(element).__name__ in ("X", "Ph", "Bx", "Ex", "G"):
            if element.id is not None:
                out.append(int(element.id) if str(element.id).isdigit() else -1)
            for sub in getattr(element, "sub", []) if not isinstance(element, X) else []:
                walk(sub)
        else:
            for sub in getattr(element, "sub", []):
                walk(sub)

    for element in rich:
        walk(element)
    return _merged(out)


def _canonical(parts: list[Part]) -> str:
    """Parts as one comparable string: literal braces escaped, placeholders as {N}, spaces folded."""
    text = "".join(f"{{{part}}}" if isinstance(part, int) else part.replace("\\", "\\\\").replace("{", "\\{")
                   for part in parts)
    return " ".join(text.split())


def _ids(parts: list[Part]) -> list[int]:
    return sorted(part for part in parts if isinstance(part, int))


def _fill(parts: list[Part], values: tuple[str, ...]) -> str:
    return "".join(values[part] if isinstance(part, int) else part for part in parts)


def text_mark(text: str) -> str:
    """What a unit id carries of the sentence's text as exported: the import compares it with the
    text now, so a reviewer's later edit is never overwritten (CAT tools keep ids, drop notes)."""
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:MARK_LENGTH]


def _state(draft: store.Draft, sentence: service.Sentence, machine_text: str) -> int:
    if draft.status in (store.APPROVED, store.PUBLISHED):
        return ttk_xliff.xliffunit.S_FINAL
    if sentence.text.strip() != machine_text.strip():
        return ttk_xliff.xliffunit.S_TRANSLATED
    return ttk_xliff.xliffunit.S_NEEDS_REVIEW


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


def exportable(session, draft: store.Draft) -> Callable[[Row], bool]:
    """Whether a memory entry may be shown outside with this draft (see `memory.fuzzy.draft_suggestions`)."""
    own, now, released = f"release {draft.release_slug}", utcnow(), {}

    def allowed(entry: Row) -> bool:
        learned = entry.learned_from or ""
        if learned == own or learned.startswith("file "):
            return True
        if not learned.startswith("release "):
            return False  # not known where it comes from
        slug = learned.removeprefix("release ")
        if slug not in released:  # published in this language, and past its embargo now
            released[slug] = ledger.is_published(session, slug, draft.lang) and store.past_embargo(session, slug, now)
        return released[slug]

    return allowed


def _export_draft(settings: Settings, session, file: Xliff12File, draft: store.Draft) -> int:
    sentences = service.current_segments(settings, draft.id)
    if not sentences:
        return 0  # edited past its sentences: nothing a CAT tool could align
    segments = draft.meta["segments"]
    suggestions = fuzzy.draft_suggestions(session, draft, settings.source_language,
                                           allowed=exportable(session, draft))
    original = f"{draft.release_slug}/{draft.lang}/{draft.channel}"
    for sentence in sentences:
        unit = file.addsourceunit(sentence.source, filename=original, createifmissing=True)
        unit.setid(f"{draft.id}:{sentence.index}:{text_mark(sentence.text)}")
        unit.xmlelement.set("resname", f"{original}/{sentence.index + 1}")
        unit.rich_source = _rich(_key_parts(sentence.key, sentence.values, sentence.source))
        unit.rich_target = _rich(_text_parts(sentence.text, sentence.values))
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
    conflicts: list[str] = field(default_factory=list)  # changed in pressflow since the export: kept


@dataclass
class _Unit:
    uid: str
    draft_id: int | None  # None: not an id pressflow wrote
    index: int
    source: list[Part]
    target: list[Part]
    revision: int | None  # from the revision note (files exported before the marks)
    mark: str | None  # text_mark of the sentence as exported
    where: str  # RELEASE/LANGUAGE/CHANNEL/SENTENCE and the unit id, for messages
    channel: str  # of its <file>


def _without_dtd(path: Path, data: bytes) -> None:
    """Refuse a file that declares a DTD (internal or external), and with it any entity.

    XLIFF needs none, and translate-toolkit cannot take entity references (it fails on them
    naming no file); expanding them is how a billion laughs or an external entity reads what it
    should not. defusedxml stops at the `<!DOCTYPE` itself, before any declaration in it is
    read, so nothing is ever expanded or fetched; the file is refused whole, in one line.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise ExchangeError(f"{path}: declares a DTD (<!DOCTYPE ...>); XLIFF files with a DTD or entities are "
                            "refused and never expanded: remove the DOCTYPE and export or save the file again") from None
    except ParseError as exc:
        raise ExchangeError(f"{path}: not a readable XLIFF file (not well-formed XML: {exc})") from None


@dataclass(frozen=True)
class _Header:
    """What the file's <file> elements say it is for: one release in one language."""

    release: str
    lang: str


_ORIGINAL = re.compile(r"([^/]+)/([^/]+)/([^/]+)")


def _units(path: Path) -> tuple[_Header, list[_Unit]]:
    """The file's release and language, and its units; raises ExchangeError, nothing imported,
    when the file is unreadable or its <file> elements name other than one release in one language."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    _without_dtd(path, data)
    try:
        file = ttk_xliff.xlifffile.parsestring(data)  # the bytes just checked, not the file again
    except Exception as exc:  # noqa: BLE001 - any parse failure is one line naming the file
        raise ExchangeError(f"{path}: not a readable XLIFF file ({type(exc).__name__}: {exc})") from exc
    headers: set[_Header] = set()
    units = []
    for unit in file.getunits():
        if unit.isheader():
            continue
        node = next((a for a in unit.xmlelement.iterancestors() if etree.QName(a).localname == "file"), None)
        original = node.get("original") if node is not None else None
        match = _ORIGINAL.fullmatch(original or "")
        if not match:
            raise ExchangeError(f"{path}: <file original={original!r}> is not RELEASE/LANGUAGE/CHANNEL as "
                                "`pressflow review export` writes it: nothing imported")
        slug, lang, channel = match.groups()
        declared = (node.get("target-language") or lang).split("-")[0].lower()
        if declared != lang:
            raise ExchangeError(f"{path}: <file original={original!r}> is for {lang} but its target-language "
                                f"is {node.get('target-language')}: nothing imported")
        headers.add(_Header(slug, lang))
        uid = unit.xmlelement.get("id") or ""
        ids = _UNIT_ID.fullmatch(uid)
        note = _REVISION.search(unit.getnotes(REVISION_NOTE) or "")
        units.append(_Unit(uid, int(ids.group(1)) if ids else None, int(ids.group(2)) if ids else 0,
                           _parts(unit.rich_source), _parts(unit.rich_target) if unit.target is not None else [],
                           int(note.group(2)) if note else None, ids.group(3) if ids else None,
                           f"{unit.xmlelement.get('resname') or original} (unit {uid})", channel))
    if len(headers) > 1:
        named = ", ".join(sorted(f"{h.release} in {h.lang}" for h in headers))
        raise ExchangeError(f"{path}: the file mixes releases or languages ({named}); pressflow exports one "
                            "release in one language a file: nothing imported")
    if not headers:
        raise ExchangeError(f"{path}: the file has no translation units: nothing imported")
    return headers.pop(), units


def _check_file(settings: Settings, path: Path, header: _Header, reviewer: str) -> None:
    """Refuse the whole file when its release has no drafts in its language, or when the
    importing reviewer's account may not change that language."""
    with db.session_scope(settings.db_url) as session:
        if not store.draft_ids(session, slug=header.release, lang=header.lang):
            raise ExchangeError(f"{path}: release {header.release} has no drafts in {header.lang}: nothing imported")
    languages = reviewers.languages_of(settings.db_url, reviewer)
    if languages and header.lang not in languages:
        raise ExchangeError(f"{path}: the file is in {header.lang}; reviewer {reviewer} may change "
                            f"{', '.join(languages)} only: nothing imported")


def import_file(settings: Settings, path: Path, *, reviewer: str) -> ImportReport:
    """Take a translated XLIFF file back: changed units become revisions by `reviewer`.

    Raises ExchangeError, saving nothing, when the file as a whole cannot be taken: unreadable,
    for other than one release in one language, for a language the reviewer's account may not
    change, or stale (a release's record changed since the export). Otherwise a unit that cannot
    be taken is refused (one line in the report) and the others go in.
    """
    try:  # the name goes into the audit trail: not a look-alike of an account, nor pressflow's own
        reviewer = reviewers.new_name(settings.db_url, reviewer, "--reviewer name")
    except reviewers.AccountError as exc:
        raise ExchangeError(f"{path}: {exc}; nothing imported") from None
    header, units = _units(path)
    _check_file(settings, path, header, reviewer)
    report = ImportReport()
    seen = Counter((unit.draft_id, unit.index) for unit in units if unit.draft_id is not None)
    by_draft: dict[int, list[_Unit]] = {}
    for unit in units:
        if unit.draft_id is None:
            report.refused.append(f"{unit.where} id: not an id `pressflow review export` writes "
                                  "(DRAFT:SENTENCE:MARK): not imported")
        elif seen[unit.draft_id, unit.index] > 1:  # which one is meant? none goes in
            report.refused.append(f"{unit.where} id: {seen[unit.draft_id, unit.index]} units of the file are "
                                  f"sentence {unit.index + 1} of draft {unit.draft_id}: none of them imported")
        else:
            by_draft.setdefault(unit.draft_id, []).append(unit)
    plans = {draft_id: _plan(settings, path, header, draft_id, draft_units)
             for draft_id, draft_units in by_draft.items()}
    for draft_id, (changes, refused, conflicts, unchanged, revision) in plans.items():
        report.refused += refused
        report.conflicts += conflicts
        report.unchanged += unchanged
        if changes:
            try:
                edit = service.edit_segments(settings, draft_id, changes, author=reviewer, expected_revision=revision,
                                             note=f"XLIFF import from {path.name}")
            except store.DraftChanged as exc:  # saved by someone while this file was read
                report.conflicts += [f"{unit.where} target: {exc}: not imported, the text in pressflow kept"
                                     for unit in by_draft[draft_id] if unit.index in changes]
                continue
            if edit.revision is not None:
                report.saved[draft_id] = edit.revision
                report.sentences += len(changes)
    return report


def _plan(settings: Settings, path: Path, header: _Header, draft_id: int, units: list[_Unit]):
    """(changes {index: sentence}, refused lines, conflict lines, unchanged count, expected revision) for a draft;
    raises ExchangeError when the file is stale for it."""
    with db.session_scope(settings.db_url) as session:
        try:
            draft = store.get_draft(session, draft_id)
        except PressflowError:
            return {}, [f"{u.where} id: no draft {draft_id} in this store: not imported" for u in units], [], 0, None
        slug, lang, channel, status, revision = (draft.release_slug, draft.lang, draft.channel, draft.status,
                                                 draft.revision)
    crossing = [u for u in units if (slug, lang, channel) != (header.release, header.lang, u.channel)]
    if crossing:  # an id rewritten, or a unit moved between files: never into another release or language
        return {}, [f"{u.where} id: draft {draft_id} is release {slug} in {lang} ({channel}); this file is "
                    f"{header.release} in {header.lang} ({u.channel}): not imported" for u in units], [], 0, None
    if status == store.SUPERSEDED:
        raise ExchangeError(f"{path}: release {slug} changed since this file was exported: its record was "
                            f"prepared again (draft {draft_id} is superseded); export it again")
    current = {s.index: s for s in service.current_segments(settings, draft_id)}
    changes, refused, conflicts, unchanged = {}, [], [], 0
    for unit in units:
        sentence = current.get(unit.index)
        exported = _key_parts(sentence.key, sentence.values, sentence.source) if sentence else None
        if exported is None or _canonical(unit.source) != _canonical(exported):
            now = sentence.source if sentence else "(no such sentence)"
            raise ExchangeError(f"{path}: release {slug} changed since this file was exported: sentence "
                                f"{unit.index + 1} of draft {draft_id} was {_shown(unit.source)!r}, is now "
                                f"{now!r}; export it again")
        if not _canonical(unit.target):
            unchanged += 1  # left untranslated
            continue
        wanted, got = _ids(exported), _ids(unit.target)
        if wanted != got:
            refused.append(_placeholder_problem(unit, wanted, got))
            continue
        text = " ".join(_fill(unit.target, sentence.values).split())
        if problem := text_rules.problem(text):
            refused.append(f"{unit.where} target: the translation {problem}: not imported")
            continue
        if text == " ".join(sentence.text.split()) or unit.mark == text_mark(text):
            unchanged += 1  # as it is in pressflow, or as it was exported (left as it was)
            continue
        if unit.mark is None and unit.revision is None:
            refused.append(f"{unit.where} id: no mark of the text it was exported with (DRAFT:SENTENCE:MARK), "
                           "and no revision note: not imported; export it again")
            continue
        changed = unit.mark != text_mark(sentence.text) if unit.mark else unit.revision != revision
        if changed:  # a reviewer's text later than the file's: never overwritten
            conflicts.append(f"{unit.where} target: sentence {unit.index + 1} of draft {draft_id} was changed in "
                             f"pressflow after this file was exported (now revision {revision}): not imported, the "
                             "text in pressflow kept; compare the two and edit it by hand, or export again")
            continue
        changes[unit.index] = text
    return changes, refused, conflicts, unchanged, revision


def _shown(parts: list[Part]) -> str:
    return "".join(f"<x id={part}/>" if isinstance(part, int) else part for part in parts)


def _placeholder_problem(unit: _Unit, wanted: list[int], got: list[int]) -> str:
    dropped = sorted(set(wanted) - set(got)) or [i for i in wanted if wanted.count(i) > got.count(i)]
    invented = sorted(set(got) - set(wanted)) or [i for i in got if got.count(i) > wanted.count(i)]
    said = []
    if dropped:
        said.append(f"placeholder(s) {', '.join(map(str, sorted(set(dropped))))} dropped")
    if invented:
        said.append(f"placeholder(s) {', '.join(map(str, sorted(set(invented))))} invented or repeated")
    return f"{unit.where} target: {' and '.join(said)}: not imported (the protected items must stay as they are)"

