"""Prepare: validated events to drafts awaiting review, in every target language.

Plain functions, one per step, so that the Prefect flows (which add retries, concurrency and
artifacts) and the tests call the same code:

1. `register`: store each release and its English drafts; say which languages still need work
   (a language already stored for a release's record version is never translated again).
   Steps 2-4 then run per chunk of releases (`chunks`), so memory follows the chunk, and per
   target language (`prepare_language`), a few languages at a time (`Steps.languages`):
2. `plan_language`: render every release that needs the language, segment, look up the memory,
   and plan one batched translation pass.
3. The plan's units of model work run anywhere (`translate.stage.run_unit`): here on a few
   threads (`run_threaded`), in the flow on Prefect's task runner (threads or Dask).
4. `store_language`: assemble, check and store the language's drafts, with the notice that they
   await review (`drafts.notices`), in one transaction, as soon as the language is done: a run
   that dies loses only the languages in flight, and the next run does only what is missing.

`prepare` is the one driver: it runs these steps in order, whichever way a run was triggered.
How each step runs is a `Steps` strategy: `Steps` calls the functions (the CLI without a
Prefect server, the review page, tests); the prepare flow (`pressflow.flows.prepare`) passes
one that runs them as Prefect tasks and sends the model work to its task runner. The loop
exists once, here.

Failures stay as small as they can: a missing model skips the language; a template or a
sentence the model fails on fails that language for the releases concerned only.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..core import db
from ..core.config import Settings
from ..core.errors import ModelMissingError, PressflowError, TranslationError, printable
from ..drafts import notices, store
from ..memory.store import SqlMemory
from ..platforms import PLATFORMS
from ..records import Event, LoadResult, load_records
from ..records.languages import target_languages
from ..render import Rendered, Renderer, choose_post, strip_keep
from ..render.document import (DocumentError, ReleaseDocument, parse_release, release_fields, release_markdown,
                               shape_for, stored_document, with_fields)
from ..translate import checks
from ..translate.engine import MODELS, ArgosEngine
from ..translate.protect import Glossary
from ..translate.stage import (LOCAL_UNIT_SIZE, Engine, StagePlan, StageStats, Translation, Unit, UnitResult,
                              plan_documents, run_plans, run_unit)

log = logging.getLogger("pressflow")


@dataclass
class Job:
    """A release that needs translating into some languages."""

    event: Event
    languages: list[str]
    source_texts: dict[str, str]  # channel -> the source-language draft, shown beside each translation


@dataclass
class ReleaseOutcome:
    """One release in a prepare run: its title, whether its record changed, its stored languages."""

    title: str
    status: str  # "new", "changed", "unchanged" (record as stored before) or "translated"
    languages: list[str] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=dict)  # lang -> drafts this run added
    # The record names neither countries nor languages: it is published in the source language
    # only, which its author may not expect (messages.prepared says so).
    source_only: bool = False


@dataclass
class PrepareReport:
    """What prepare did, for the CLI summary, the flow's final state and the Prefect artifact."""

    releases: dict[str, ReleaseOutcome] = field(default_factory=dict)  # slug -> outcome
    skipped: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> reason
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # slug -> lang -> error
    errors: list[str] = field(default_factory=list)  # records refused and paths missing, one line each
    drafts_added: int = 0
    stats: StageStats = field(default_factory=StageStats)
    notices_waiting: int = 0  # notices in the store's outbox not sent yet (to a Prefect server)

    @property
    def ok(self) -> bool:
        """Nothing failed: no record refused, no language failed (a missing model is no failure)."""
        return not (self.errors or self.failed)

    def merge(self, other: "PrepareReport") -> None:
        for slug, info in other.releases.items():
            mine = self.releases.setdefault(slug, ReleaseOutcome(info.title, info.status))
            mine.languages = sorted(set(mine.languages) | set(info.languages))
            mine.added.update(info.added)
            mine.source_only = mine.source_only or info.source_only
        self.errors += other.errors
        for attr in ("skipped", "failed"):
            for slug, langs in getattr(other, attr).items():
                getattr(self, attr).setdefault(slug, {}).update(langs)
        self.drafts_added += other.drafts_added
        for name in ("segments", "unique", "from_memory", "translated"):
            setattr(self.stats, name, getattr(self.stats, name) + getattr(other.stats, name))


def _store_draft(session, event: Event, rendered: Rendered, text_variants: list[str], *, source_text: str,
                 status: str, qa: list | None = None, meta: dict | None = None,
                 document: ReleaseDocument | None = None) -> None:
    """Store one draft; a release translated field by field comes with its `document`, any other
    text is read into one (a source-language release: the template's own structure)."""
    qa = list(qa or [])
    if rendered.channel in PLATFORMS:
        text, variant = choose_post(rendered.channel, tuple(text_variants))
        qa += checks.over_limit(rendered.channel, text)
    else:
        text, variant = text_variants[0], None
    stored = document.model_dump(mode="json") if document is not None else \
        stored_document(rendered.channel, rendered.lang, text, event, source_text)
    store.add_draft(session, slug=event.slug, lang=rendered.lang, channel=rendered.channel,
                    fingerprint=event.fingerprint(), source_text=source_text, text=text, variant=variant,
                    qa=qa, meta=meta or {}, status=status, begun=True, document=stored)


def register(events: list[tuple[Path | None, Event]], settings: Settings) -> tuple[list[Job], PrepareReport]:
    """Store releases and their source-language drafts; return the translation work left."""
    report, jobs = PrepareReport(), []
    renderer, source = Renderer(settings), settings.source_language
    status = store.APPROVED if settings.auto_approve_source else store.PENDING
    for path, event in events:
        targets = target_languages(event.countries, event.languages, source=source, registry=settings.countries_file)
        source_file = str(path.resolve()) if path else None
        with db.session_scope(settings.db_url) as session:
            if clash := slug_clash(session, event, path, source_file):
                report.errors.append(clash)
                continue
            record = event.model_dump(mode="json")
            new = store.get_release(session, event.slug) is None
            _, changed = store.upsert_release(
                session, slug=event.slug, title=event.title, date=event.date, publish_at=event.publish_at,
                fingerprint=event.fingerprint(), record=record, source_file=source_file)
            store.keep_record_version(session, slug=event.slug, fingerprint=event.fingerprint(), record=record,
                                      source_file=source_file)
            todo = [lang for lang in targets if not store.has_drafts(session, event.slug, lang, event.fingerprint())]
            stored = store.has_drafts(session, event.slug, source, event.fingerprint())
            drafts = renderer.drafts(event, source) if todo or not stored else []
            if not stored:
                store.begin_drafts(session, event.slug, source, event.fingerprint())
                for rendered in drafts:
                    texts = [strip_keep(v) for v in rendered.variants]
                    _store_draft(session, event, rendered, texts, source_text=texts[0], status=status)
                    report.drafts_added += 1
                if drafts and status == store.PENDING:  # approved on arrival: nothing to review
                    notices.record(session, notices.AWAITING_REVIEW, event.slug, source)
        state = "new" if new else "changed" if changed else "unchanged"
        report.releases[event.slug] = ReleaseOutcome(event.title, state, [source],
                                                     source_only=not event.countries and event.languages is None)
        if todo:
            jobs.append(Job(event, todo, {d.channel: strip_keep(d.variants[0]) for d in drafts}))
    return jobs, report


def slug_clash(session, event: Event, path: Path | None, source_file: str | None) -> str | None:
    """Why this record may not take its slug, or None: the slug is another release's, prepared
    from another record file that is still there (a record moved to another file is the same
    release; one of two files whose titles make the same slug is not)."""
    other = store.release_rows(session, [event.slug])
    if not other or other[0].source_file in (None, source_file) or not Path(other[0].source_file).is_file():
        return None
    where = printable(path) if path else f"record '{event.title}'"
    return (f"{where}: id: '{event.slug}' is already the release '{other[0].title}' from "
            f"{printable(other[0].source_file)}; give this record an id of its own (e.g. id: {event.slug}-2), "
            "or remove the other file if this record replaces it")


# The CLI registers a listener to draw a progress bar; flows log instead.
_progress_listeners: list[Callable[[str, int], None]] = []


def on_progress(listener: Callable[[str, int], None]) -> None:
    _progress_listeners.append(listener)


ANOTHER_PREPARE = ("another prepare is running on this store; waiting for it to finish (at most "
                   "PRESSFLOW_LOCK_WAIT_MINUTES), then continuing")
_wait_listeners: dict[str, tuple[Callable[[str], None], Callable[[], None]]] = {}


def on_wait(listener: Callable[[str], None], resumed: Callable[[], None] = lambda: None, *,
            owner: str = "cli") -> None:
    """Call `listener(message)` when a prepare has to wait for another, and `resumed()` once it
    holds the store (the CLI prints the message; a flow run shows the wait as its state). One
    pair per `owner`, replacing that owner's earlier one."""
    _wait_listeners[owner] = (listener, resumed)


@contextmanager
def prepare_lock(settings: Settings) -> Iterator[None]:
    """One prepare at a time per store: two at once would insert the same releases and drafts,
    and the slower one would fail on the database's unique constraints. The later one waits,
    then finds the work done (unchanged records add nothing) and continues."""
    waited = []

    def say() -> None:
        waited.append(True)
        log.warning(ANOTHER_PREPARE)
        for listener, _resumed in list(_wait_listeners.values()):
            listener(ANOTHER_PREPARE)

    with db.exclusive(settings.db_url, "prepare", db.PREPARE_LOCK_KEY, on_wait=say,
                      timeout=settings.lock_wait_minutes * 60):
        for _listener, resumed in list(_wait_listeners.values()) if waited else ():
            resumed()
        yield


def progress_for(lang: str) -> Callable[[int], None]:
    """A callback the translation stage calls with the number of segments just translated."""
    def report(count: int) -> None:
        for listener in _progress_listeners:
            listener(lang, count)
    return report


def chunks(jobs: list[Job], settings: Settings) -> Iterator[list[Job]]:
    """The jobs in groups of `settings.chunk_releases`, translated one group after another."""
    for start in range(0, len(jobs), settings.chunk_releases):
        yield jobs[start:start + settings.chunk_releases]


def languages_of(jobs: list[Job]) -> list[str]:
    return list(dict.fromkeys(lang for job in jobs for lang in job.languages))


@dataclass
class LanguageWork:
    """One target language between planning and storing; `plan` is None when nothing is to do."""

    lang: str
    rendered: list[tuple[Job, list[Rendered]]]
    plan: StagePlan | None
    report: PrepareReport
    # Per job, per rendered draft: a release read into its fields before translation (None: a post,
    # or a template whose release did not read as one, translated whole).
    marked: list[list[ReleaseDocument | None]] = field(default_factory=list)


def plan_language(lang: str, jobs: list[Job], settings: Settings, engine: Engine | None = None) -> LanguageWork:
    """Render every release that needs `lang` and plan one batched translation pass for them all."""
    report = PrepareReport()
    jobs = [job for job in jobs if lang in job.languages]
    if not jobs:
        return LanguageWork(lang, [], None, report)
    try:
        rendered, marked, plan = _plan(lang, jobs, settings, report, engine)
    except ModelMissingError as exc:
        reason = str(exc)
        log.warning("%s: %s", lang, reason)
        _record_skips(settings, jobs, lang, reason, report.skipped)
        return LanguageWork(lang, [], None, report)
    except Exception as exc:  # one language failing must not take the others down
        _fail_language(settings, jobs, lang, exc, report)
        return LanguageWork(lang, [], None, report)
    return LanguageWork(lang, rendered, plan, report, marked)


# Languages are planned one at a time, though translated side by side: planning is quick next to
# translating, and the sentence splitter (pysbd) it shares between languages keeps state while it
# splits (two languages splitting the same English lines at once got different sentences).
_planning = threading.Lock()


def plan_languages(languages: list[str], jobs: list[Job], settings: Settings,
                   engine: Engine | None = None) -> list[LanguageWork]:
    """`engine` translates (default: the installed Argos packages)."""
    with _planning:
        return [plan_language(lang, jobs, settings, engine) for lang in languages]


def store_languages(works: list[LanguageWork], settings: Settings) -> PrepareReport:
    report = PrepareReport()
    for work in works:
        report.merge(store_language(work, settings))
    return report


def run_threaded(units: list[Unit], progress: Callable[[str, int], None] | None = None,
                 workers: int | None = None) -> list[UnitResult | BaseException]:
    """Run units on a few threads, as the prepare flow does on Prefect's thread pool.

    No more at once than the model cache holds (units come grouped by model), so that a model
    in use is never evicted and reloaded, and memory follows the cache's bound.
    """
    def run(unit: Unit) -> UnitResult | BaseException:
        step = (lambda n: progress(unit.target, n)) if progress else None
        try:
            return run_unit(unit, progress=step)
        except Exception as exc:  # the unit's language fails; the others go on
            return exc

    with ThreadPoolExecutor(max_workers=workers or MODELS.size, thread_name_prefix="translate") as pool:
        return list(pool.map(run, units))


def store_language(work: LanguageWork, settings: Settings) -> PrepareReport:
    """Assemble and check the translated drafts of a planned language, and store them."""
    report, lang = work.report, work.lang
    if work.plan is None:
        return report
    try:
        translations = work.plan.finish()
    except Exception as exc:
        _fail_language(settings, [job for job, _ in work.rendered], lang, exc, report)
        return report
    results = iter(translations)
    failed: list[tuple[Job, str]] = []
    with db.session_scope(settings.db_url) as session:
        for (job, drafts), marked in zip(work.rendered, work.marked):
            translated = [_translated(rendered, document, results, lang) for rendered, document in zip(drafts, marked)]
            error = next((v.error for variants, _ in translated for v in variants if v.error), None)
            if error:  # a sentence the model failed on fails this release's language, not the others
                failed.append((job, error))
                continue
            store.begin_drafts(session, job.event.slug, lang, job.event.fingerprint())
            for rendered, (variants, document) in zip(drafts, translated):
                meta = {"engines": variants[0].engines, "pivot": variants[0].pivot,
                        "segments": variants[0].segments}
                _store_draft(session, job.event, rendered, [r.text for r in variants],
                             source_text=job.source_texts[rendered.channel],
                             status=store.PENDING, qa=list(variants[0].qa), meta=meta, document=document)
                report.drafts_added += 1
            notices.record(session, notices.AWAITING_REVIEW, job.event.slug, lang)
            report.releases[job.event.slug] = ReleaseOutcome(job.event.title, "translated", [lang],
                                                            {lang: len(drafts)})
    for job, error in failed:  # after the drafts' transaction: SQLite has one writer at a time
        _fail_language(settings, [job], lang, TranslationError(error), report)
    return report


def _fail_language(settings: Settings, jobs: list[Job], lang: str, exc: BaseException, report: PrepareReport) -> None:
    reason = f"translation failed: {exc}" if isinstance(exc, PressflowError) else \
        f"translation failed: {type(exc).__name__}: {exc}"
    log.error("%s: %s\n%s", lang, reason, "".join(traceback.format_exception(exc)))
    _record_skips(settings, jobs, lang, reason, report.failed, tell=True)


def _translated(rendered: Rendered, document: ReleaseDocument | None, results: Iterator[Translation],
                lang: str) -> tuple[list[Translation], ReleaseDocument | None]:
    """One draft's translations, taken from `results` in the order `_plan` gave the texts: a
    post's variants; a release's fields, put back into its document and written out from it."""
    if document is None:
        return [next(results) for _ in rendered.variants], None
    fields = [next(results) for _ in release_fields(document)]
    if any(part.error for part in fields):
        return [Translation.of_fields(fields, "")], None
    translated = with_fields(document, [part.text for part in fields], lang)
    return [Translation.of_fields(fields, release_markdown(translated))], translated


def _marked(rendered: Rendered, event: Event) -> ReleaseDocument | None:
    """A rendered release (keep marks and all) read into its fields, so that translation takes
    them one by one and the translated document never depends on reading machine output back.
    None for a post, or for a template whose release does not read as one: then it is
    translated whole and read afterwards, and approval says what is wrong with it."""
    if rendered.channel in PLATFORMS:
        return None
    try:
        return parse_release(rendered.variants[0], shape_for(event), rendered.lang)
    except DocumentError as exc:
        log.warning("%s (%s): the template's release does not read as one (%s); translating it whole",
                    event.slug, rendered.lang, exc)
        return None


def _plan(lang, jobs, settings, report, engine=None
          ) -> tuple[list[tuple[Job, list[Rendered]]], list[list[ReleaseDocument | None]], StagePlan]:
    """Render every job's drafts in `lang` and plan all their texts as one translation pass: a
    release field by field (`_marked`), a post whole."""
    # A language without a model is skipped before its drafts are rendered: with none installed,
    # rendering every release in every member language was most of a prepare's time.
    (engine or ArgosEngine()).route(settings.source_language, lang)
    renderer = Renderer(settings)
    rendered = []
    for job in jobs:
        try:
            rendered.append((job, renderer.drafts(job.event, lang)))
        except PressflowError as exc:  # a template failing for one release fails that release's language only
            reason = f"rendering failed: {exc}"
            log.error("%s (%s): %s", job.event.slug, lang, reason)
            _record_skips(settings, [job], lang, reason, report.failed, tell=True)
    marked = [[_marked(draft, job.event) for draft in drafts] for job, drafts in rendered]
    documents = [text for (_, drafts), documents in zip(rendered, marked) for draft, document in zip(drafts, documents)
                 for text in (release_fields(document) if document is not None else draft.variants)]
    # One pass for the whole language; the glossary's person names are the union over releases:
    # quote speakers, and organizers who are people (a title says so; organizations get translated).
    speakers = [q.speaker for job in jobs for q in job.event.quotes]
    organizers = [name for job in jobs for name in job.event.organizers]
    glossary = Glossary.load(settings.glossary_file).with_names(speakers).with_names(organizers, titled_only=True)
    plan = plan_documents(documents, settings.source_language, lang, glossary=glossary,
                          memory=SqlMemory(settings.db_url), stats=report.stats, engine=engine)
    return rendered, marked, plan


REASON_KEPT = 2000  # characters of a failure's reason a notice keeps (the run's log has it all)


def _record_skips(settings: Settings, jobs: list[Job], lang: str, reason: str, into: dict,
                  tell: bool = False) -> None:
    """Remember why `lang` is missing for these releases; `tell`: a failure staff are told of."""
    with db.session_scope(settings.db_url) as session:
        for job in jobs:
            if not store.has_drafts(session, job.event.slug, lang, job.event.fingerprint()):
                store.record_skip(session, slug=job.event.slug, lang=lang, fingerprint=job.event.fingerprint(),
                                  reason=reason)
                if tell:
                    notices.record(session, notices.TRANSLATION_FAILED, job.event.slug, lang,
                                   {"reason": reason[:REASON_KEPT]})
            into.setdefault(job.event.slug, {})[lang] = reason


class Steps:
    """How the driver runs each step: here, plain calls in this process, model work on threads.

    The prepare flow subclasses it to run the steps as Prefect tasks (retries, timeouts, names)
    and the model work on its task runner; the driver's loop stays the same.
    """

    unit_size = LOCAL_UNIT_SIZE  # segments per unit of model work

    def __init__(self, progress: Callable[[str, int], None] | None = None, engine: Engine | None = None):
        self.progress, self.engine = progress, engine  # engine None: the installed Argos packages
        # Languages in flight at once (None: all): no more than the model cache holds, so that a
        # model in use is never evicted (each language uses one model at a time).
        self.lanes: int | None = MODELS.size

    def load(self, paths: list[Path]) -> LoadResult:
        return load_records(paths)

    def register(self, events: list[tuple[Path | None, Event]], settings: Settings) -> tuple[list[Job], PrepareReport]:
        return register(events, settings)

    def plan(self, languages: list[str], jobs: list[Job], settings: Settings) -> list[LanguageWork]:
        return plan_languages(languages, jobs, settings, self.engine)

    def run_units(self, units: list[Unit]) -> list[UnitResult | BaseException]:
        return run_threaded(units, self.progress)

    def store(self, works: list[LanguageWork], settings: Settings) -> PrepareReport:
        return store_languages(works, settings)

    def language(self, lang: str, jobs: list[Job], settings: Settings) -> PrepareReport:
        return prepare_language(lang, jobs, settings, self)

    def languages(self, languages: list[str], jobs: list[Job], settings: Settings) -> Iterator[PrepareReport]:
        """Each language's report as it is stored, `lanes` languages at a time."""
        return in_lanes(lambda lang: self.language(lang, jobs, settings), languages, self.lanes)


def in_lanes(work: Callable[[str], PrepareReport], languages: list[str],
             lanes: int | None) -> Iterator[PrepareReport]:
    """`work(lang)` for every language on `lanes` threads, results as they finish. Each thread
    runs in a copy of this context (a Prefect flow run's, when there is one). When a language
    raises, the languages not started yet are not, those in flight finish (their drafts are
    kept), then the error propagates."""
    if len(languages) <= 1:
        yield from map(work, languages)
        return
    with ThreadPoolExecutor(max_workers=lanes or len(languages), thread_name_prefix="language") as pool:
        futures = [pool.submit(contextvars.copy_context().run, work, lang) for lang in languages]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def prepare_language(lang: str, jobs: list[Job], settings: Settings, steps: Steps) -> PrepareReport:
    """Plan, translate and store one language of a chunk: when this returns, its drafts and the
    notice that they await review are in the store."""
    (work,) = steps.plan([lang], jobs, settings)
    if work.plan is not None:
        run_plans([work.plan], steps.run_units, unit_size=steps.unit_size)
    return steps.store([work], settings)


def prepare(events: list[tuple[Path | None, Event]], settings: Settings,
            progress: Callable[[str, int], None] | None = None, engine: Engine | None = None, *,
            steps: Steps | None = None) -> PrepareReport:
    """Register the releases and translate them into every language they need (with `engine`,
    default: the installed Argos packages); `steps` says how each step runs (default: here)."""
    steps = steps or Steps(progress, engine)
    with prepare_lock(settings):  # one prepare at a time per store; a later one waits, then continues
        jobs, report = steps.register(events, settings)
        for chunk in chunks(jobs, settings):  # memory follows the chunk, not the batch
            for stored in steps.languages(languages_of(chunk), chunk, settings):
                report.merge(stored)
    with db.session_scope(settings.db_url) as session:
        report.notices_waiting = notices.waiting_count(session)
    return report


def prepare_sources(settings: Settings, *, paths: list[Path] = (), events: list[Event] = (),
                    steps: Steps | None = None) -> PrepareReport:
    """Prepare records given as files or folders and/or as validated events (the Prefect form).

    A missing path or a refused record is one line in `report.errors`; the rest goes ahead.
    Paths are made absolute first, so a record's source file means the same on any machine
    that later reads the store.
    """
    steps = steps or Steps()
    paths = [Path(p).absolute() for p in paths]
    errors = [f"{printable(path)}: no such file or folder" for path in paths if not path.exists()]
    loaded: list[tuple[Path | None, Event]] = [(None, event) for event in events]
    existing = [path for path in paths if path.exists()]
    if existing:
        result = steps.load(existing)
        errors += [str(error) for error in result.errors]
        loaded += result.events
    for error in errors:
        log.error("%s", error)
    report = prepare(loaded, settings, steps=steps) if loaded else PrepareReport()
    report.errors[:0] = errors
    return report
