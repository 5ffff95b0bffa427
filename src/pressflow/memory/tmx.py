"""TMX 1.4b for the translation memory: move it between installations, to and from an agency.

Written and read with translate-toolkit (`translate.storage.tmx`). One `<tu>` per memory entry,
with `creationid` (the reviewer), `creationdate`, and `<prop type="x-pressflow-origin">`
(human or machine). Sentences are stored as the memory keeps them: protected items are ⟦N⟧
placeholders (the memory never holds a release's names, URLs or quantities, so an entry fits
every release). A TMX written by another tool holds plain sentences: on import they are
protected as the translation stage protects them, so the next prepare finds them by the same key.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from sqlalchemy import select
from translate.storage import tmx as ttk_tmx

from ..core import db
from ..core.config import Settings
from ..core.errors import ExchangeError
from ..core.files import write_atomic
from ..translate.protect import Glossary, Protector
from ..translate.stage import HUMAN
from .store import MemoryEntry, SqlMemory

ORIGIN_PROP = "x-pressflow-origin"
ENGINE_PROP = "x-pressflow-engine"
_PLACEHOLDER = re.compile(r"⟦\s*\d+\s*⟧")
_TMX_DATE = "%Y%m%dT%H%M%SZ"


def export(settings: Settings, path: Path, *, source: str | None = None, target: str | None = None) -> int:
    """Write the memory (one language pair, or all) as TMX 1.4b; returns how many entries."""
    source = source or settings.source_language
    file = ttk_tmx.tmxfile(sourcelanguage=source)
    entry = MemoryEntry
    count = 0
    with db.session_scope(settings.db_url) as session:
        query = select(entry).where(entry.source_lang == source).order_by(entry.target_lang, entry.id)
        if target:
            query = query.where(entry.target_lang == target)
        for row in session.scalars(query.execution_options(yield_per=2000)):
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


def import_file(settings: Settings, path: Path, *, origin: str = HUMAN) -> TmxImport:
    """Add a TMX file's translation units to the memory as `origin` ("human" or "machine")."""
    if origin not in (HUMAN, "machine"):
        raise ExchangeError(f"--as must be human or machine, not {origin!r}")
    try:
        file = ttk_tmx.tmxfile.parsefile(str(path))
    except Exception as exc:  # noqa: BLE001 - one line naming the file
        raise ExchangeError(f"{path}: not a readable TMX file ({type(exc).__name__}: {exc})") from exc
    glossary = Glossary.load(settings.glossary_file)
    protectors: dict[str, Protector] = {}
    pairs: dict[tuple[str, str, str, str | None], dict[str, str]] = {}
    result = TmxImport()
    for unit in file.units:
        found = _languages(unit.xmlelement)
        source_lang = unit.xmlelement.get("srclang") or file.getsourcelanguage() or settings.source_language
        if source_lang not in found:
            source_lang = settings.source_language
        source_text = found.pop(source_lang, None)
        if not source_text or not found:
            result.skipped += 1
            continue
        author = unit.xmlelement.get("creationid") or ("tmx import" if origin == HUMAN else None)
        engine = HUMAN if origin == HUMAN else (_prop(unit.xmlelement, ENGINE_PROP) or f"tmx:{path.name}")
        for target_lang, text in found.items():
            key, translation = _protected(protectors, glossary, target_lang, source_text, text)
            pairs.setdefault((source_lang, target_lang, engine, author), {})[key] = translation
            result.entries += 1
    for (source_lang, target_lang, engine, author), entries in pairs.items():
        SqlMemory(settings.db_url, author=author).save(source_lang, target_lang, engine, entries)
    return result


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
