"""Review actions shared by the CLI and the review web page.

An edit is a new revision, never an overwrite; the sentences a reviewer changed become
preferred ("human") entries in the translation memory, so the next release reuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import store
from .config import Settings
from .errors import ReviewError
from .platforms import PLATFORMS
from .translate.segment import split_document
from .translate.stage import HUMAN


def _row(draft: store.Draft) -> str:
    flags = f"  QA: {', '.join(f['kind'] for f in draft.qa)}" if draft.qa else ""
    return (f"{draft.id:>5}  {draft.status:<10} {draft.lang:<6} {draft.channel:<9} {draft.release_slug}"
            f"  (rev {draft.revision}){flags}")


def list_rows(settings: Settings, **filters) -> list[str]:
    with store.session_scope(settings.db_url) as session:
        return [_row(d) for d in store.list_drafts(session, **filters)]


def show(settings: Settings, draft_id: int) -> str:
    with store.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        lines = [_row(draft), ""]
        if draft.channel in PLATFORMS:
            platform = PLATFORMS[draft.channel]
            lines.append(f"length {platform.count(draft.text)} of {platform.limit} ({platform.title} counting)")
        for flag in draft.qa:
            lines.append(f"QA {flag['kind']}: {flag.get('items') or flag.get('length') or ''}")
        if draft.meta.get("pivot"):
            lines.append(f"translated through English: {' then '.join(draft.meta['engines'])}")
        lines += ["", "--- source ---", draft.source_text.rstrip(), "", f"--- {draft.lang} ---", draft.text.rstrip()]
        return "\n".join(lines)


def get_text(settings: Settings, draft_id: int) -> dict:
    with store.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        return {"text": draft.text, "revision": draft.revision}


def set_status_many(settings: Settings, draft_ids: list[int], status: str, *, reviewer: str,
                    reason: str | None = None) -> int:
    with store.session_scope(settings.db_url) as session:
        for draft_id in draft_ids:
            store.set_status(session, store.get_draft(session, draft_id), status, reviewer=reviewer, reason=reason)
    return len(draft_ids)


def approve_all(settings: Settings, *, reviewer: str, lang: str | None = None, slug: str | None = None) -> int:
    """Approve every pending draft (of one language or release, if given); returns how many.

    A batch of drafts at a time, each batch its own transaction: memory follows the batch, not
    the review queue, however long it grew. A draft decided by someone else meanwhile is left
    as they decided.
    """
    with store.session_scope(settings.db_url) as session:
        ids = store.draft_ids(session, status=store.PENDING, lang=lang, slug=slug)
    approved = 0
    for batch in store.in_batches(ids):
        with store.session_scope(settings.db_url) as session:
            for draft in store.drafts_by_id(session, batch, status=store.PENDING):
                store.set_status(session, draft, store.APPROVED, reviewer=reviewer)
                approved += 1
    return approved


@dataclass
class Approval:
    """What `approve_releases` did: how many drafts it approved, and which of them carry QA flags."""

    count: int = 0
    flags: dict[tuple[str, str], dict[str, list[str]]] = field(default_factory=dict)  # (slug, lang) -> kind -> channels


def approve_releases(settings: Settings, slugs: list[str], *, reviewer: str) -> Approval:
    """Approve the pending drafts of these releases only: other releases keep waiting for review.

    Nobody read these drafts, so their QA flags are returned for the caller to say out loud.
    """
    approval = Approval()
    with store.session_scope(settings.db_url) as session:
        for slug in slugs:
            for draft in store.list_drafts(session, status=store.PENDING, slug=slug):
                store.set_status(session, draft, store.APPROVED, reviewer=reviewer)
                approval.count += 1
                if draft.qa:
                    _note_flags(approval.flags.setdefault((slug, draft.lang), {}), draft)
    return approval


def _note_flags(kinds: dict[str, list[str]], draft: store.Draft) -> None:
    for flag in draft.qa:
        channels = kinds.setdefault(flag["kind"], [])
        if draft.channel not in channels:  # a draft may carry one kind for several sentences
            channels.append(draft.channel)


def edit(settings: Settings, draft_id: int, text: str, *, author: str, expected_revision: int | None = None,
         note: str | None = None) -> int:
    """Save a reviewer's text; learn the sentences they changed. Returns the new revision number."""
    if not text.strip():
        raise ReviewError("the new text is empty; reject the draft instead")
    with store.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        revision = store.edit_draft(session, draft, text, author=author, expected_revision=expected_revision, note=note)
        learned = learned_segments(draft.meta.get("segments") or [], text, draft.lang)
        number, source, lang = revision.number, settings.source_language, draft.lang
    if learned:
        store.SqlMemory(settings.db_url, author=author).save(source, lang, HUMAN, learned)
    return number


def learned_segments(segments: list[dict], text: str, lang: str) -> dict[str, str]:
    """Pair the edited text's sentences with the draft's source segments, where they line up.

    Returns {protected source segment: human translation with placeholders}. Protected values
    are turned back into placeholders so the entry fits every release that uses the sentence.
    """
    edited = [p.text for p in split_document(text, "en") if p.translate]
    if len(edited) != len(segments):
        return {}  # sentences were merged or split: no safe alignment, learn nothing
    learned = {}
    for segment, new in zip(segments, edited):
        if new.strip() == segment["text"].strip():
            continue
        with_placeholders = new
        for index, value in enumerate(segment["values"]):
            with_placeholders = with_placeholders.replace(value, f"⟦{index}⟧", 1)
        learned[segment["key"]] = with_placeholders
    return learned
