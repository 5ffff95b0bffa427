"""Review actions shared by the CLI and the review web page.

An edit is a new revision, never an overwrite; the sentences a reviewer changed become
preferred ("human") entries in the translation memory, so the next release reuses them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..core import db, text_rules
from ..core.config import Settings
from ..core.db import valid_name
from ..core.errors import ReviewError, printable
from ..core.files import FileKindError, read_regular
from ..memory.store import SqlMemory
from ..platforms import PLATFORMS
from ..records import Event
from ..render import RELEASE, document
from ..translate import checks
from ..translate import layout as layouts
from ..translate.protect import Glossary, restore
from ..translate.segment import split_document
from ..translate.stage import HUMAN
from . import announce, store


def flag_counts(flags: list[dict]) -> str:
    """QA flag kinds in order of first appearance, a repeated kind counted once: `protected_missing x12`."""
    counts = Counter(flag["kind"] for flag in flags)
    return ", ".join(kind if count == 1 else f"{kind} x{count}" for kind, count in counts.items())


def _row(draft: store.Draft) -> str:
    flags = f"  QA: {flag_counts(draft.qa)}" if draft.qa else ""
    return (f"{draft.id:>5}  {draft.status:<10} {draft.lang:<6} {draft.channel:<9} {draft.release_slug}"
            f"  (rev {draft.revision}){flags}")


def list_rows(settings: Settings, *, flag: str | None = None, **filters) -> list[str]:
    """One line per draft; `flag` keeps the drafts carrying that QA check ("any": any check,
    "none": no check)."""
    if flag not in (None, "any", "none") and flag not in checks.CHECKS:
        raise ReviewError(f"{flag!r} is not a QA check; use one of: any, none, {', '.join(checks.CHECKS)}")
    if filters.get("status") is not None:
        filters["status"] = status_named(filters["status"])
    with db.session_scope(settings.db_url) as session:
        return [_row(d) for d in store.list_drafts(session, **filters) if has_flag(d.qa, flag)]


def status_named(word: str) -> str:
    """The store's status for a word staff use: "pending" (the review page's word) is "draft";
    any other word not a status is a ReviewError listing them, not an empty list."""
    status = store.PENDING if word.strip().lower() == "pending" else word.strip().lower()
    if status not in store.STATUSES:
        raise ReviewError(f"--status {word!r} is not a draft status; use one of: pending (or draft), "
                          f"{', '.join(s for s in store.STATUSES if s != store.PENDING)}, or all")
    return status


def has_flag(qa: list[dict] | None, flag: str | None) -> bool:
    """Whether a draft's flags match a queue filter (None or "": every draft)."""
    if not flag:
        return True
    if flag == "any":
        return bool(qa)
    if flag == "none":
        return not qa
    return any(f.get("kind") == flag for f in qa or [])


def show(settings: Settings, draft_id: int) -> str:
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        lines = [_row(draft), ""]
        if draft.channel in PLATFORMS:
            platform = PLATFORMS[draft.channel]
            lines.append(f"length {platform.count(draft.text)} of {platform.limit} ({platform.title} counting)")
        for flag in draft.qa:
            where = f" (sentence {flag['segment'] + 1})" if isinstance(flag.get("segment"), int) else ""
            lines.append(f"QA {flag['kind']}{where}: {checks.describe(flag)}")
        kinds = list(dict.fromkeys(flag["kind"] for flag in draft.qa))
        if kinds:
            lines += ["", "what the QA checks mean:"] + [f"  {kind}: {checks.explanation(kind)}" for kind in kinds]
        if draft.approved_revision and draft.approved_revision != draft.revision:
            lines.append(f"revision {draft.approved_revision} is approved and stays published; revision "
                         f"{draft.revision} awaits review")
        if draft.meta.get("pivot"):
            lines.append(f"translated through English: {' then '.join(draft.meta['engines'])}")
        lines += ["", "--- source ---", draft.source_text.rstrip(), "", f"--- {draft.lang} ---", draft.text.rstrip()]
        lines += _suggestion_lines(session, draft, settings.source_language)
        return "\n".join(lines)


def _suggestion_lines(session, draft: store.Draft, source: str) -> list[str]:
    """The memory's fuzzy matches for the sentences without an exact human match."""
    from ..memory import fuzzy

    found = fuzzy.draft_suggestions(session, draft, source)
    if not found:
        return []
    segments = draft.meta.get("segments") or []
    lines = ["", "--- memory suggestions ---"]
    for index, suggestions in sorted(found.items()):
        lines.append(f"sentence {index + 1}: {segments[index]['source']}")
        lines += [suggestion.line() for suggestion in suggestions]
    return lines


MAX_EDIT_BYTES = 1_000_000


def read_edit_file(path: Path) -> str:
    """The new text of a draft from a file, or a ReviewError that says in one line what is wrong."""
    try:
        data = read_regular(path, MAX_EDIT_BYTES)
    except FileNotFoundError:
        raise ReviewError(f"{printable(path)}: no such file") from None
    except FileKindError as exc:
        raise ReviewError(f"{printable(path)}: {exc}") from None
    except OSError as exc:
        raise ReviewError(f"{printable(path)}: cannot read: {exc.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReviewError(f"{printable(path)}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None


def source_sentences(draft: store.Draft) -> list[str] | None:
    """The source draft's sentences, one per translated segment, for the review's source column.

    A segment's own `source` is the sentence as rendered for the target language, with values
    kept from translation already localized there: the dateline reads "Shanghai, 4 de junio de
    2021." The source draft says "Shanghai, 4 June 2021.", which is what a reviewer compares
    against. None when the two do not line up sentence for sentence.
    """
    segments = draft.meta.get("segments") or []
    sentences = [p.text.strip() for p in split_document(draft.source_text, "en") if p.translate]
    return sentences if segments and len(sentences) == len(segments) else None


def get_text(settings: Settings, draft_id: int) -> dict:
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        return {"text": draft.text, "revision": draft.revision}


# --- the one review service: every approval, rejection and edit, whichever way it comes ------
#
# The CLI, the review page, XLIFF and TMX imports all decide and edit through these functions:
# a decision is a compare-and-set on the revision and status the reviewer saw, a batch is all
# or nothing, the actor's languages bound what they may touch, and nothing over its platform's
# limit is ever approved.


@dataclass(frozen=True)
class Seen:
    """A draft as the reviewer saw it: its revision and status (None: as it stands now)."""

    revision: int | None = None
    status: str | None = None


class NotYourLanguage(ReviewError):
    """The actor does not review the draft's language."""


def check_language(languages: list[str] | None, draft: store.Draft, actor: str) -> None:
    """Refuse a draft outside the actor's languages (None or []: every language)."""
    if languages and draft.lang not in languages:
        raise NotYourLanguage(f"draft {draft.id} is in {draft.lang}; {actor} reviews {', '.join(languages)} only")


def check_within_limit(draft: store.Draft) -> None:
    """Refuse to approve a post its platform would not take."""
    platform = PLATFORMS.get(draft.channel)
    if platform is not None and not platform.fits(draft.text):
        raise ReviewError(f"draft {draft.id}: the {platform.title} post is {platform.count(draft.text)} of "
                          f"{platform.limit} ({platform.title} counting); shorten it, then approve it")


def check_document(session, draft: store.Draft) -> None:
    """Refuse to approve a revision whose text does not hold a release's structure: publishing
    reads only the approved revision's document. A revision stored without one (by hand, or
    before documents) gets it now, from the text the reviewer is approving."""
    if draft.channel != RELEASE or store.document_of(session, draft.id, draft.revision) is not None:
        return  # a post's document is its text
    try:
        found = revision_document(session, draft, draft.text)
    except ReviewError as exc:
        raise ReviewError(f"{exc}, then approve it") from None
    store.set_document(session, draft.id, draft.revision, found)


def revision_document(session, draft: store.Draft, text: str) -> dict:
    """`text` as the document of a new revision of `draft`: parsed now, at save time, against the
    record version the draft was made from; a release whose structure is broken is refused in
    one line ("draft 12: paragraph 3 is missing"), never guessed at."""
    if draft.channel != RELEASE:
        return document.PostDocument(lang=draft.lang, channel=draft.channel, text=text).model_dump(mode="json")
    version = store.record_versions(session, [(draft.release_slug, draft.fingerprint)]).get(
        (draft.release_slug, draft.fingerprint))
    if version is None:
        raise document.DocumentError(f"draft {draft.id}: the record version it was made from is not in the store")
    try:
        found = document.release_document(text, Event.model_validate(version.record), draft.source_text, draft.lang)
    except document.DocumentError as exc:
        raise document.DocumentError(f"draft {draft.id}: {exc}") from None
    return found.model_dump(mode="json")


def check_visible(draft: store.Draft) -> None:
    """Refuse to approve a text holding a bidi override, embedding or isolate, or an invisible
    character the records' text rule refuses (an edit or a model may bring one in)."""
    if found := text_rules.problem(draft.text):
        raise ReviewError(f"draft {draft.id} cannot be approved: its text {found}, then approve it")


def decide_in(session, seen: dict[int, Seen], status: str, *, reviewer: str, reason: str | None = None,
              languages: list[str] | None = None) -> list[store.Draft]:
    """Approve or reject these drafts in the caller's transaction; the first that may not be
    decided raises (the caller's rollback then undoes the others: all or nothing)."""
    valid_name(reviewer)
    if status == store.REJECTED and not (reason or "").strip():
        raise ReviewError("say why you reject the draft (--reason), so the translator can act on it")
    decided = []
    for batch in db.in_batches(list(seen)):
        drafts = {d.id: d for d in store.drafts_by_id(session, batch)}
        for draft_id in batch:
            draft = drafts.get(draft_id) or store.get_draft(session, draft_id)  # raises NoSuchDraft
            check_language(languages, draft, reviewer)
            if status == store.APPROVED:
                check_within_limit(draft)
                check_visible(draft)
                check_document(session, draft)
            store.set_status(session, draft, status, reviewer=reviewer, reason=reason,
                             expected_revision=seen[draft_id].revision, expected_status=seen[draft_id].status)
            decided.append(draft)
    if status == store.APPROVED:
        announce.note_approved(session, decided, reviewer)  # an event once the caller commits
    return decided


def decide(settings: Settings, seen: dict[int, Seen], status: str, *, reviewer: str, reason: str | None = None,
           languages: list[str] | None = None) -> int:
    """`decide_in` in a transaction of its own; returns how many drafts were decided."""
    with db.session_scope(settings.db_url) as session:
        return len(decide_in(session, seen, status, reviewer=reviewer, reason=reason, languages=languages))


def pending_ids(settings: Settings, *, lang: str | None = None, slug: str | None = None) -> list[int]:
    with db.session_scope(settings.db_url) as session:
        return store.draft_ids(session, status=store.PENDING, lang=lang, slug=slug)


def approve_all(settings: Settings, *, reviewer: str, lang: str | None = None, slug: str | None = None,
                languages: list[str] | None = None) -> int:
    """Approve every pending draft (of one language or release, if given), all or nothing:
    one that changed or may not be approved meanwhile leaves every one of them pending."""
    ids = pending_ids(settings, lang=lang, slug=slug)
    return decide(settings, {i: Seen(status=store.PENDING) for i in ids}, store.APPROVED, reviewer=reviewer,
                  languages=languages)


@dataclass
class Approval:
    """What `approve_releases` did: how many drafts it approved, which of them carry QA flags,
    and which it left pending (one line each)."""

    count: int = 0
    flags: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)  # (slug, lang) -> kind -> channels
    left: list[str] = field(default_factory=list)


def approve_releases(settings: Settings, slugs: list[str], *, reviewer: str) -> Approval:
    """Approve the pending drafts of these releases only (`run --auto-approve`): other releases
    keep waiting for review. A post over its platform's limit stays pending, named in `left`.

    Nobody read these drafts, so their QA flags are returned for the caller to say out loud.
    """
    approval = Approval()
    with db.session_scope(settings.db_url) as session:
        for slug in slugs:
            for draft in store.list_drafts(session, status=store.PENDING, slug=slug):
                try:
                    check_within_limit(draft)
                    check_visible(draft)
                    check_document(session, draft)
                except ReviewError as exc:
                    approval.left.append(str(exc))
                    continue
                decide_in(session, {draft.id: Seen(draft.revision, draft.status)}, store.APPROVED, reviewer=reviewer)
                approval.count += 1
                if draft.qa:
                    _note_flags(approval.flags.setdefault((slug, draft.lang), {}), draft)
    return approval


def _note_flags(kinds: dict[str, list[str]], draft: store.Draft) -> None:
    for flag in draft.qa:
        channels = kinds.setdefault(flag["kind"], [])
        if draft.channel not in channels:  # a draft may carry one kind for several sentences
            channels.append(draft.channel)


# A draft is a press release or a post: a few thousand characters. An edit is aligned with the
# draft's sentences and checked; far past any real release, that work would only serve an attack
# (a text pasted ten times over), so it is refused (the page's request body may be 1 MB).
MAX_DRAFT_CHARS = 50_000


@dataclass
class Edit:
    """What an edit did: the new revision (None: nothing changed), the sentences the memory
    learned, and the draft's QA flags recomputed on the new text."""

    revision: int | None
    learned: int
    qa: list[dict]


@dataclass(frozen=True)
class Sentence:
    """One translated sentence of a draft as it stands now."""

    index: int  # position in meta["segments"]: stable for the draft's life
    source: str
    text: str
    key: str  # the protected source (⟦n⟧ placeholders): the memory's key
    values: tuple[str, ...]
    flags: list[dict]


def edit(settings: Settings, draft_id: int, text: str, *, author: str, expected_revision: int | None = None,
         note: str | None = None, languages: list[str] | None = None) -> Edit:
    """Save a reviewer's whole new text; learn the sentences they changed.

    The text is aligned with the draft's sentences by the one rule of `translate.layout.align`
    (line by line: unchanged lines keep their sentences, changed ones are followed by their glue,
    else split by the target language's own sentence rules), whichever way the edit came.
    """
    if not text.strip():
        raise ReviewError("the new text is empty; reject the draft instead")
    _check_size(text)
    return _save(settings, draft_id, lambda draft, before: (text, _aligned(draft, before, text)),
                 author=author, expected_revision=expected_revision, note=note, languages=languages)


def edit_segments(settings: Settings, draft_id: int, sentences: dict[int, str], *, author: str,
                  expected_revision: int | None = None, note: str | None = None,
                  languages: list[str] | None = None) -> Edit:
    """Save new translations of some sentences of a draft, by segment index."""
    def rewrite(draft: store.Draft, before: layouts.Layout | None):
        if before is None:
            raise ReviewError(f"draft {draft.id}'s text no longer lines up with its sentences; "
                              "edit its whole text instead")
        texts = list(before.segments)
        for index, sentence in sentences.items():
            if not 0 <= index < len(texts):
                raise ReviewError(f"draft {draft.id} has no sentence {index + 1} (it has {len(texts)})")
            if sentence.strip() != texts[index].strip():
                # A sentence sits inside one Markdown line: a line break would break the document.
                texts[index] = " ".join(sentence.split())
        after = before.with_segments(texts)
        return after.text(), after

    return _save(settings, draft_id, rewrite, author=author, expected_revision=expected_revision, note=note,
                 languages=languages)


def _check_size(text: str) -> None:
    if len(text) > MAX_DRAFT_CHARS:
        raise ReviewError(f"the new text has {len(text):,} characters; a draft may have at most "
                          f"{MAX_DRAFT_CHARS:,}: split the release, or shorten the text")


def _aligned(draft: store.Draft, before: layouts.Layout | None, text: str) -> layouts.Layout | None:
    return layouts.align(before, text, draft.lang, len(draft.meta.get("segments") or []))


def _save(settings: Settings, draft_id: int, rewrite, *, author: str, expected_revision: int | None,
          note: str | None, languages: list[str] | None) -> Edit:
    """Save the text `rewrite` makes as a new revision awaiting review (an edit never approves;
    an approved revision stays published until the new one is approved)."""
    forced = Glossary.load(settings.glossary_file).translations
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        check_language(languages, draft, author)
        if expected_revision is not None and expected_revision != draft.revision:
            # Someone saved since the caller read the draft: this raises DraftChanged, saying who.
            store.edit_draft(session, draft, draft.text, author=author, expected_revision=expected_revision)
        before = layouts.current_layout(draft)
        text, after = rewrite(draft, before)
        if not text.strip():
            raise ReviewError("the new text is empty; reject the draft instead")
        _check_size(text)
        if text == draft.text:
            return Edit(None, 0, list(draft.qa))
        segments = draft.meta.get("segments") or []
        parsed = revision_document(session, draft, text)
        qa = recheck(draft, after, text, source=settings.source_language, forced=forced.get(draft.lang, {}))
        meta = {**draft.meta, "layout": layouts.stored(after, draft.revision + 1)}
        revision = store.edit_draft(session, draft, text, author=author, expected_revision=expected_revision,
                                    note=note, qa=qa, meta=meta, document=parsed)
        learned = layouts.changed_segments(segments, before, after)
        number, lang, slug = revision.number, draft.lang, draft.release_slug
    if learned:
        SqlMemory(settings.db_url, author=author, release=slug).save(settings.source_language, lang, HUMAN,
                                                                     learned)
    return Edit(number, len(learned), qa)


def recheck(draft: store.Draft, layout: layouts.Layout | None, text: str, *, source: str,
            forced: dict[str, str]) -> list[dict]:
    """The draft's QA flags for `text`: every check on each sentence where the sentences line up,
    else on the whole text against the whole source; plus the platform's limit for a post."""
    segments = draft.meta.get("segments") or []
    flags: list[dict] = []
    if layout is not None and len(layout.segments) == len(segments):
        for index, (segment, now) in enumerate(zip(segments, layout.segments)):
            values = tuple(segment.get("values") or ())
            # An item the model dropped stays misplaced until someone edits its sentence.
            misplaced = tuple(restore(segment["target"], values)[1]) if now == segment.get("text") else ()
            sentence = checks.Sentence(source=segment["source"], target=now, source_lang=source,
                                       target_lang=draft.lang, values=values, misplaced=misplaced,
                                       forced=forced, key=segment["key"])
            flags += [{**flag, "segment": index} for flag in checks.check_sentence(sentence)]
    elif draft.lang != source:
        values = tuple(v for segment in segments if segment["source"] in draft.source_text
                       for v in segment.get("values") or ())
        flags += checks.check_sentence(checks.Sentence(source=draft.source_text, target=text, source_lang=source,
                                                       target_lang=draft.lang, values=values, forced=forced))
    return flags + checks.over_limit(draft.channel, text) + checks.invisible_in_draft(text, flags)


def current_segments(settings: Settings, draft_id: int) -> list[Sentence]:
    """The draft's sentences as they stand now ([] when its text no longer lines up with them)."""
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        layout = layouts.current_layout(draft)
        segments = draft.meta.get("segments") or []
        if layout is None or len(layout.segments) != len(segments):
            return []
        by_segment: dict[int, list[dict]] = {}
        for flag in draft.qa:
            if isinstance(flag.get("segment"), int):
                by_segment.setdefault(flag["segment"], []).append(flag)
        return [Sentence(i, segment["source"], now, segment["key"], tuple(segment.get("values") or ()),
                         by_segment.get(i, []))
                for i, (segment, now) in enumerate(zip(segments, layout.segments))]
