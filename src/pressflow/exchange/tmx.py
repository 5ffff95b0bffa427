"""TMX 1.4b for the translation memory: move it between installations, to and from an agency.

Written and read with translate-toolkit (`translate.storage.tmx`). One `<tu>` per memory entry,
with `creationid` (the reviewer), `creationdate`, and `<prop type="x-pressflow-origin">`
(human or machine). Sentences are stored as the memory keeps them: protected items are ⟦N⟧
placeholders (the memory never holds a release's names, URLs or quantities, so an entry fits
every release). A TMX written by another tool holds plain sentences: on import they are
protected as the translation stage protects them, so the next prepare finds them by the same key.
Entries imported as machine are suggestions only: kept under an engine id no model has
("tmx:..."), never reused as a model's output.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree
from translate.storage import tmx as ttk_tmx

from ..core import db, text_rules
from ..core.config import Settings
from ..core.errors import ExchangeError
from ..core.files import write_atomic
from ..drafts import reviewers
from ..translate.protect import Glossary, Protector
from ..translate.stage import HUMAN
from ..memory.store import MemoryEntry, SqlMemory, memory_entries

ORIGIN_PROP = "x-pressflow-origin"
ENGINE_PROP = "x-pressflow-engine"
IMPORTED = "tmx:"  # the engine id prefix of imported machine entries
_PLACEHOLDER = re.compile(r"⟦\s*\d+\s*⟧")
_TMX_DATE = "%Y%m%dT%H%M%SZ"
IMPORT_AUTHOR = "tmx import"  # the memory's author for units without a creationid (text_rules.SYSTEM_NAMES)


def export(settings: Settings, path: Path, *, source: str | None = None, target: str | None = None) -> int:
    """Write the memory (one language pair, or all) as TMX 1.4b; returns how many entries."""
    source = source or settings.source_language
    file = ttk_tmx.tmxfile(sourcelanguage=source)
    count = 0
    with db.session_scope(settings.db_url) as session:
        for row in memory_entries(session, source, target):
            file.addtranslation(row.source_text, row.source_lang, row.text, row.target_lang)
            _describe(file.units[-1], row)
            count += 1
    write_atomic(path, bytes(file))
    if len(ttk_tmx.tmxfile.parsefile(str(path)).units) != count:  # what we hand over, its tools can read
        raise ExchangeError(f"{path}: translate-toolkit reads back a different number of entries than written")
    return count


def _describe(unit, row: MemoryEntry) -> None:
    element = unit.xmlelement
    if row.author:
        element.set("creationid", row.author)
    element.set("creationdate", row.created_at.astimezone(dt.timezone.utc).strftime(_TMX_DATE))
    first_tuv = element.find("tuv")
    for kind, value in ((ORIGIN_PROP, row.origin), (ENGINE_PROP, row.engine)):
        prop = etree.Element("prop", type=kind)
        prop.text = value
        first_tuv.addprevious(prop)


@dataclass
class TmxImport:
    entries: int = 0
    skipped: int = 0  # units without both languages' text
    refused: list[str] = field(default_factory=list)  # units refused, one line each (what and why)
    conflicts: list[str] = field(default_factory=list)  # reviewers' entries kept, one line each


def import_file(settings: Settings, path: Path, *, origin: str = HUMAN, replace_human: bool = False) -> TmxImport:
    """Add a TMX file's translation units to the memory as `origin` ("human" or "machine").

    A reviewer's entry already in the memory is kept, and listed in `conflicts`, where the file
    has other text for its sentence, unless `replace_human`.
    """
    if origin not in (HUMAN, "machine"):
        raise ExchangeError(f"--as must be human or machine, not {origin!r}")
    try:
        file = ttk_tmx.tmxfile.parsefile(str(path))
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise ExchangeError(f"{path}: not a readable TMX file ({type(exc).__name__}: {exc})") from exc
    glossary = Glossary.load(settings.glossary_file)
    protectors: dict[str, Protector] = {}
    pairs: dict[tuple[str, str, str, str | None], dict[str, str]] = {}
    where: dict[tuple[str, str, str], int] = {}  # (source, target language, key) -> the <tu>'s number
    result = TmxImport()
    accounts = [name for name, _ in reviewers.list_users(settings.db_url)]
    for number, unit in enumerate(file.units, 1):
        found = _languages(unit.xmlelement)
        source_lang = unit.xmlelement.get("srclang") or file.getsourcelanguage() or settings.source_language
        if source_lang not in found:
            source_lang = settings.source_language
        source_text = found.pop(source_lang, None)
        if not source_text or not found:
            result.skipped += 1
            continue
        author = unit.xmlelement.get("creationid") or (IMPORT_AUTHOR if origin == HUMAN else None)
        if author is not None and author != IMPORT_AUTHOR:
            try:  # the memory's author is shown in `review show` and on the review page
                author = text_rules.check_name(author, "creationid", taken=accounts)
            except text_rules.TextRuleError as exc:
                result.refused.append(f"translation unit {number}: {exc}: not imported")
                continue
        if problem := next(filter(None, (text_rules.problem(text) for text in (source_text, *found.values()))), None):
            result.refused.append(f"translation unit {number}: the text {problem}: not imported")
            continue
        engine = HUMAN if origin == HUMAN else suggestion_engine(_prop(unit.xmlelement, ENGINE_PROP) or path.name)
        for target_lang, text in found.items():
            key, translation = _protected(protectors, glossary, target_lang, source_text, text)
            pairs.setdefault((source_lang, target_lang, engine, author), {})[key] = translation
            where[source_lang, target_lang, key] = number
            result.entries += 1
    for (source_lang, target_lang, engine, author), entries in pairs.items():
        kept = SqlMemory(settings.db_url, author=author, file=path.name).save(
            source_lang, target_lang, engine, entries, replace=origin != HUMAN or replace_human)
        for key, (text, by) in kept.items():
            result.entries -= 1
            result.conflicts.append(
                f"{path}: <tu> {where[source_lang, target_lang, key]} ({target_lang}) seg: the memory has "
                f"{by or 'a reviewer'}'s translation of {key!r}, not the file's: kept (--replace-human to replace it)")
    return result


def suggestion_engine(name: str) -> str:
    """The engine id an imported machine entry is kept under: "tmx:" and its engine or file,
    which no model's id is (`Model.engine_id` is "argos:..."), so the translation stage, which
    reuses a model's own output only, never takes it for the installed model's: it is a
    suggestion, nothing more."""
    return name if name.startswith(IMPORTED) else f"{IMPORTED}{name}"


def _languages(element) -> dict[str, str]:
    """{language: segment text} of a <tu> (xml:lang, or TMX 1.1's lang)."""
    found = {}
    for tuv in element.iter("tuv"):
        lang = tuv.get("{http://www.w3.org/XML/1998/namespace}lang") or tuv.get("lang")
        seg = tuv.find("seg")
        if lang and seg is not None:
            text = "".join(seg.itertext()).strip()
            if text:
                found[lang.split("-")[0].lower()] = text  # "es-ES" -> "es", as the models name languages
    return found


def _prop(element, kind: str) -> str | None:
    for prop in element.iter("prop"):
        if prop.get("type") == kind:
            return prop.text
    return None


def _protected(protectors: dict[str, Protector], glossary: Glossary, target: str, source_text: str,
               text: str) -> tuple[str, str]:
    """The memory key and translation: as exported (⟦N⟧ already there), or protected now."""
    if _PLACEHOLDER.search(source_text):
        return source_text, text
    protector = protectors.setdefault(target, Protector(glossary, target))
    protected = protector.protect(source_text)
    translation = text
    for index, value in enumerate(protected.values):
        translation = translation.replace(value, f"⟦{index}⟧", 1)
    return protected.text, translation
