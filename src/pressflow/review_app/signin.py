"""The sign-in page, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse

from ..core import db
from ..drafts import reviewers
from .base import checked_form, redirect, render
from .security import shared_token, sign_in, sign_out

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only local paths: a sign-in link must not bounce a reviewer to another site.
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


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
