"""The review page: reviewers read machine translations beside the source, fix, approve or reject.

A FastAPI app rendering plain HTML forms (Jinja2, autoescaped), so every essential action works
without JavaScript; small inline scripts only keep a live length count for posts (counted by the
server) and say when background publishing is done. It also serves the published outputs under
/feeds/ and /site/, so a reviewer can see the result.

Edits go through `drafts.service.edit` (a new revision, refused if someone saved in between:
the store decides that atomically, so of two saves made at once exactly one wins);
the sentences a reviewer changed become human entries in the translation memory, which the next
prepare prefers over the machine. Decisions (approve, reject, approve-all) carry the revision and
status the reviewer saw and are refused, saying who did what meanwhile, if either changed: nobody
replaces a decision, or approves a text, they did not see.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import secrets
import signal
import sys
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import anyio
from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from ..core import db
from ..core.config import PROJECT_ROOT, Settings, bundled_templates
from ..core.errors import PressflowError, ReviewError
from ..core.site import SERVED_FOLDERS, files as layout_files
from ..deliver.ledger import draft_deliveries
from ..drafts import reviewers, service, store
from ..memory import fuzzy
from ..platforms import PLATFORMS
from ..publish import ledger
from ..records.languages import language_name, text_direction
from ..translate import checks
from ..translate import layout as layouts
from .publishing import SCHEDULED_DEPLOYMENT, PublishMode, Publisher, mode_from_environment
from .security import (MAX_BODY, SESSION_HOURS, BodyLimit, Reviewer, SecurityHeaders, SignInThrottle, csrf_ok,
                       csrf_token, current_reviewer, is_published_path, secret_key, shared_token, sign_in, sign_out)

SHUTDOWN_WAIT_SECONDS = 30
# The live length count sends the text being typed; posts are at most 3,000 characters, and
# counting is pure-Python regular expressions, so longer texts are refused, not counted.
MAX_COUNTED_CHARS = 20_000
STATUS_LABELS = {store.PENDING: "pending", store.APPROVED: "approved", store.REJECTED: "rejected",
                 store.PUBLISHED: "published", store.SUPERSEDED: "superseded"}


class SignInRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ServerNotConfigured(PressflowError):
    """The review page cannot start: nobody could sign in."""


def create_app(settings: Settings, publish_mode: PublishMode | None = None, *,
               https_only: bool = False, max_body: int = MAX_BODY) -> FastAPI:
    """The review app for the store and output folder of `settings`."""
    mode = publish_mode or mode_from_environment(settings)
    app = FastAPI(title="pressflow review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.settings, app.state.mode = settings, mode
    app.state.publisher = Publisher(settings, mode)
    app.state.templates = _template_env(settings)
    # Failed sign-ins: 5 per account name, 30 per client address (an office behind one NAT), in 5 minutes.
    app.state.throttles = (SignInThrottle(limit=5), SignInThrottle(limit=30))
    # Starlette's session cookie is HttpOnly and signed; SameSite=Lax keeps it off cross-site posts.
    app.add_middleware(SessionMiddleware, secret_key=secret_key(settings.out_dir, settings.secret_key), session_cookie="pressflow_review",
                       max_age=SESSION_HOURS * 3600, same_site="lax", https_only=https_only)
    app.add_middleware(BodyLimit, limit=max_body)
    app.add_middleware(SecurityHeaders, https_only=https_only)  # last added, outermost: on every answer
    for name in SERVED_FOLDERS:
        app.mount(f"/{name}", PublishedFiles(directory=settings.out_dir / name, check_dir=False, html=True), name=name)
    app.add_api_route("/sitemap.xml", _sitemap, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_exception_handler(SignInRequired, _to_sign_in)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(store.NoSuchDraft, _no_such_draft)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.include_router(_routes())
    return app


def _sitemap(request: Request) -> Response:
    """The published sitemap, at the address the pages it lists are served under."""
    path = request.app.state.settings.out_dir / layout_files.sitemap()
    if not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, media_type="application/xml")


class PublishedFiles(StaticFiles):
    """The published outputs. Before the first publish their folder does not exist: that is a
    404 like any missing page (checked again on each request until the folder appears)."""

    async def check_config(self) -> None:
        if not os.path.isdir(self.directory):
            raise StarletteHTTPException(status_code=404)
        await super().check_config()


def run_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve the review page until interrupted (`pressflow serve`)."""
    import uvicorn

    if not shared_token(settings) and reviewers.count_users(settings.db_url) == 0:
        raise ServerNotConfigured(
            "nobody can sign in yet: create a reviewer with `pressflow users add NAME` "
            "(or set PRESSFLOW_REVIEW_TOKEN, or PRESSFLOW_REVIEW_TOKEN_BLOCK, to a shared token for a small team)")
    from .connections import uvicorn_options  # slow clients: time limits and a connection limit

    options = {**proxy_options(settings), **uvicorn_options(settings)}
    app = create_app(settings, https_only=settings.cookie_secure)
    print(f"review page on http://{host}:{port}/  ({app.state.mode.describe()})", flush=True)
    # uvicorn ends a graceful shutdown by re-raising SIGTERM, which would kill the process before
    # its exit handlers run, and one of them stops the temporary Prefect server that publishing
    # in process started. Exiting through SystemExit runs them.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    uvicorn.run(app, host=host, port=port, log_level="warning", **options)


def proxy_options(settings: Settings) -> dict:
    """uvicorn's proxy settings: forwarded headers are believed only from PRESSFLOW_TRUSTED_PROXIES.

    uvicorn's own default believes them from 127.0.0.1, so any local client could claim any
    address (and reset the sign-in throttle's count per address) by sending X-Forwarded-For.
    """
    trusted = [part.strip() for part in settings.trusted_proxies.split(",") if part.strip()]
    for part in trusted:
        if not _is_network(part):  # uvicorn would silently take it for a host name
            raise ServerNotConfigured(f"PRESSFLOW_TRUSTED_PROXIES: {part!r} is not an IP address or network")
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted}


def _is_network(text: str) -> bool:
    try:
        return text == "*" or bool(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return False


@asynccontextmanager
async def _lifespan(app: FastAPI):
    yield
    # A publish run under way finishes before the server stops, rather than being cut off and
    # left as a crashed run in Prefect (its files are safe either way: written atomically).
    await anyio.to_thread.run_sync(app.state.publisher.wait, SHUTDOWN_WAIT_SECONDS)


# --- templates and responses ---------------------------------------------------------------


def _template_env(settings: Settings) -> Environment:
    # Staff may override a template in their templates folder; the bundled ones are the default.
    loader = ChoiceLoader([FileSystemLoader(str(settings.templates_dir / "review")),
                           FileSystemLoader(str(bundled_templates() / "review"))])
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(layout=layout_files, language_name=language_name, text_direction=text_direction, qa_label=qa_label,
                       qa_explanation=checks.explanation,
                       status_label=lambda s: STATUS_LABELS.get(s, s), channel_label=channel_label)
    return env


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page, with the signed-in reviewer, the CSRF token, flash messages and a CSP nonce."""
    nonce = secrets.token_urlsafe(16)
    settings: Settings = request.app.state.settings
    context.setdefault("reviewer", None)
    html = request.app.state.templates.get_template(name).render(
        request=request, csrf=csrf_token(request), nonce=nonce, mode=request.app.state.mode,
        publishing=request.app.state.publisher.status(), flashes=request.session.pop("flash", []),
        source_lang=settings.source_language, **context)
    response = HTMLResponse(html, status_code=status_code)
    response.headers.update({
        "Content-Security-Policy": (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                    "img-src 'self'; connect-src 'self'; form-action 'self'; "
                                    "frame-ancestors 'none'; base-uri 'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    })
    return response


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session.setdefault("flash", []).append({"kind": kind, "text": message})
    request.session["flash"] = request.session["flash"]  # mark the session as changed


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


async def _to_sign_in(request: Request, _exc: SignInRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/signin?" + urlencode({"next": target}))


async def _no_such_draft(request: Request, exc: store.NoSuchDraft) -> Response:
    return render(request, "message.html.j2", status_code=404, title="No such draft", message=str(exc),
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


NOT_PUBLISHED = "Nothing is published at this address (yet): pages and feeds appear after the first publish."


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """A missing page or file answers a 404 page in the review page's style; other errors as FastAPI does."""
    if exc.status_code != 404:
        return await http_exception_handler(request, exc)
    message = NOT_PUBLISHED if is_published_path(request.url.path) else "There is no page at this address."
    return render(request, "message.html.j2", status_code=404, title="Not found", message=message,
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


async def _forbidden(request: Request, exc: Forbidden) -> Response:
    return render(request, "message.html.j2", status_code=403, title="Not allowed", message=exc.message,
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


def qa_label(flag: dict) -> str:
    return checks.describe(flag)


def channel_label(channel: str) -> str:
    """'Press release', 'X post', 'Bluesky post': a channel as translators call it."""
    return "Press release" if channel == "release" else f"{PLATFORMS[channel].title} post" if channel in PLATFORMS \
        else channel


# --- dependencies ----------------------------------------------------------------------------


def signed_in(request: Request) -> Reviewer:
    reviewer = current_reviewer(request, request.app.state.settings.db_url)
    if reviewer is None:
        raise SignInRequired()
    return reviewer


def signed_in_api(request: Request) -> Reviewer:
    """Like `signed_in`, for the page's scripts: a 401 they can read, not a sign-in redirect."""
    reviewer = current_reviewer(request, request.app.state.settings.db_url)
    if reviewer is None:
        raise HTTPException(status_code=401, detail="sign in first")
    return reviewer


def checked_form(request: Request, csrf_token: str = Form("")) -> None:
    """Every POST carries the session's CSRF token, or is refused."""
    if not csrf_ok(request, csrf_token):
        raise Forbidden("This form has expired or did not come from this site. Go back, reload the page and try again.")


def _allowed(reviewer: Reviewer, lang: str) -> None:
    if not reviewer.may_review(lang):
        raise Forbidden(f"You review {', '.join(reviewer.languages)}; this draft is in {language_name(lang)} ({lang}).")


def _safe_next(target: str | None) -> str:
    # Only local paths: a sign-in link must not bounce a reviewer to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


# --- routes ----------------------------------------------------------------------------------


def _routes():
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request, next: str = "/"):
        return render(request, "signin.html.j2", next=_safe_next(next), error=None,
                      token_enabled=bool(shared_token(request.app.state.settings)))

    @router.post("/signin", dependencies=[Depends(checked_form)])
    def signin(request: Request, name: str = Form(""), password: str = Form(""), next: str = Form("/")):
        if len(name.strip()) > db.NAME_LIMIT:
            return render(request, "signin.html.j2", status_code=400, next=_safe_next(next),
                          error=f"A name has at most {db.NAME_LIMIT} characters.",
                          token_enabled=bool(shared_token(request.app.state.settings)))
        by_name, by_client = request.app.state.throttles
        account, client = name.strip().casefold(), request.client.host if request.client else "-"
        if wait := max(by_name.wait(account), by_client.wait(client)):
            return render(request, "signin.html.j2", status_code=429, next=_safe_next(next),
                          error=f"Too many failed sign-ins. Try again in {wait} seconds.",
                          token_enabled=bool(shared_token(request.app.state.settings)))
        try:
            signed_in = sign_in(request, request.app.state.settings.db_url, name, password)
        except reviewers.AccountError as exc:  # the team token, with a name that may not be used
            return render(request, "signin.html.j2", status_code=400, next=_safe_next(next), error=str(exc),
                          token_enabled=bool(shared_token(request.app.state.settings)))
        if signed_in is None:
            by_name.failed(account)
            by_client.failed(client)
            return render(request, "signin.html.j2", status_code=401, next=_safe_next(next),
                          error="That name and password (or team token) did not match.",
                          token_enabled=bool(shared_token(request.app.state.settings)))
        by_name.succeeded(account)
        return redirect(_safe_next(next))

    @router.post("/signout", dependencies=[Depends(checked_form)])
    def signout(request: Request):
        sign_out(request, request.app.state.settings.db_url)
        return redirect("/signin")

    @router.get("/", response_class=HTMLResponse)
    def queue(request: Request, status: str = store.PENDING, lang: str = "", channel: str = "", qa: str = "",
              reviewer: Reviewer = Depends(signed_in)):
        settings = request.app.state.settings
        with db.session_scope(settings.db_url) as session:
            data = queue_data(session, reviewer, status=status, lang=lang, channel=channel, qa=qa)
        return render(request, "queue.html.j2", reviewer=reviewer, refused=None, **data)

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

    @router.post("/approve-all", dependencies=[Depends(checked_form)])
    def approve_all(request: Request, release: str = Form(...), lang: str = Form(...),
                    seen: list[str] | None = Form(None), reviewer: Reviewer = Depends(signed_in)):
        _allowed(reviewer, lang)
        return approve_listed(request, reviewer, release, lang, seen or [])

    @router.post("/publish", dependencies=[Depends(checked_form)])
    def publish(request: Request, reviewer: Reviewer = Depends(signed_in)):
        _publish(request)
        return redirect("/")

    @router.get("/publishing")
    def publishing(request: Request, reviewer: Reviewer = Depends(signed_in_api)):
        return JSONResponse(request.app.state.publisher.status() or {"running": False, "ok": None, "text": ""},
                            headers={"Cache-Control": "no-store"})

    return router


# --- the queue -------------------------------------------------------------------------------


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


# --- one draft -------------------------------------------------------------------------------


def draft_page(request: Request, draft_id: int, reviewer: Reviewer, *, status_code: int = 200,
               conflict: dict | None = None, refused: dict | None = None) -> HTMLResponse:
    settings = request.app.state.settings
    with db.session_scope(settings.db_url) as session:
        try:
            draft = store.get_draft(session, draft_id)
        except ReviewError as exc:
            return render(request, "message.html.j2", status_code=404, title="No such draft", message=str(exc),
                          reviewer=reviewer)
        _allowed(reviewer, draft.lang)
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
        _allowed(reviewer, draft.lang)
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
        _allowed(reviewer, draft.lang)
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
        _allowed(reviewer, draft.lang)
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
        _publish_if_wanted(request, 1)
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
    _publish_if_wanted(request, count)
    return redirect("/")


def _changed_entry(draft: store.Draft, seen_revision: int, seen_status: str) -> dict:
    return {"id": draft.id, "channel": draft.channel, "message": what_changed(draft, seen_revision, seen_status)}


def _publish_if_wanted(request: Request, approved: int) -> None:
    if not approved:
        return
    if request.app.state.mode.on_approve:
        _publish(request)
    else:
        flash(request, f"Publishing is left to the scheduled deployment {SCHEDULED_DEPLOYMENT}.")


def _publish(request: Request) -> None:
    try:
        flash(request, request.app.state.publisher.request())
    except Exception as exc:  # noqa: BLE001 - the approval stands; say why publishing did not
        flash(request, f"Approved, but publishing failed: {type(exc).__name__}: {exc}", "error")
