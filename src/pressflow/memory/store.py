"""The translation memory's tables, and the memory as the translation stage wants it (`SqlMemory`).

`MemoryEntry` is one translated segment (human entries win over machine ones); `MemorySource`,
`MemoryGram` and the trigram index over them are fuzzy matching's (`memory.fuzzy`);
`SuggestionCache` keeps a draft revision's suggestions; `SentenceSplit` keeps pysbd's answers.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Iterator

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..core.db import (Base, UTCDateTime, in_batches, migration, session_scope, table_columns, text_hash, utcnow,
                       valid_name)

class MemoryEntry(Base):
    """Translation memory: one translated segment. Human entries win over machine ones."""

    __tablename__ = "translation_memory"
    __table_args__ = (
        UniqueConstraint("source_hash", "source_lang", "target_lang", "engine", "origin"),
        Index("ix_tm_lookup", "source_lang", "target_lang", "source_hash"),
        # max(created_at) says whether the memory changed since suggestions were cached
        Index("ix_tm_created", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_hash: Mapped[str] = mapped_column(String(64))
    source_text: Mapped[str] = mapped_column(Text)
    source_lang: Mapped[str] = mapped_column(String(20))
    target_lang: Mapped[str] = mapped_column(String(20))
    engine: Mapped[str] = mapped_column(String(200))  # model id and version, or "human"
    origin: Mapped[str] = mapped_column(String(10))  # "machine" or "human"
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # "release SLUG": learned from that release's drafts; "file NAME": imported; None: not known.
    # An export to an agency offers only entries of its own release, released ones and files.
    learned_from: Mapped[str | None] = mapped_column(String(200))


class MemorySource(Base):
    """A distinct source sentence of the memory, as fuzzy matching finds it (`memory.fuzzy`):
    folded (numbers as ⟦#⟧, lower case) under a trigram index: FTS5 on SQLite, pg_trgm on PostgreSQL."""

    __tablename__ = "memory_sources"
    __table_args__ = (UniqueConstraint("source_lang", "source_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_lang: Mapped[str] = mapped_column(String(20))
    source_hash: Mapped[str] = mapped_column(String(64))
    folded: Mapped[str] = mapped_column(Text)
    length: Mapped[int] = mapped_column(Integer)


class MemoryGram(Base):
    """How many memory sources of a language hold a trigram: the candidate search reads the
    index for a sentence's rarest trigrams only (common ones would list most of the memory)."""

    __tablename__ = "memory_grams"
    source_lang: Mapped[str] = mapped_column(String(20), primary_key=True)
    gram: Mapped[str] = mapped_column(String(16), primary_key=True)
    docs: Mapped[int] = mapped_column(Integer)


class SuggestionCache(Base):
    """A draft revision's memory suggestions, as computed when it was first shown; `stamp` is the
    memory's state then (a newer entry anywhere makes them be computed again)."""

    __tablename__ = "suggestion_cache"
    draft_id: Mapped[int] = mapped_column(ForeignKey("drafts.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    stamp: Mapped[str] = mapped_column(String(100))
    suggestions: Mapped[dict] = mapped_column(JSON)


class SentenceSplit(Base):
    """Where a line of source prose splits into sentences (pysbd's answer, kept: it is slow)."""

    __tablename__ = "sentence_splits"
    __table_args__ = (UniqueConstraint("line_hash", "language"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line_hash: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(20))
    spans: Mapped[str] = mapped_column(Text)  # JSON [[start, end], ...]


def memory_entries(session: Session, source: str, target: str | None = None) -> Iterator[MemoryEntry]:
    """Every entry from `source` (into `target`, or any language), by language and age."""
    query = select(MemoryEntry).where(MemoryEntry.source_lang == source).order_by(MemoryEntry.target_lang,
                                                                                  MemoryEntry.id)
    if target:
        query = query.where(MemoryEntry.target_lang == target)
    yield from session.scalars(query.execution_options(yield_per=2000))


@migration(4)
def _memory_learned_from(connection: Connection) -> None:
    """Memory entries keep where they were learned (`translation_memory.learned_from`); those
    saved before: not known (None), so an export offers them to no agency."""
    if "learned_from" not in table_columns(connection, "translation_memory"):
        connection.exec_driver_sql("ALTER TABLE translation_memory ADD COLUMN learned_from VARCHAR(200)")


class SqlMemory:
    """The translation memory in the store, as the translation stage wants it.

    `release` (the release whose drafts the entries come from) or `file` (the file they were
    imported from) is kept with the entries saved: exports offer agencies no other release's
    unreleased text."""

    def __init__(self, url: str, author: str | None = None, *, release: str | None = None, file: str | None = None):
        self.url, self.author = url, author if author is None else valid_name(author, "author's name")
        self.learned_from = f"release {release}" if release else f"file {file}"[:200] if file else None

    def lookup(self, source: str, target: str, engine: str, segments: list[str]) -> dict[str, str]:
        """Known translations of `segments` by `engine` ("human" for reviewers' edits)."""
        found: dict[str, str] = {}
        by_hash = {text_hash(s): s for s in segments}
        hashes = list(by_hash)
        with session_scope(self.url) as session:
            for batch in in_batches(hashes):
                rows = session.execute(
                    select(MemoryEntry.source_hash, MemoryEntry.text)
                    .where(MemoryEntry.source_lang == source, MemoryEntry.target_lang == target,
                           MemoryEntry.engine == engine, MemoryEntry.source_hash.in_(batch))
                    .order_by(MemoryEntry.created_at)
                )
                for digest, text in rows:
                    found[by_hash[digest]] = text
        return found

    def save(self, source: str, target: str, engine: str, pairs: dict[str, str], *,
             replace: bool = True) -> dict[str, tuple[str, str | None]]:
        """Remember translations; a human entry replaces an earlier human entry for the segment.

        With `replace` False an entry already there is kept as it is, and returned when the new
        text differs from it: {segment: (its text, its author)}.
        """
        origin = "human" if engine == "human" else "machine"
        by_hash = {text_hash(segment): (segment, text) for segment, text in pairs.items()}
        hashes = list(by_hash)
        kept: dict[str, tuple[str, str | None]] = {}
        with session_scope(self.url) as session, session.no_autoflush:
            for batch in in_batches(hashes):  # existing entries are updated, in bulk lookups
                for entry in session.scalars(select(MemoryEntry).where(
                        MemoryEntry.source_hash.in_(batch), MemoryEntry.source_lang == source,
                        MemoryEntry.target_lang == target, MemoryEntry.engine == engine,
                        MemoryEntry.origin == origin)):
                    segment, text = by_hash.pop(entry.source_hash)
                    if not replace:
                        if entry.text != text:
                            kept[segment] = (entry.text, entry.author)
                        continue
                    entry.text, entry.author, entry.created_at = text, self.author, utcnow()
                    entry.learned_from = self.learned_from
            if by_hash:  # new ones in one multi-row INSERT
                session.execute(insert(MemoryEntry), [
                    {"source_hash": digest, "source_text": segment, "source_lang": source, "target_lang": target,
                     "engine": engine, "origin": origin, "text": text, "author": self.author, "created_at": utcnow(),
                     "learned_from": self.learned_from}
                    for digest, (segment, text) in by_hash.items()])
                from . import fuzzy

                fuzzy.add_sources(session, source, [segment for segment, _ in by_hash.values()])
        return kept

    def suggest(self, source: str, target: str, keys: list[str]) -> dict[str, list]:
        """Fuzzy matches (>= 75%) of protected sentences, best first (see `memory.fuzzy`)."""
        from . import fuzzy

        with session_scope(self.url) as session:
            return fuzzy.suggest(session, source, target, keys)

    def spans(self, language: str, lines: list[str]) -> dict[str, list[list[int]]]:
        """Sentence spans of `lines` found by an earlier run."""
        by_hash = {text_hash(line): line for line in lines}
        hashes = list(by_hash)
        found: dict[str, list[list[int]]] = {}
        with session_scope(self.url) as session:
            for batch in in_batches(hashes):
                rows = session.execute(select(SentenceSplit.line_hash, SentenceSplit.spans).where(
                    SentenceSplit.language == language, SentenceSplit.line_hash.in_(batch)))
                found.update((by_hash[digest], json.loads(spans)) for digest, spans in rows)
        return found

    def save_spans(self, language: str, spans: dict[str, Any]) -> None:
        """Keep sentence spans for the next run; lines already kept are left alone."""
        rows = [{"line_hash": text_hash(line), "language": language, "spans": json.dumps(found)}
                for line, found in spans.items()]
        try:
            with session_scope(self.url) as session:
                for chunk in in_batches(rows):
                    known = set(session.scalars(select(SentenceSplit.line_hash).where(
                        SentenceSplit.language == language,
                        SentenceSplit.line_hash.in_([row["line_hash"] for row in chunk]))))
                    new = [row for row in chunk if row["line_hash"] not in known]
                    if new:
                        session.execute(insert(SentenceSplit), new)
        except IntegrityError:
            pass  # a concurrent run kept the same lines first: they are kept, which is all this is for
