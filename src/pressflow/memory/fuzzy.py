"""Fuzzy translation-memory search: candidates from a trigram index, then scoring.

As Weblate does, the database narrows 100,000 entries to a few dozen candidates with a trigram
index and only those are scored (`memory.scoring.score`): SQLite's FTS5 `trigram` tokenizer,
or PostgreSQL's `pg_trgm` GIN index. Asking either index "which sentences share most trigrams
with this one" over every trigram of a sentence reads most of the memory (measured: 36 ms a
sentence in SQLite, 0.2-1 s in PostgreSQL at 100,000 entries), because common trigrams ("the",
"ion") are in nearly every entry. So each sentence asks only for its rarest trigrams
(`memory_grams` counts how many sources hold each), until about BUDGET index rows would be
read; the sources hitting most of them are the candidates. A sentence 75% similar to an entry
shares most of its trigrams, so it shares rare ones too, unless the edit fell exactly on them.

On PostgreSQL the sources holding each of those trigrams come from `memory_grams.sources`, an
array of source ids kept beside the count (for trigrams held by at most POSTINGS_CAP sources),
and are counted here, as on SQLite, for all of a release's sentences in a few statements. The
pg_trgm index cannot list rows without PostgreSQL reading and re-checking each of them in the
table: ~2,000 rows a sentence at 100,000 entries (EXPLAIN ANALYZE: 3.6-6.5 ms a sentence, 2-3 s
a release). Trigrams past the cap (1 of the 600 chosen in the benchmark's release) are still
looked up through the pg_trgm index.

Suggestions shown for a draft are cached per draft revision (`suggestion_cache`), with the
memory's state as their stamp: a page view costs one small query unless the draft or the
memory changed since, and a prepare pays nothing for suggestions, however big the memory.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from contextlib import contextmanager
from typing import Callable, Iterable, Protocol

import numpy as np

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..core import db
from . import scoring
from .scoring import Suggestion
from .store import MemoryEntry, MemoryGram, MemorySource, SuggestionCache

BUDGET = 600  # trigram-index rows read per sentence, at most (plus one term's worth)
MIN_TERMS, MAX_TERMS = 3, 10
CANDIDATES = 12  # sources scored per sentence (30 found 5% more matches at twice the time)
HUMAN = "human"
POSTINGS_CAP = 5_000  # PostgreSQL: trigrams held by more sources keep a count only (no id list)

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS memory_fuzzy USING fts5("
    "folded, content='memory_sources', content_rowid='id', tokenize='trigram', detail=none)",
    "CREATE TRIGGER IF NOT EXISTS memory_sources_indexed AFTER INSERT ON memory_sources BEGIN "
    "INSERT INTO memory_fuzzy(rowid, folded) VALUES (new.id, new.folded); END",
    "CREATE TRIGGER IF NOT EXISTS memory_sources_unindexed AFTER DELETE ON memory_sources BEGIN "
    "INSERT INTO memory_fuzzy(memory_fuzzy, rowid, folded) VALUES ('delete', old.id, old.folded); END",
)
_POSTGRES_DDL = (
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS ix_memory_sources_trgm ON memory_sources USING gin (folded gin_trgm_ops)",
)
# PostgreSQL only (raw SQL): SQLite's FTS5 lists a trigram's rows without reading the table
_POSTINGS_COLUMN = "ALTER TABLE memory_grams ADD COLUMN sources integer[]"


@db.schema_upgrade
def create_index(connection: Connection) -> None:
    """The trigram index over `memory_sources`, and the sources of a store made before it
    (run under the store's schema lock, on every open: each statement is idempotent)."""
    postgres = connection.dialect.name == "postgresql"
    for statement in _POSTGRES_DDL if postgres else _SQLITE_DDL:
        connection.execute(text(statement))
    if postgres and not connection.scalar(text(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'memory_grams' "
            "AND column_name = 'sources' AND table_schema = current_schema()")):
        connection.execute(text(_POSTINGS_COLUMN))
        _backfill_postings(connection)
    _backfill(connection)


def _backfill_postings(connection: Connection) -> None:
    """Fill `memory_grams.sources` of a PostgreSQL store whose sources were indexed before it existed."""
    postings: dict[tuple[str, str], list[int]] = {}
    for source_id, lang, folded in connection.execute(text("SELECT id, source_lang, folded FROM memory_sources")):
        for gram in scoring.grams(folded):
            postings.setdefault((lang, gram), []).append(source_id)
    rows = [{"lang": lang, "gram": gram, "ids": ids} for (lang, gram), ids in postings.items() if len(ids) <= POSTINGS_CAP]
    for batch in db.in_batches(rows, 1000):
        connection.execute(text("UPDATE memory_grams SET sources = :ids WHERE source_lang = :lang AND gram = :gram"), batch)


def _backfill(connection: Connection) -> None:
    """Index the sources of memory entries written before the fuzzy index existed."""
    session = Session(bind=connection)
    if session.scalar(select(MemorySource.id).limit(1)) is not None:
        return
    if session.scalar(select(MemoryEntry.id).limit(1)) is None:
        return
    rows = session.execute(select(MemoryEntry.source_lang, MemoryEntry.source_text).distinct())
    by_lang: dict[str, list[str]] = {}
    for lang, source in rows:
        by_lang.setdefault(lang, []).append(source)
    for lang, sources in by_lang.items():
        add_sources(session, lang, sources)
    session.flush()


def _insert(session: Session, table):
    return (sqlite_insert if session.get_bind().dialect.name == "sqlite" else pg_insert)(table)


def add_sources(session: Session, lang: str, keys: Iterable[str]) -> None:
    """Put new source sentences (protected keys) under the trigram index; known ones are left."""
    rows = {db.text_hash(key): key for key in keys}
    if not rows:
        return
    postings: dict[str, list[int]] = {}
    values = []
    for digest, key in rows.items():
        folded = scoring.fold(key)
        values.append({"source_lang": lang, "source_hash": digest, "folded": folded, "length": len(folded)})
    for batch in db.in_batches(values, 200):
        # ON CONFLICT DO NOTHING: a concurrent prepare may index the same sentence; RETURNING
        # says which rows were new, so each source counts once in `memory_grams`.
        statement = _insert(session, MemorySource).values(batch).on_conflict_do_nothing(
            index_elements=["source_lang", "source_hash"]).returning(MemorySource.id, MemorySource.folded)
        for source_id, folded in session.execute(statement):
            for gram in scoring.grams(folded):
                postings.setdefault(gram, []).append(source_id)
    if session.get_bind().dialect.name == "postgresql":
        _count_grams_postgres(session, lang, postings)
    else:
        _count_grams(session, lang, postings)


def _count_grams(session: Session, lang: str, postings: dict[str, list[int]]) -> None:
    table = MemoryGram
    rows = [{"source_lang": lang, "gram": gram, "docs": len(ids)} for gram, ids in sorted(postings.items())]  # sorted: no deadlocks
    for batch in db.in_batches(rows, 300):
        statement = _insert(session, table).values(batch)
        session.execute(statement.on_conflict_do_update(
            index_elements=["source_lang", "gram"], set_={"docs": table.docs + statement.excluded.docs}))


_COUNT_POSTGRES = f"""
INSERT INTO memory_grams AS g (source_lang, gram, docs, sources)
SELECT %s, gram, cardinality(ids), CASE WHEN cardinality(ids) <= {POSTINGS_CAP} THEN ids END
FROM unnest(%s::text[], %s::text[]) AS new(gram, id_list), LATERAL (SELECT id_list::integer[] AS ids) AS parsed
ORDER BY gram
ON CONFLICT (source_lang, gram) DO UPDATE SET docs = g.docs + excluded.docs,
    sources = CASE WHEN g.docs + excluded.docs <= {POSTINGS_CAP} THEN g.sources || excluded.sources END
"""


def _count_grams_postgres(session: Session, lang: str, postings: dict[str, list[int]]) -> None:
    """Counts and id lists in one statement per batch; an id list past POSTINGS_CAP is dropped for good."""
    cursor = session.connection().connection.cursor()
    items = sorted(postings.items())  # sorted: two prepares upserting the same trigrams cannot deadlock
    for batch in db.in_batches(items, 2000):
        cursor.execute(_COUNT_POSTGRES, (lang, [gram for gram, _ in batch],
                                         ["{" + ",".join(map(str, ids)) + "}" for _, ids in batch]))


# --- search ------------------------------------------------------------------------------------


def _frequencies(session: Session, lang: str, grams: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for batch in db.in_batches(grams):
        found.update(session.execute(select(MemoryGram.gram, MemoryGram.docs).where(
            MemoryGram.source_lang == lang, MemoryGram.gram.in_(batch))).tuples().all())
    return found


def rarest(grams: list[str], frequency: dict[str, int]) -> list[str]:
    """The trigrams to look up: the rarest first, until about BUDGET index rows."""
    chosen, rows = [], 0
    for gram in sorted((g for g in grams if frequency.get(g)), key=frequency.__getitem__):
        if len(chosen) >= MAX_TERMS or (len(chosen) >= MIN_TERMS and rows + frequency[gram] > BUDGET):
            break
        chosen.append(gram)
        rows += frequency[gram]
    return chosen


def _length_range(folded: str) -> tuple[int, int]:
    # similarity = 1 - distance / longer length >= 75% needs the shorter >= 75% of the longer
    return int(len(folded) * 0.75), int(len(folded) / 0.75) + 1


def _candidates_sqlite(session: Session, lang: str, folded: str, terms: list[str]) -> list[tuple[str, str]]:
    # The DB-API cursor: hundreds of small lookups a release, and the ORM's per-query cost
    # would be most of the time.
    cursor = session.connection().connection.cursor()
    hits: Counter[int] = Counter()
    for term in terms:  # one lookup per trigram, counted here: FTS5's bm25 ranking costs 10x more
        cursor.execute("SELECT rowid FROM memory_fuzzy WHERE memory_fuzzy MATCH ?", ('"' + term.replace('"', '""') + '"',))
        hits.update(rowid for (rowid,) in cursor.fetchall())
    if not hits:
        return []
    low, high = _length_range(folded)
    best = [rowid for rowid, _ in hits.most_common(CANDIDATES * 4)]
    # by rowid only: with a language filter too, SQLite picks the (language, hash) index and
    # reads every source of the language
    cursor.execute(f"SELECT id, source_hash, folded, source_lang, length FROM memory_sources WHERE id IN "
                   f"({','.join('?' * len(best))})", best)
    by_id = {row[0]: (row[1], row[2]) for row in cursor.fetchall() if row[3] == lang and low <= row[4] <= high}
    return [by_id[i] for i in best if i in by_id][:CANDIDATES]


def _candidates_postgres(session: Session, lang: str, folded: dict[str, str],
                         terms: dict[str, list[str]]) -> dict[str, list[tuple[str, str]]]:
    """Every sentence's candidates in three statements: the id lists of all chosen trigrams, then
    the best-hit sources in each sentence's length range (raw cursor: no ORM compiling)."""
    cursor = session.connection().connection.cursor()
    postings = _postings(cursor, lang, {term for chosen in terms.values() for term in chosen})
    ranked = {key: _most_hits([postings[term] for term in chosen]) for key, chosen in terms.items()}
    ranked = {key: order for key, order in ranked.items() if len(order)}
    found: dict[str, list[tuple[str, str]]] = {key: [] for key in ranked}
    rows: dict[int, tuple] = {}
    start, step = 0, CANDIDATES * 4
    while ranked:  # most sentences have CANDIDATES in range among their first `step` sources
        wanted = {i for order in ranked.values() for i in order[start:start + step].tolist()} - rows.keys()
        cursor.execute("SELECT id, source_hash, folded, length FROM memory_sources WHERE id = ANY(%s)", (list(wanted),))
        rows.update((row[0], row[1:]) for row in cursor.fetchall())
        for key in list(ranked):
            low, high = _length_range(folded[key])
            for i in ranked[key][start:start + step].tolist():
                if len(found[key]) < CANDIDATES and i in rows and low <= rows[i][2] <= high:
                    found[key].append(rows[i][:2])
            if len(found[key]) >= CANDIDATES or len(ranked[key]) <= start + step:
                del ranked[key]
        start, step = start + step, step * 4
    return found


def _most_hits(lists: list[np.ndarray]) -> np.ndarray:
    """Source ids by how many of the lists hold them, most first (ties: oldest first); numpy,
    as ~2,000 ids a sentence counted in a Counter took ~40% of a release's time."""
    ids, hits = np.unique(np.concatenate(lists), return_counts=True)
    return ids[np.argsort(-hits, kind="stable")]


def _postings(cursor, lang: str, chosen: set[str]) -> dict[str, np.ndarray]:
    """{trigram: ids of the sources holding it}: from `memory_grams`, or from the pg_trgm index
    for a trigram too common to keep its id list."""
    cursor.execute("SELECT gram, sources FROM memory_grams WHERE source_lang = %s AND gram = ANY(%s)",
                   (lang, list(chosen)), binary=True)  # binary: int arrays load ~2x faster than as text
    postings = {gram: np.array(ids, dtype=np.int64) for gram, ids in cursor.fetchall() if ids is not None}
    for term in chosen - postings.keys():  # trigrams of letters hold no % _ or backslash
        cursor.execute("SELECT id FROM memory_sources WHERE source_lang = %s AND folded LIKE %s", (lang, f"%{term}%"))
        postings[term] = np.array([i for (i,) in cursor.fetchall()], dtype=np.int64)
    return postings


def _score_candidates(session: Session, source: str, keys: list[str], folded: dict[str, str],
                      grams: dict[str, list[str]], frequency: dict[str, int], passing: dict) -> None:
    terms = {key: chosen for key in keys if (chosen := rarest(grams[key], frequency))}
    if session.get_bind().dialect.name == "sqlite":
        found = {key: _candidates_sqlite(session, source, folded[key], chosen) for key, chosen in terms.items()}
    else:
        found = _candidates_postgres(session, source, folded, terms)
    for key, candidates in found.items():
        own = db.text_hash(key)
        for digest, candidate in candidates:
            percent = scoring.score(folded[key], candidate)
            if digest != own and percent >= scoring.THRESHOLD:
                passing.setdefault(key, {})[digest] = percent


@contextmanager
def _index_scans(session: Session):
    """PostgreSQL's planner reads the whole table for a LIKE on a table it thinks small, and
    misjudges how rare a trigram is: for the candidate queries only, the trigram index."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text("SET LOCAL enable_seqscan = off"))
    try:
        yield
    finally:
        if postgres:
            session.execute(text("SET LOCAL enable_seqscan = on"))


def suggest(session: Session, source: str, target: str, keys: list[str],
            allowed: Callable[[Row], bool] | None = None) -> dict[str, list[Suggestion]]:
    """For each protected sentence, the memory's best fuzzy matches in `target` (>= 75%), human
    entries first. The sentence's own entries (same source) are not suggestions of it; with
    `allowed`, only the entries it allows are."""
    keys = list(dict.fromkeys(keys))
    folded = {key: scoring.fold(key) for key in keys}
    grams = {key: scoring.grams(folded[key]) for key in keys}
    frequency = _frequencies(session, source, list({g for gs in grams.values() for g in gs}))
    # Scored on the folded forms the index holds (case is ignored), so only the sources that
    # pass are read from the memory itself.
    passing: dict[str, dict[str, int]] = {}
    with _index_scans(session):
        _score_candidates(session, source, keys, folded, grams, frequency, passing)
    entries = _entries(session, source, target, list({h for found in passing.values() for h in found}))
    if allowed is not None:
        entries = {digest: kept for digest, rows in entries.items() if (kept := [r for r in rows if allowed(r)])}
    result: dict[str, list[Suggestion]] = {}
    for key, found in passing.items():
        scored = [(_suggestion(entry, percent, key), entry.created_at)
                  for digest, percent in found.items() for entry in entries.get(digest, [])]
        if scored:
            result[key] = scoring.ranked(scored)
    return result


def _entries(session: Session, source: str, target: str, hashes: list[str]) -> dict[str, list]:
    entry = MemoryEntry
    found: dict[str, list] = {}
    for batch in db.in_batches(hashes):
        rows = session.execute(select(entry.source_hash, entry.source_text, entry.origin, entry.engine, entry.author,
                                      entry.created_at, entry.text, entry.learned_from)
                               .where(entry.source_lang == source, entry.target_lang == target,
                                      entry.source_hash.in_(batch)))
        for row in rows:
            found.setdefault(row.source_hash, []).append(row)
    return found


def _suggestion(entry, percent: int, key: str) -> Suggestion:
    """The entry as a suggestion for `key`: its text keeps placeholders, with `key`'s numbers."""
    who = (entry.author or "reviewer") if entry.origin == HUMAN else entry.engine
    return Suggestion(score=percent, origin=entry.origin, who=who,
                      date=entry.created_at.strftime("%Y-%m-%d"),
                      text=scoring.adapt(entry.source_text, entry.text, key))


# --- a draft's suggestions, cached per revision ---------------------------------------------------


class DraftRevision(Protocol):
    """What suggestions read of a draft (a `drafts.store.Draft`; the memory does not import drafts)."""

    id: int
    revision: int
    lang: str
    meta: dict


def memory_stamp(session: Session) -> str:
    """Changes whenever an entry is added or a human entry replaced (both indexed: two lookups)."""
    entry = MemoryEntry
    newest = session.scalar(select(func.max(entry.created_at)))
    return f"{session.scalar(select(func.max(entry.id)))}@{newest.isoformat() if newest else '-'}"


def draft_suggestions(session: Session, draft: DraftRevision, source: str, *,
                      allowed: Callable[[Row], bool] | None = None) -> dict[int, list[Suggestion]]:
    """{segment index: suggestions} for the draft's sentences without an exact human match.

    `allowed`: for a file leaving the house (an agency's XLIFF), which memory entries may be shown
    with this draft (`exchange.xliff.exportable`: only entries of the draft's own release, of
    releases out in the draft's language, and imported from files; never another release's text
    still under embargo or unreleased, nor entries of unknown origin); computed each time, not
    cached."""
    if allowed is not None:
        return _compute(session, draft, source, allowed)
    stamp = memory_stamp(session)
    cached = session.get(SuggestionCache, draft.id)
    if cached is not None and cached.revision == draft.revision and cached.stamp == stamp:
        return {int(i): [Suggestion(**s) for s in items] for i, items in cached.suggestions.items()}
    found = _compute(session, draft, source)
    data = {str(i): [s.as_dict() for s in items] for i, items in found.items()}
    try:  # a savepoint: two views of one draft at once may both write it, and one loses harmlessly
        with session.begin_nested():
            if cached is None:
                session.add(SuggestionCache(draft_id=draft.id, revision=draft.revision, stamp=stamp,
                                            suggestions=data))
            else:
                cached.revision, cached.stamp, cached.suggestions = draft.revision, stamp, data
    except IntegrityError:
        pass
    return found


def _compute(session: Session, draft: DraftRevision, source: str,
             allowed: Callable[[Row], bool] | None = None) -> dict[int, list[Suggestion]]:
    from ..translate.protect import needs_model

    segments = draft.meta.get("segments") or []
    keys = [s["key"] for s in segments if needs_model(s["key"])]
    if not keys or draft.lang == source:
        return {}
    exact = _human_keys(session, source, draft.lang, keys)
    found = suggest(session, source, draft.lang, [k for k in keys if k not in exact], allowed)
    result = {}
    for index, segment in enumerate(segments):
        if segment["key"] in found:  # fitted to this occurrence's protected items
            result[index] = [_refit(s, segment) for s in found[segment["key"]]]
    return result


def _human_keys(session: Session, source: str, target: str, keys: list[str]) -> set[str]:
    """The sentences a reviewer's entry matches exactly: the stage already used it, nothing to suggest."""
    entry, by_hash = MemoryEntry, {db.text_hash(k): k for k in keys}
    found: set[str] = set()
    for batch in db.in_batches(list(by_hash)):
        found.update(by_hash[h] for h in session.scalars(select(entry.source_hash).where(
            entry.source_lang == source, entry.target_lang == target, entry.origin == HUMAN,
            entry.source_hash.in_(batch))))
    return found


def _refit(suggestion: Suggestion, segment: dict) -> Suggestion:
    filled = scoring.fill(suggestion.text, segment.get("values") or [])
    return Suggestion(suggestion.score, suggestion.origin, suggestion.who, suggestion.date, filled)
