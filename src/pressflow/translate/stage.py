"""The translation stage: many documents, one language pair, batched work units.

Every sentence of every document is protected, deduplicated and looked up in the translation
memory (human translations first); only what is left goes to the model, in length-sorted
units of work; then each document is put back together and checked: a protected item the model
dropped is restored and flagged for the reviewer.

A sentence the model fails on (it raises, even alone) fails only the documents that hold it:
a failing batch is halved until the bad sentences stand alone, and the rest is translated.

The stage is split so that a task runner can spread the model work: `plan_documents` (cheap,
on the coordinator) -> `StagePlan.next_units` -> `run_unit` (anywhere: a thread, a Dask worker)
-> `StagePlan.absorb` -> ... -> `StagePlan.finish`. `translate_documents` runs all of it here.
A pivot route (source -> en -> target) is two legs: the second leg's units exist once the
first leg's results are in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

from ..core.errors import ModelLoadError, TranslationError
from . import checks
from .engine import MODELS, ArgosEngine, ModelCache
from .models import Model
from .protect import Glossary, Protected, Protector, needs_model, restore
from .segment import as_sentence, line_spans, remember_spans, split_document, unsplit_lines

HUMAN = "human"
# Sentences per unit of work. On one machine a model translates one batch at a time (see
# engine.LoadedModel), so cutting one model's work into more units buys no parallelism and costs
# a task's overhead per unit (about 60 ms per Prefect task run here); the bound only keeps a
# retry from redoing more than this many sentences.
LOCAL_UNIT_SIZE = 4096
# On a cluster every worker loads its own copy of a model: units small enough that a few of them
# keep every worker busy, big enough that task overhead is small next to the model's time
# (~0.1 s per sentence for a base model on 2 cores).
CLUSTER_UNIT_SIZE = 256
# More sentences than this failing one by one in a unit is not a bad sentence but a broken
# model or engine: the unit fails, and with it the language, instead of bisecting on.
MAX_FAILED_SENTENCES = 8


class Memory(Protocol):
    """Where segment translations are remembered (the store's translation memory)."""

    def lookup(self, source: str, target: str, engine: str, segments: list[str]) -> dict[str, str]: ...

    def save(self, source: str, target: str, engine: str, pairs: dict[str, str]) -> None: ...

    def spans(self, language: str, lines: list[str]) -> dict[str, list[list[int]]]: ...

    def save_spans(self, language: str, spans: dict[str, tuple[tuple[int, int], ...]]) -> None: ...


class Leg(Protocol):
    """One model's step of a route: its languages, and the name the memory keeps its output under
    (a new model version is a new name, so it translates afresh). Hashable (a frozen dataclass):
    units are grouped by leg."""

    source: str
    target: str

    @property
    def engine_id(self) -> str: ...


class Engine(Protocol):
    """What the stage needs from a translation engine: a route between two languages (one leg,
    or two through English), and a leg's sentences translated, in order.

    `route` raises ModelMissingError when nothing covers the pair; `translate` raises
    ModelLoadError when it cannot start at all (the unit fails), anything else when a sentence
    fails (the stage isolates it). An engine rides inside the units to task-runner workers, so
    it must pickle. `engine.ArgosEngine` is the default; another engine is one class with these
    two methods.
    """

    def route(self, source: str, target: str) -> list[Leg]: ...

    def translate(self, leg: Leg, sentences: list[str],
                  progress: Callable[[int], None] | None = None) -> list[str]: ...


@dataclass
class Translation:
    """One translated document, with what a reviewer needs to check it."""

    text: str
    qa: list[dict] = field(default_factory=list)
    segments: list[dict] = field(default_factory=list)  # source/target per sentence, for review
    engines: list[str] = field(default_factory=list)
    error: str | None = None  # set when the model failed on one of its sentences: `text` is unusable

    @property
    def pivot(self) -> bool:
        return len(self.engines) > 1

    @classmethod
    def of_fields(cls, fields: list["Translation"], text: str) -> "Translation":
        """One document's translation from its fields' (each translated as a document of its own),
        the document written out as `text`: the fields' sentences in order, their QA flags
        pointing at them."""
        out = cls(text=text, engines=fields[0].engines if fields else [])
        for part in fields:
            offset = len(out.segments)
            out.segments += part.segments
            out.qa += [{**flag, "segment": flag["segment"] + offset} if "segment" in flag else flag
                       for flag in part.qa]
            out.error = out.error or part.error
        return out


@dataclass
class StageStats:
    segments: int = 0
    unique: int = 0
    from_memory: int = 0
    translated: int = 0


@dataclass(frozen=True)
class Unit:
    """One batch of model work: picklable, so any worker that can run its engine runs it."""

    model: Leg
    segments: tuple[str, ...]
    target: str  # the plan's final target language (for progress), not necessarily model.target
    engine: Engine | None = None  # None: Argos, with the running process's model cache


@dataclass
class UnitResult:
    """What a unit brings back: translations, and the sentences the model failed on (with why)."""

    translations: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # plain strings: any runner can ship them


def run_unit(unit: Unit, cache: ModelCache = MODELS,
             progress: Callable[[int], None] | None = None) -> UnitResult:
    """Translate one unit with its engine (Argos with `cache` unless the unit names another).

    Raises ModelLoadError when the engine cannot start, and the engine's error when more than
    MAX_FAILED_SENTENCES sentences fail on their own; either fails the unit's language.
    """
    engine = unit.engine or ArgosEngine(cache=cache)
    result = UnitResult()
    _translate_isolating(lambda batch, step: engine.translate(unit.model, batch, step), list(unit.segments),
                         result, progress)
    return result


def _translate_isolating(translate: Callable[[list[str], Callable[[int], None] | None], list[str]],
                         sentences: list[str], result: UnitResult,
                         progress: Callable[[int], None] | None) -> None:
    """Translate sentences; when the engine raises, halve the batch until the culprits stand alone."""
    try:
        result.translations.update(zip(sentences, translate(sentences, progress), strict=True))
        return
    except ModelLoadError:
        raise  # not a sentence's fault: no bisecting
    except Exception as exc:
        if len(sentences) == 1:
            result.failed[sentences[0]] = f"{type(exc).__name__}: {exc}"
            if len(result.failed) > MAX_FAILED_SENTENCES:
                raise
            return
    half = len(sentences) // 2  # no progress from retries: those sentences were counted already
    _translate_isolating(translate, sentences[:half], result, None)
    _translate_isolating(translate, sentences[half:], result, None)


class StagePlan:
    """The state of one language pair's translation between units of work."""

    def __init__(self, plans: list[list[str | Protected]], route: list[Leg], source: str, target: str,
                 forced: dict[str, str], memory: Memory | None, stats: StageStats, engine: Engine | None = None):
        self.plans, self.route, self.source, self.target, self.engine = plans, route, source, target, engine
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
        self.failed: dict[str, str] = {}  # segment -> why the model failed on it (fails its documents)

    @property
    def engines(self) -> list[str]:
        return [model.engine_id for model in self.route]

    def next_units(self, unit_size: int = LOCAL_UNIT_SIZE) -> list[Unit]:
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
                return [Unit(model, tuple(missing[i:i + unit_size]), self.target, self.engine)
                        for i in range(0, len(missing), unit_size)]
            self.current = {s: self.known[t] for s, t in self.current.items()}
            self.leg += 1
        return []

    def absorb(self, result: UnitResult) -> None:
        """Take a leg's model output: remember it, then let `next_units` move on."""
        if result.failed:
            # The failed sentences leave the plan (no later leg, no retry); finish() fails
            # the documents that hold them.
            for segment, text in list(self.current.items()):
                if text in result.failed:
                    self.failed[segment] = result.failed[text]
                    del self.current[segment]
        if not result.translations:
            return
        model = self.route[self.leg]
        if self.memory:
            self.memory.save(model.source, model.target, model.engine_id, result.translations)
        self.stats.translated += len(result.translations)
        self.known.update(result.translations)

    def finish(self) -> list[Translation]:
        """Every document put back together; call once `next_units` returns []."""
        if self.error is not None:
            raise self.error
        if self.leg < len(self.route):
            raise RuntimeError("StagePlan.finish called before every unit was translated")
        translated = {**self.current, **self.done}
        checked: dict[tuple[Protected, str], _Checked] = {}
        return [self._failed_document(plan) or _assemble(plan, translated, self.engines, self.forced, checked,
                                                         (self.source, self.target))
                for plan in self.plans]

    def _failed_document(self, plan: list[str | Protected]) -> Translation | None:
        for piece in plan:
            if isinstance(piece, Protected) and piece.text in self.failed:
                return Translation(text="", engines=self.engines,
                                   error=f"the model failed on {piece.original[:80]!r}: {self.failed[piece.text]}")
        return None


def plan_documents(documents: list[str], source: str, target: str, *, glossary: Glossary | None = None,
                   memory: Memory | None = None, models: list[Model] | None = None,
                   stats: StageStats | None = None, engine: Engine | None = None) -> StagePlan:
    """Segment, protect and deduplicate documents, and look them up in the memory.

    `engine` translates (default: the installed Argos packages, or `models` if given). Raises
    ModelMissingError before any work when the engine has no route for the pair.
    """
    route = (engine or ArgosEngine(models)).route(source, target)
    glossary = glossary or Glossary()
    if memory:
        _split_with_memory(documents, source, memory)
    protect = _memo(Protector(glossary, target).protect)  # boilerplate recurs in every release
    plans = [[protect(p.text) if p.translate else p.text for p in split_document(document, source)]
             for document in documents]
    return StagePlan(plans, route, source, target, glossary.translations.get(target, {}), memory,
                     stats if stats is not None else StageStats(), engine)


def _split_with_memory(documents: list[str], language: str, memory: Memory) -> None:
    """Sentence spans of the documents' lines from the memory; lines never seen are split now
    and kept there, so a re-run (a new process) splits only new lines: pysbd is slow."""
    unsplit = unsplit_lines(documents, language)
    if not unsplit:
        return
    known = memory.spans(language, unsplit)
    remember_spans(known, language)
    new = {line: line_spans(line, language) for line in unsplit if line not in known}
    if new:
        memory.save_spans(language, new)


def _memo(function: Callable[[str], Protected]) -> Callable[[str], Protected]:
    results: dict[str, Protected] = {}

    def remembered(text: str) -> Protected:
        if text not in results:
            results[text] = function(text)
        return results[text]

    return remembered


def run_plans(plans: Iterable[StagePlan], run: Callable[[list[Unit]], list[UnitResult | BaseException]],
              unit_size: int = LOCAL_UNIT_SIZE) -> None:
    """Drive plans to the end, handing each round of units (every plan's current leg) to `run`.

    `run` returns one result per unit, in order; an exception in place of a result marks that
    unit's plan failed (`plan.error`) and leaves the other plans going.
    """
    plans = list(plans)
    while True:
        work = interleave([(plan, unit) for plan in plans if plan.error is None for unit in plan.next_units(unit_size)],
                          lanes=MODELS.size)
        if not work:
            return
        results = run([unit for _, unit in work])
        merged: dict[int, UnitResult] = {}
        for (plan, _), result in zip(work, results, strict=True):
            if isinstance(result, BaseException):
                plan.error = plan.error or result
            else:
                into = merged.setdefault(id(plan), UnitResult())
                into.translations.update(result.translations)
                into.failed.update(result.failed)
        for plan in plans:
            if plan.error is None:
                plan.absorb(merged.get(id(plan), UnitResult()))


def interleave(work: list[tuple[StagePlan, Unit]], lanes: int) -> list[tuple[StagePlan, Unit]]:
    """Order units so that neighbours use different models, with at most `lanes` models in turn.

    A runner's workers take units in order. Units of one model queue on that model's lock (one
    batch at a time per model), so a second worker on the same model would mostly wait; units of
    `lanes` models taken in turn keep every worker busy while no more models are in use than
    the cache holds. Each model's units go to the lane with the least work so far.
    """
    by_model: dict[Leg, list[tuple[StagePlan, Unit]]] = {}
    for item in work:
        by_model.setdefault(item[1].model, []).append(item)  # legs are frozen dataclasses: hashable
    queues: list[list[tuple[StagePlan, Unit]]] = [[] for _ in range(max(1, lanes))]
    for items in by_model.values():
        min(queues, key=lambda q: sum(len(unit.segments) for _, unit in q)).extend(items)
    ordered = []
    for row in range(max(map(len, queues))):
        ordered += [queue[row] for queue in queues if row < len(queue)]
    return ordered


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
    engine: Engine | None = None,
) -> list[Translation]:
    """Translate documents (rendered drafts, with `keep` marks) from `source` to `target`, here.

    Raises ModelMissingError before any work when no installed model (or English pivot) covers
    the pair, and TranslationError when the model failed on a sentence of any document.
    """
    plan = plan_documents(documents, source, target, glossary=glossary, memory=memory, models=models, stats=stats,
                          engine=engine)
    run_plans([plan], lambda units: [run_unit(unit, cache, progress) for unit in units])
    translations = plan.finish()
    for translation in translations:
        if translation.error:
            raise TranslationError(translation.error)
    return translations


def _assemble(plan: list[str | Protected], translated: dict[str, str], engines: list[str],
              forced: dict[str, str], checked: dict[tuple[Protected, str], "_Checked"],
              pair: tuple[str, str]) -> Translation:
    out = Translation(text="", engines=engines)
    parts: list[str] = []
    for piece in plan:
        if isinstance(piece, str):
            parts.append(piece)
            continue
        raw = translated.get(piece.text, piece.text)
        if (piece, raw) not in checked:  # boilerplate recurs: each distinct sentence is checked once
            checked[piece, raw] = _check(piece, raw, forced, *pair)
        check = checked[piece, raw]
        index = len(out.segments)
        out.segments.append({"key": piece.text, "values": list(piece.values), "source": piece.original,
                             "target": raw, "text": check.text})
        out.qa.extend({**flag, "segment": index} for flag in check.flags)
        parts.append(check.text)
    out.text = "".join(parts)
    return out


@dataclass(frozen=True)
class _Checked:
    """A sentence's model output with its protected items restored, and what a reviewer must see."""

    text: str
    flags: tuple[dict, ...]  # QA flags, without the segment's index in its document


def _check(piece: Protected, raw: str, forced: dict[str, str], source: str, target: str) -> _Checked:
    text, dropped = restore(as_sentence(raw), piece.values)
    flags = checks.check_sentence(checks.Sentence(
        source=piece.original, target=text, source_lang=source, target_lang=target, values=piece.values,
        misplaced=tuple(dropped), forced=forced, key=piece.text))
    return _Checked(text, tuple(flags))
