"""The queue: drafts grouped by release and language, with filters, and approve-all per group."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from ..core import db
from ..core.errors import ReviewError
from ..deliver.ledger import draft_deliveries
from ..drafts import service, store
from ..platforms import PLATFORMS
from ..records.languages import language_name
from ..translate import checks
from .base import Forbidden, allowed, checked_form, flash, redirect, render, signed_in
from .draft import what_changed
from .publish_now import publish_if_wanted
from .security import Reviewer

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def queue(request: Request, status: str = store.PENDING, lang: str = "", channel: str = "", qa: str = "",
          reviewer: Reviewer = Depends(signed_in)):
    settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        data = queue_data(session, reviewer, status=status, lang=lang, channel=channel, qa=qa)
    return render(request, "queue.html.j2", reviewer=reviewer, refused=None, **data)


@router.post("/approve-all", dependencies=[Depends(checked_form)])
def approve_all(request: Request, release: str = Form(...), lang: str = Form(...),
                seen: list[str] | None = Form(None), reviewer: Reviewer = Depends(signed_in)):
    allowed(reviewer, lang)
    return approve_listed(request, reviewer, release, lang, seen or [])


# Groups (release x language) on one page of the queue: a publishing backlog can hold tens of
# thousands of drafts, and a page of all of them would take seconds and hundreds of MB to build.
QUEUE_GROUPS = 100


def queue_data(session, reviewer: Reviewer, *, status: str, lang: str, channel: str, qa: str) -> dict:
    """Drafts grouped by release and language, oldest first, with counts per status.

    Filtering and counting work on light rows; only the drafts of the groups shown are loaded.
    """
    rows = [r for r in store.draft_summaries(session, lang=lang or None, channel=channel or None)
            if reviewer.may_review(r.lang) and _qa_matches(r, qa)]
    counts = {s: sum(r.status == s for r in rows) for s in store.STATUSES}
    shown_groups: dict[tuple[str, str], list[int]] = {}
    for row in rows:  # oldest first, so groups come oldest first too
        if status == "all" or row.status == status:
            shown_groups.setdefault((row.release_slug, row.lang), []).append(row.id)
    page = list(shown_groups.items())[:QUEUE_GROUPS]
    loaded = {d.id: d for batch in db.in_batches([i for _, ids in page for i in ids])
              for d in store.drafts_by_id(session, batch)}
    groups = []
    for (slug, code), ids in page:
        drafts = [loaded[i] for i in ids if i in loaded]  # a draft deleted since the rows were read is gone
        if drafts:
            groups.append({"slug": slug, "title": drafts[0].release.title, "lang": code, "drafts": drafts,
                           "pending": sum(d.status == store.PENDING for d in drafts)})
    all_langs = [code for code in store.draft_languages(session) if reviewer.may_review(code)]
    kinds = list(checks.CHECKS) + sorted({f.get("kind", "") for r in rows for f in r.qa or []} - set(checks.CHECKS))
    return {"groups": groups, "counts": counts,
            "deliveries": draft_deliveries(session, {(g["slug"], g["lang"], d.channel)
                                                     for g in groups for d in g["drafts"]}),
            "statuses": store.STATUSES, "groups_total": len(shown_groups),
            "filters": {"status": status, "lang": lang, "channel": channel, "qa": qa},
            "languages": all_langs, "channels": ["release", *PLATFORMS], "qa_kinds": kinds}


def _qa_matches(draft, qa: str) -> bool:  # a Draft, or a row of store.draft_summaries
    return service.has_flag(draft.qa, qa)


def _parse_seen(values: list[str]) -> dict[int, tuple[int, str]] | None:
    """{draft id: (revision, status)} from approve-all's hidden `seen` fields ("id:revision:status")."""
    seen = {}
    for value in values:
        parts = value.split(":")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() or parts[2] not in store.STATUSES:
            return None
        seen[int(parts[0])] = (int(parts[1]), parts[2])
    return seen


def approve_listed(request: Request, reviewer: Reviewer, release: str, lang: str, values: list[str]) -> Response:
    """Approve-all for a release and language: the pending drafts the reviewer's page listed, as
    they were listed. If any of them was saved or decided on since, nothing is approved (all or
    nothing) and the page says which changed and how; drafts not listed (prepared since, or
    hidden by a filter) are left for review."""
    settings = request.app.state.settings
    seen = _parse_seen(values)
    if not seen:
        flash(request, "This form is from an older version of the page; nothing was approved. "
                       "Look at the drafts again, then approve.", "error")
        return redirect("/?" + urlencode({"lang": lang}))
    changed: list[dict] = []
    with db.session_scope(settings.db_url) as session:
        drafts = {}
        for draft_id, (revision, status) in seen.items():
            try:
                draft = store.get_draft(session, draft_id)
            except ReviewError as exc:
                flash(request, f"Nothing was approved: {exc}", "error")
                return redirect("/?" + urlencode({"lang": lang}))
            if (draft.release_slug, draft.lang) != (release, lang):
                raise Forbidden(f"Draft {draft_id} is not a draft of {release} in {language_name(lang)}.")
            drafts[draft_id] = draft
        # Look first, so the page can name every draft that changed, not only the first one met.
        changed = [_changed_entry(d, *seen[i]) for i, d in drafts.items() if (d.revision, d.status) != seen[i]]
        if not changed:
            try:  # compare-and-set per draft: one changed between the look above and its write fails them all
                service.decide_in(session, {i: service.Seen(*seen[i]) for i in drafts}, store.APPROVED,
                                 reviewer=reviewer.name, languages=reviewer.languages)
            except store.DraftChanged as exc:
                session.rollback()  # all or nothing: the approvals already written are undone
                changed = [_changed_entry(store.get_draft(session, exc.draft_id), *seen[exc.draft_id])]
            except ReviewError as exc:
                session.rollback()
                flash(request, f"Nothing was approved: {exc}", "error")
                return redirect("/?" + urlencode({"lang": lang}))
        if changed:
            refused = {"heading": f"Nothing was approved: {len(changed)} of the {len(seen)} draft(s) you saw "
                                  "changed since you loaded the page",
                       "drafts": changed}
            data = queue_data(session, reviewer, status=store.PENDING, lang=lang, channel="", qa="")
            return render(request, "queue.html.j2", status_code=409, reviewer=reviewer, refused=refused, **data)
        newer = [d.id for d in store.list_drafts(session, slug=release, lang=lang, status=store.PENDING)
                 if d.id not in seen]
    count = sum(status == store.PENDING for _, status in seen.values())
    flash(request, f"Approved {count} pending draft(s) of {release} in {language_name(lang)}." + (
        f" {len(newer)} other pending draft(s), not listed on your page (prepared since, or filtered out), "
        "were left for review." if newer else ""))
    publish_if_wanted(request, count)
    return redirect("/")


def _changed_entry(draft: store.Draft, seen_revision: int, seen_status: str) -> dict:
    return {"id": draft.id, "channel": draft.channel, "message": what_changed(draft, seen_revision, seen_status)}
