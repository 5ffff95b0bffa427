"""One draft: its sentences beside the source, edits, the live length of a post, approve and reject."""

from __future__ import annotations

import difflib

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..core import db
from ..core.config import Settings
from ..core.errors import ReviewError
from ..deliver.ledger import draft_deliveries
from ..drafts import service, store
from ..memory import fuzzy
from ..platforms import PLATFORMS
from ..publish import ledger
from ..translate import layout as layouts
from .base import STATUS_LABELS, allowed, checked_form, flash, redirect, render, signed_in, signed_in_api
from .publish_now import publish_if_wanted
from .security import Reviewer

router = APIRouter()


# The live length count sends the text being typed; posts are at most 3,000 characters, and
# counting is pure-Python regular expressions, so longer texts are refused, not counted.
MAX_COUNTED_CHARS = 20_000


@router.get("/drafts/{draft_id}", response_class=HTMLResponse)
def show_draft(request: Request, draft_id: int, reviewer: Reviewer = Depends(signed_in)):
    return draft_page(request, draft_id, reviewer)


@router.post("/drafts/{draft_id}/save", dependencies=[Depends(checked_form)])
def save(request: Request, draft_id: int, expected_revision: int = Form(...),
         segment: list[str] | None = Form(None), text: str | None = Form(None), note: str = Form(""),
         reviewer: Reviewer = Depends(signed_in)):
    return save_edit(request, draft_id, reviewer, expected_revision, segment, text, note.strip() or None)


@router.post("/drafts/{draft_id}/length", dependencies=[Depends(checked_form)])
def length(request: Request, draft_id: int, segment: list[str] | None = Form(None),
           text: str | None = Form(None), reviewer: Reviewer = Depends(signed_in_api)):
    return post_length(request, draft_id, reviewer, segment, text)


# Decisions carry the revision and the status the reviewer saw (hidden fields of the forms):
# a draft saved or decided on by someone else since, even in an earlier request, is refused.
@router.post("/drafts/{draft_id}/approve", dependencies=[Depends(checked_form)])
def approve(request: Request, draft_id: int, expected_revision: int = Form(...),
            expected_status: str = Form(""), reviewer: Reviewer = Depends(signed_in)):
    return decide(request, draft_id, reviewer, store.APPROVED, expected_revision, expected_status)


@router.post("/drafts/{draft_id}/reject", dependencies=[Depends(checked_form)])
def reject(request: Request, draft_id: int, expected_revision: int = Form(...),
           expected_status: str = Form(""), reason: str = Form(""), reviewer: Reviewer = Depends(signed_in)):
    if not reason.strip():
        flash(request, "Say why you reject the draft, so the translator can act on it.", "error")
        return redirect(f"/drafts/{draft_id}")
    return decide(request, draft_id, reviewer, store.REJECTED, expected_revision, expected_status, reason.strip())


def draft_page(request: Request, draft_id: int, reviewer: Reviewer, *, status_code: int = 200,
               conflict: dict | None = None, refused: dict | None = None) -> HTMLResponse:
    settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        try:
            draft = store.get_draft(session, draft_id)
        except ReviewError as exc:
            return render(request, "message.html.j2", status_code=404, title="No such draft", message=str(exc),
                          reviewer=reviewer)
        allowed(reviewer, draft.lang)
        context = draft_context(session, draft, source_lang=settings.source_language)
    return render(request, "draft.html.j2", status_code=status_code, reviewer=reviewer, conflict=conflict,
                  refused=refused, **context)


def draft_context(session, draft: store.Draft, source_lang: str = "en") -> dict:
    """Everything the review view shows: segments side by side, QA flags, memory suggestions,
    length, history."""
    layout = layouts.current_layout(draft)
    if (draft.meta or {}).get("layout", {}).get("revision") != draft.revision and draft.revision > 1:
        # A draft edited before layouts were kept: align it once, not on every view.
        store.keep_meta(session, draft, {**draft.meta, "layout": layouts.stored(layout, draft.revision)})
    segments = draft.meta.get("segments") or []
    flags_by_segment: dict[int, list[dict]] = {}
    general_flags = []
    for flag in draft.qa:
        if isinstance(flag.get("segment"), int) and layout is not None:
            flags_by_segment.setdefault(flag["segment"], []).append(flag)
        else:
            general_flags.append(flag)
    rows = []
    if layout is not None:
        # cached per draft revision and memory state (memory.fuzzy): a page view stays cheap
        suggestions = fuzzy.draft_suggestions(session, draft, source_lang) if draft.status != store.SUPERSEDED else {}
        # The source column shows the source draft's sentences, not the target rendering's (whose
        # kept values, such as the dateline's date, are localized already).
        sources = service.source_sentences(draft) or [seg["source"] for seg in segments]
        rows = [{"number": i + 1, "source": source, "text": text, "flags": flags_by_segment.get(i, []),
                 "suggestions": suggestions.get(i, [])}
                for i, (source, text) in enumerate(zip(sources, layout.segments))]
    platform = PLATFORMS.get(draft.channel)
    siblings = store.list_drafts(session, slug=draft.release_slug, lang=draft.lang, status=store.PENDING)
    following = [d.id for d in siblings if d.id != draft.id]
    newer = [d.id for d in store.list_drafts(session, slug=draft.release_slug, lang=draft.lang, channel=draft.channel,
                                             status=store.PENDING) if d.fingerprint != draft.fingerprint]
    return {
        "newer_version": newer[-1] if newer and draft.approved_revision else None,
        "published_version": draft.status == store.PUBLISHED or ledger.is_published(session, draft.release_slug,
                                                                                     draft.lang),
        "draft": draft, "release_title": draft.release.title, "rows": rows, "general_flags": general_flags,
        "platform": platform, "length": platform.count(draft.text) if platform else None,
        "history": _history(draft), "editable": draft.status in (store.PENDING, store.APPROVED, store.REJECTED),
        "next_pending": following[0] if following else None, "pending": siblings,
        "deliveries": draft_deliveries(session, [(draft.release_slug, draft.lang, draft.channel)]).get(
            (draft.release_slug, draft.lang, draft.channel), []),
    }


def _history(draft: store.Draft) -> list[dict]:
    """Each revision with who, when, why, and what changed against the one before."""
    history, previous = [], None
    for revision in draft.revisions:
        diff = []
        if previous is not None:
            diff = [line for line in difflib.unified_diff(previous.splitlines(), revision.text.splitlines(),
                                                          lineterm="", n=0) if not line.startswith(("---", "+++", "@@"))]
        history.append({"number": revision.number, "author": revision.author, "note": revision.note,
                        "when": revision.created_at.strftime("%Y-%m-%d %H:%M UTC"), "diff": diff})
        previous = revision.text
    return list(reversed(history))


SENTENCES_CHANGED = "The draft's sentences changed since you opened it; reload it and edit again."


def edited_text(before: layouts.Layout | None, segment_texts: list[str] | None, whole_text: str | None) -> str | None:
    """The text a save of these form fields would store; None if the sentences no longer line up."""
    if segment_texts is not None:
        if before is None or len(segment_texts) != len(before.segments):
            return None
        return before.with_segments([_one_line(t) for t in segment_texts]).text()
    return (whole_text or "").replace("\r\n", "\n")


def post_length(request: Request, draft_id: int, reviewer: Reviewer, segment_texts: list[str] | None,
                whole_text: str | None) -> JSONResponse:
    """The length of the text a save would store, as the draft's platform counts it."""
    with db.session_scope(request.app.state.settings.db_url) as session:
        try:
            draft = store.get_draft(session, draft_id)
        except ReviewError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        allowed(reviewer, draft.lang)
        platform, before = PLATFORMS.get(draft.channel), layouts.current_layout(draft)
    if platform is None:
        return JSONResponse({"error": f"{draft.channel} is not a post: no length limit"}, status_code=404)
    edited = edited_text(before, segment_texts, whole_text)
    if edited is None:
        return JSONResponse({"error": SENTENCES_CHANGED}, status_code=409)
    if len(edited) > MAX_COUNTED_CHARS:
        return JSONResponse({"error": f"longer than {MAX_COUNTED_CHARS} characters: not counted"}, status_code=413)
    # The platform's own counting function without its memo: every keystroke is a new text, and
    # remembering them all would only fill the server's memory.
    count = getattr(platform.count, "__wrapped__", platform.count)
    length = count(edited)
    return JSONResponse({"length": length, "limit": platform.limit, "over": length > platform.limit,
                         "text": f"{length} of {platform.limit}"}, headers={"Cache-Control": "no-store"})


def _one_line(text: str) -> str:
    # A segment is one sentence inside a Markdown line: a line break would break the document.
    return " ".join(text.split())


def save_edit(request: Request, draft_id: int, reviewer: Reviewer, expected_revision: int,
              segment_texts: list[str] | None, whole_text: str | None, note: str | None) -> Response:
    """Save an edit as a new revision (`service.edit`: one alignment, flags recomputed, the
    changed sentences learned once)."""
    settings: Settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        allowed(reviewer, draft.lang)
        revision, status, before = draft.revision, draft.status, layouts.current_layout(draft)
    yours = edited_text(before, segment_texts, whole_text)
    if yours is None:
        flash(request, SENTENCES_CHANGED, "error")
        return redirect(f"/drafts/{draft_id}")
    if revision != expected_revision:
        return _conflict(request, draft_id, reviewer, yours)
    try:
        if segment_texts is not None:
            saved = service.edit_segments(settings, draft_id, dict(enumerate(segment_texts)), author=reviewer.name,
                                         expected_revision=expected_revision, note=note)
        else:
            saved = service.edit(settings, draft_id, yours, author=reviewer.name, expected_revision=expected_revision,
                                note=note)
    except ReviewError as exc:
        # Another save got in between our check above and the store's atomic one.
        if isinstance(exc, store.DraftChanged) and exc.revision != expected_revision:
            return _conflict(request, draft_id, reviewer, yours)
        flash(request, str(exc), "error")
        return redirect(f"/drafts/{draft_id}")
    if saved.revision is None:
        flash(request, "Nothing changed, so nothing was saved.")
        return redirect(f"/drafts/{draft_id}")
    flash(request, f"Saved as revision {saved.revision}." + (
        f" {saved.learned} edited sentence(s) will be reused by the next translation." if saved.learned else "") + (
        f" Checks now: {len(saved.qa)} flag(s)." if saved.qa else " No check flags it.") + (
        " The approved revision stays published until a reviewer approves this one."
        if status in (store.APPROVED, store.PUBLISHED) else ""))
    return redirect(f"/drafts/{draft_id}")


def _conflict(request: Request, draft_id: int, reviewer: Reviewer, yours: str) -> Response:
    settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        latest = draft.revisions[-1]
        conflict = {"yours": yours, "author": latest.author, "revision": draft.revision,
                    "when": latest.created_at.strftime("%Y-%m-%d %H:%M UTC")}
    return draft_page(request, draft_id, reviewer, status_code=409, conflict=conflict)


FORM_TOO_OLD = "This form is from an older version of the page; nothing was decided. Read the draft again, then decide."


def decide(request: Request, draft_id: int, reviewer: Reviewer, status: str, expected_revision: int,
           expected_status: str, reason: str | None = None) -> Response:
    """Approve or reject the draft as the reviewer saw it: not a newer text someone saved
    meanwhile, nor over a decision someone else made meanwhile."""
    settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        draft = store.get_draft(session, draft_id)
        allowed(reviewer, draft.lang)
        if expected_status not in store.STATUSES:
            flash(request, FORM_TOO_OLD, "error")
            return redirect(f"/drafts/{draft_id}")
        try:  # atomic in the store: a save or decision made since the page was loaded makes this one fail
            service.decide_in(session, {draft_id: service.Seen(expected_revision, expected_status)}, status,
                             reviewer=reviewer.name, reason=reason, languages=reviewer.languages)
        except store.DraftChanged:
            session.rollback()
            refused = _decision_refused(store.get_draft(session, draft_id), expected_revision, expected_status,
                                        status, reason)
            return draft_page(request, draft_id, reviewer, status_code=409, refused=refused)
        except ReviewError as exc:
            flash(request, str(exc), "error")
            return redirect(f"/drafts/{draft_id}")
        slug, lang = draft.release_slug, draft.lang
        following = [d.id for d in store.list_drafts(session, slug=slug, lang=lang, status=store.PENDING)
                     if d.id != draft_id]
    flash(request, f"Draft {draft_id} {STATUS_LABELS[status]}.")
    if status == store.APPROVED:
        publish_if_wanted(request, 1)
    return redirect(f"/drafts/{following[0]}" if following else "/")


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def what_changed(draft: store.Draft, seen_revision: int, seen_status: str) -> str:
    """Who did what to `draft` since a reviewer saw it at `seen_revision` in `seen_status`, and how it is now."""
    said = []
    if draft.revision != seen_revision:
        latest = draft.revisions[-1]
        said.append(f"{latest.author} saved revision {draft.revision} at {_when(latest.created_at)}, "
                    f"after you opened revision {seen_revision}.")
    if draft.status != seen_status:
        by = draft.reviewer or "someone"
        if draft.status in (store.APPROVED, store.REJECTED):
            because = f" (reason: {draft.reason})" if draft.status == store.REJECTED and draft.reason else ""
            said.append(f"{by} {STATUS_LABELS[draft.status]} it at {_when(draft.updated_at)}{because}, "
                        f"after you saw it {STATUS_LABELS.get(seen_status, seen_status)}.")
        elif draft.status == store.PUBLISHED:
            said.append(f"It was approved by {by} and published, after you saw it "
                        f"{STATUS_LABELS.get(seen_status, seen_status)}.")
        elif draft.status == store.SUPERSEDED:
            said.append("A newer version of the release was prepared, so this draft was superseded.")
        else:
            said.append(f"It became {STATUS_LABELS.get(draft.status, draft.status)} at {_when(draft.updated_at)}.")
    by_now = f" by {draft.reviewer}" if draft.reviewer and draft.status != store.PENDING else ""
    said.append(f"Now: {STATUS_LABELS.get(draft.status, draft.status)}{by_now}, revision {draft.revision}.")
    return " ".join(said)


def _decision_refused(draft: store.Draft, seen_revision: int, seen_status: str, status: str,
                      reason: str | None) -> dict:
    """What the refusal page says when a decision met a draft changed since the reviewer loaded it."""
    decided = draft.status != seen_status
    return {"heading": f"Not {STATUS_LABELS[status]}: someone else "
                       + ("decided on this draft first" if decided else "changed this draft"),
            "message": what_changed(draft, seen_revision, seen_status),
            "reason": reason}
