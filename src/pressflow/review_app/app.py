"""The review app: builds the FastAPI app from its pages, and serves it (`pressflow serve`)."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from ..core.config import Settings
from ..core.errors import PressflowError
from ..core.site import SERVED_FOLDERS, files as layout_files
from ..drafts import reviewers, store
from . import draft, publish_now, queue, signin
from .base import Forbidden, SignInRequired, forbidden, http_error, no_such_draft, template_env, to_sign_in
from .publishing import PublishMode, Publisher, mode_from_environment
from .security import MAX_BODY, SESSION_HOURS, BodyLimit, SecurityHeaders, SignInThrottle, secret_key, shared_token


SHUTDOWN_WAIT_SECONDS = 30


class ServerNotConfigured(PressflowError):
    """The review page cannot start: nobody could sign in."""


def create_app(settings: Settings, publish_mode: PublishMode | None = None, *,
               https_only: bool = False, max_body: int = MAX_BODY) -> FastAPI:
    """The review app for the store and output folder of `settings`."""
    mode = publish_mode or mode_from_environment(settings)
    app = FastAPI(title="pressflow review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.settings, app.state.mode = settings, mode
    app.state.publisher = Publisher(settings, mode)
    app.state.templates = template_env(settings)
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
    app.add_exception_handler(SignInRequired, to_sign_in)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(store.NoSuchDraft, no_such_draft)
    app.add_exception_handler(StarletteHTTPException, http_error)
    for page in (signin, queue, draft, publish_now):
        app.include_router(page.router)
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
