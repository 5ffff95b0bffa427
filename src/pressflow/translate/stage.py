"""The translation stage: many documents, one language pair, batched work units.

Every sentence of every document is protected, deduplicated and looked up in the translation
memory (human translations first); only what is left goes to the model, in length-sorted
units of work; then each document is put back together and checked: a protected item the model
dropped is restored and flagged for the reviewer.

The stage is split so that a task runner can spread the model work: `plan_documents` (cheap,
on the coordinator) -> `StagePlan.next_units` -> `run_unit` (anywhere: a thread, a Dask worker)
-> `StagePlan.absorb` -> ... -> `StagePlan.finish`. `translate_documents` runs all of it here.
A pivot route (source -> en -> target) is two legs: the second leg's units exist once the
first leg's results are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from .engine import MODELS, ModelCache
from .models import Model, find_route
from .protect import Glossary, Protected, Protector, needs_model, restore
from .segment import split_document

HUMAN = "human"
# Sentences per unit of work shipped to a task runner: big enough that task overhead is small
# next to the model's time (~0.1 s per sentence for a base model on 2 cores), small enough that
# a few units keep every worker busy.
UNIT_SIZE = 256


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


@dataclass(frozen=True)
class Unit:
    """One batch of model work: picklable, so any worker that can open `model.path` runs it."""

    model: Model
    segments: tuple[str, ...]
    target: str  # the plan's final target language (for progress), not necessarily model.target


def run_unit(unit: Unit, cache: ModelCache = MODELS,
             progress: Callable[[int], None] | None = None) -> dict[str, str]:
    """Translate one unit with the process's cached model; returns {segment: translation}."""
    outputs = cache.get(unit.model).translate(list(unit.segments), progress=progress)
    return dict(zip(unit.segments, outputs))


class StagePlan:
    """The state of one language pair's translation between units of work."""

    def __init__(self, plans: list[list[str | Protected]], route: list[Model], source: str, target: str,
                 forced: dict[str, str], memory: Memory | None, stats: StageStats):
        self.plans, self.route, self.source, self.target = plans, route, source, target
        self.forced, self.memory, self.stats = forced, memory, stats
        wanted = list(dict.fromkeys(p.text for plan in plans for p in plan
                                    if isinstance(p, Protected) and needs_model(p.text)))
        stats.segments += sum(isinstance(p, Protected) for plan in plans for p in plan)
        stats.unique += len(wanted)
        self.done = memory.lookup(source, target, HUMAN, wanted) if memory and wanted else {}
        stats.from_memory += len(self.done)
        # segment -> its text in the current leg's source language
        self.current = {s: s for s in wanted if s not in self.done}
        self.leg = 0
        self.known: dict[str, str] = {}  # current leg: source-language text -> translation
        self.looked_up = -1  # the leg whose memory lookup is in `known`
        self.error: BaseException | None = None  # a unit that failed for good stops this plan only

    @property
    def engines(self) -> list[str]:
        return [model.engine_id for model in self.route]

    def next_units(self, unit_size: int = UNIT_SIZE) -> list[Unit]:
        """The units the current leg still needs; [] once every leg is done."""
        while self.leg < len(self.route):
            model = self.route[self.leg]
            texts = list(dict.fromkeys(self.current.values()))
            if self.looked_up != self.leg:
                self.known = self.memory.lookup(model.source, model.target, model.engine_id, texts) \
                    if self.memory and texts else {}
                self.stats.from_memory += len(self.known)
                self.looked_up = self.leg
            missing = sorted((t for t in texts if t not in self.known), key=len)
            if missing:
                # Length-sorted before cutting, so each unit's batches carry little padding.
                return [Unit(model, tuple(missing[i:i + unit_size]), self.target)
                        for i in range(0, len(missing), unit_size)]
            self.current = {s: self.known[t] for s, t in self.current.items()}
            self.leg += 1
        return []

    def absorb(self, results: dict[str, str]) -> None:
        """Take a leg's model output: remember it, then let `next_units` move on."""
        if not results:
            return
        model = self.route[self.leg]
        if self.memory:
            self.memory.save(model.source, model.target, model.engine_id, results)
        self.stats.translated += len(results)
        self.known.update(results)

    def finish(self) -> list[Translation]:
        """Every document put back together; call once `next_units` returns []."""
        if self.error is not None:
            raise self.error
        if self.leg < len(self.route):
            raise RuntimeError("StagePlan.finish called before every unit was translated")
        translated = {**self.current, **self.done}
        return [_assemble(plan, translated, self.engines, self.forced) for plan in self.plans]


def plan_documents(documents: list[str], source: str, target: str, *, glossary: Glossary | None = None,
                   memory: Memory | None = None, models: list[Model] | None = None,
                   stats: StageStats | None = None) -> StagePlan:
    """Segment, protect and deduplicate documents, and look them up in the memory.

    Raises ModelMissingError before any work when no installed model (or English pivot) covers
    the pair.
    """
    route = find_route(source, target, models)
    glossary = glossary or Glossary()
    protector = Protector(glossary, target)
    plans = [[protector.protect(p.text) if p.translate else p.text for p in split_document(document, source)]
             for document in documents]
    return StagePlan(plans, route, source, target, glossary.translations.get(target, {}), memory,
                     stats if stats is not None else StageStats())


def run_plans(plans: Iterable[StagePlan],
              run: Callable[[list[Unit]], list[dict[str, str] | BaseException]]) -> None:
    """Drive plans to the end, handing each round of units (every plan's current leg) to `run`.

    `run` returns one result per unit, in order; an exception in place of a result marks that
    unit's plan failed (`plan.error`) and leaves the other plans going.
    """
    plans = list(plans)
    while True:
        work = [(plan, unit) for plan in plans if plan.error is None for unit in plan.next_units()]
        if not work:
            return
        results = run([unit for _, unit in work])
        merged: dict[int, dict[str, str]] = {}
        for (plan, _), result in zip(work, results, strict=True):
            if isinstance(result, BaseException):
                plan.error = plan.error or result
            else:
                merged.setdefault(id(plan), {}).update(result)
        for plan in plans:
            if plan.error is None:
                plan.absorb(merged.get(id(plan), {}))


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
    """Translate documents (rendered drafts, with `keep` marks) from `source` to `target`, here.

    Raises ModelMissingError before any work when no installed model (or English pivot) covers
    the pair.
    """
    plan = plan_documents(documents, source, target, glossary=glossary, memory=memory, models=models, stats=stats)
    run_plans([plan], lambda units: [run_unit(unit, cache, progress) for unit in units])
    return plan.finish()


def _assemble(plan: list[str | Protected], translated: dict[str, str], engines: list[str],
              forced: dict[str, str]) -> Translation:
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
        misplaced = [term for term, official in forced.items()
                     if official in dropped or (term in piece.original and official not in text)]
        if misplaced:
            # The official wording is missing or was re-appended out of place: a reviewer decides.
            out.qa.append({"kind": "glossary_term_missing", "segment": index,
                           "items": [forced[t] for t in misplaced]})
        parts.append(text)
    out.text = "".join(parts)
    return out
