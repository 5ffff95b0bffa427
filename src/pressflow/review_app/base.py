"""What every page of the review app shares: templates, rendering, flash messages, the error
pages, and the guards (signed in, the form's CSRF token, the reviewer's languages)."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from fastapi import Form, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..core.config import Settings, bundled_templates
from ..core.site import files as layout_files
from ..drafts import store
from ..platforms import PLATFORMS
from ..records.languages import language_name, text_direction
from ..translate import checks
from .security import Reviewer, csrf_ok, csrf_token, current_reviewer, is_published_path


STATUS_LABELS = {store.PENDING: "pending", store.APPROVED: "approved", store.REJECTED: "rejected",
                 store.PUBLISHED: "published", store.SUPERSEDED: "superseded"}


class SignInRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def template_env(settings: Settings) -> Environment:
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


async def to_sign_in(request: Request, _exc: SignInRequired) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect("/signin?" + urlencode({"next": target}))


async def no_such_draft(request: Request, exc: store.NoSuchDraft) -> Response:
    return render(request, "message.html.j2", status_code=404, title="No such draft", message=str(exc),
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


NOT_PUBLISHED = "Nothing is published at this address (yet): pages and feeds appear after the first publish."


async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    """A missing page or file answers a 404 page in the review page's style; other errors as FastAPI does."""
    if exc.status_code != 404:
        return await http_exception_handler(request, exc)
    message = NOT_PUBLISHED if is_published_path(request.url.path) else "There is no page at this address."
    return render(request, "message.html.j2", status_code=404, title="Not found", message=message,
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


async def forbidden(request: Request, exc: Forbidden) -> Response:
    return render(request, "message.html.j2", status_code=403, title="Not allowed", message=exc.message,
                  reviewer=current_reviewer(request, request.app.state.settings.db_url))


def qa_label(flag: dict) -> str:
    return checks.describe(flag)


def channel_label(channel: str) -> str:
    """'Press release', 'X post', 'Bluesky post': a channel as translators call it."""
    return "Press release" if channel == "release" else f"{PLATFORMS[channel].title} post" if channel in PLATFORMS \
        else channel


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


def allowed(reviewer: Reviewer, lang: str) -> None:
    if not reviewer.may_review(lang):
        raise Forbidden(f"You review {', '.join(reviewer.languages)}; this draft is in {language_name(lang)} ({lang}).")
