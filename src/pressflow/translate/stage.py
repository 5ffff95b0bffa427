"""The translation stage: many documents, one language pair, one batched pass.

Every sentence of every document is protected, deduplicated and looked up in the translation
memory (human translations first); only what is left goes to the model, in batches; then each
document is put back together and checked: a protected item the model dropped is restored and
flagged for the reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol

from .engine import MODELS, ModelCache
from .models import Model, find_route
from .protect import Glossary, Protected, Protector, needs_model, restore
from .segment import split_document

HUMAN = "human"


class Memory(Protocol):
    """Where segment translations are remembered (the store's translation memory)."""

    def lookup(self, source: str, target: str, engine: str, segments: list[str]) -> dict[str, str]: ...

    def save(self, source: str, target: str, engine: str, pairs: dict[str, str]) -> None: ...


@dataclass
class Translation:
    """One translated document, with what a reviewer needs to check it."""

    text: str
    qa: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)  # source/target per sentence, for review
    engines: list[str] = field(default_factory=list)

    @property
    def pivot(self) -> bool:
        return len(self.engines) > 1


@dataclass
class StageStats:
    segments: int = 0
    unique: int = 0
    from_memory: int = 0
    translated: int = 0


def translate_documents(
    documents: list[str],
    source: str,
    target: str,
    *,
    glossary: Glossary | None = None,
    memory: Memory | None = None,
    models: list[Model] | None = None,
    cache: ModelCache = MODELS,
    progress: Callable[[int], None] | None = None,
    stats: StageStats | None = None,
) -> list[Translation]:
    """Translate documents (rendered drafts, with `keep` marks) from `source` to `target`.

    Raises ModelMissingError before any work when no installed model (or English pivot) covers
    the pair.
    """
    route = find_route(source, target, models)
    protector = Protector(glossary or Glossary(), target)
    stats = stats if stats is not None else StageStats()
    plans = [_plan(document, source, protector) for document in documents]
    wanted = list(dict.fromkeys(p.text for plan in plans for p in plan
                                if isinstance(p, Protected) and needs_model(p.text)))
    stats.segments += sum(isinstance(p, Protected) for plan in plans for p in plan)
    stats.unique += len(wanted)
    translated = _translate_unique(wanted, route, source, target, memory, cache, progress, stats)
    engines = [model.engine_id for model in route]
    return [_assemble(plan, translated, engines) for plan in plans]


def _plan(document: str, source: str, protector: Protector) -> list[str | Protected]:
    return [protector.protect(p.text) if p.translate else p.text for p in split_document(document, source)]


def _translate_unique(segments: list[str], route: list[Model], source: str, target: str, memory: Memory | None,
                      cache: ModelCache, progress: Callable[[int], None] | None, stats: StageStats) -> dict[str, str]:
    """Segment -> translation, from human memory, then machine memory, then the models."""
    result = memory.lookup(source, target, HUMAN, segments) if memory else {}
    todo = [s for s in segments if s not in result]
    current = {s: s for s in todo}  # segment -> its text in the current leg's source language
    for model in route:
        texts = list(dict.fromkeys(current.values()))
        known = memory.lookup(model.source, model.target, model.engine_id, texts) if memory else {}
        missing = [t for t in texts if t not in known]
        stats.from_memory += len(texts) - len(missing)
        if missing:
            outputs = cache.get(model).translate(missing, progress=progress)
            fresh = dict(zip(missing, outputs))
            stats.translated += len(missing)
            if memory:
                memory.save(model.source, model.target, model.engine_id, fresh)
            known.update(fresh)
        current = {s: known[t] for s, t in current.items()}
    result.update(current)
    return result


def _assemble(plan: list[str | Protected], translated: dict[str, str], engines: list[str]) -> Translation:
    out = Translation(text="", engines=engines)
    parts: list[str] = []
    for piece in plan:
        if isinstance(piece, str):
            parts.append(piece)
            continue
        raw = translated.get(piece.text, piece.text)
        text, dropped = restore(raw, piece.values)
        index = len(out.segments)
        out.segments.append({"key": piece.text, "values": list(piece.values), "source": piece.original,
                             "target": raw, "text": text})
        if dropped:
            out.qa.append({"kind": "protected_missing", "segment": index, "items": dropped})
        elif needs_model(piece.text) and raw.strip() == piece.text.strip():
            out.qa.append({"kind": "identical_to_source", "segment": index})
        parts.append(text)
    out.text = "".join(parts)
    return out
