"""Sign-in, sessions, cross-site request forgery tokens and request size limits.

The session cookie is Starlette's signed cookie (itsdangerous): it holds a session id and the
session's CSRF token. Who signed in is the session's row in the store (reviewers.start_session),
looked up on every request: signing out, a password change and an account's removal delete
rows, which ends those sessions wherever their cookies were saved. The signing key comes from
PRESSFLOW_SECRET_KEY, or is generated once and kept in OUT/state/review-secret-key, readable by
its owner only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..core import db
from ..core.config import Settings
from ..core.files import inside, private_dir
from ..core.site import SERVED_FOLDERS
from ..drafts import reviewers

SESSION_HOURS = 12  # a sign-in's absolute lifetime; it also ends after Settings.session_idle_minutes unused
MAX_BODY = 1024 * 1024  # a press release with every edit fits many times over
SESSION_KEY_FILE = "review-secret-key"


def secret_key(out_dir: Path, configured: str | None = None) -> str:
    """The session signing key: the configured one (PRESSFLOW_SECRET_KEY, `Settings.secret_key`),
    or created once in OUT/state (mode 0600)."""
    if configured:
        return configured
    path = inside(out_dir, "state", SESSION_KEY_FILE)
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    private_dir(path.parent)
    key = secrets.token_urlsafe(48)
    # O_EXCL: if two servers start at once, one creates the file and the other reads it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def shared_token(settings: Settings) -> str | None:
    """The team's shared sign-in token (PRESSFLOW_REVIEW_TOKEN, or its Secret block), if one is configured."""
    return settings.shared_review_token()


def _token_tag(token: str) -> str:
    # Stored in the session so that changing the token signs out everyone who used the old one.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


@dataclass
class Reviewer:
    """Who is signed in, and which languages they may review ([] = all)."""

    name: str
    languages: list[str] = field(default_factory=list)

    def may_review(self, lang: str) -> bool:
        return not self.languages or lang in self.languages


class SignInThrottle:
    """Failed sign-ins per key (an account name, a client address) in a sliding window: past
    `limit` failures the key is refused until the window moves on, so nobody can guess
    passwords or the team token at the speed of Argon2."""

    def __init__(self, limit: int = 5, window: float = 300.0):
        self.limit, self.window = limit, window
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def wait(self, key: str) -> int:
        """Seconds before `key` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get(key)
            while failures and now - failures[0] > self.window:
                failures.popleft()
            if not failures:
                self._failures.pop(key, None)  # forget quiet keys: the table stays small
                return 0
            return int(self.window - (now - failures[0])) + 1 if len(failures) >= self.limit else 0

    def failed(self, key: str) -> None:
        with self._lock:
            self._failures[key].append(time.monotonic())

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)


def sign_in(request: Request, db_url: str, name: str, password: str) -> Reviewer | None:
    """Check an account's password, or the shared token; remember the reviewer in the session.
    Raises users.AccountError when the token is right but the name may not be used."""
    name = name.strip()
    if not name or not password or len(name) > db.NAME_LIMIT:
        return None
    languages = reviewers.authenticate(db_url, name, password)
    kind = "account"
    if languages is None:
        token = shared_token(request.app.state.settings)
        if not token or not hmac.compare_digest(password.encode("utf-8"), token.encode("utf-8")):
            return None
        # Whoever holds the token names themselves: the name goes into the audit trail, so it follows
        # the names' rule (no look-alike of an account, no name pressflow writes, nothing invisible).
        # AccountError says why, to someone who has shown the token.
        name = reviewers.new_name(db_url, name, "name")
        if reviewers.languages_of(db_url, name) is not None:
            return None  # the token never stands in for a named account's password
        languages, kind = [], _token_tag(token)
    session_id = reviewers.start_session(db_url, name, kind, SESSION_HOURS, _idle_minutes(request))
    request.session.clear()  # a fresh session at sign-in: nothing carried over, not even the CSRF token
    request.session.update({"sid": session_id, "csrf": secrets.token_urlsafe(32)})
    return Reviewer(name, languages)


def _idle_minutes(request: Request) -> int:
    """PRESSFLOW_SESSION_IDLE_MINUTES (Settings.session_idle_minutes): a sign-in unused this long ends."""
    return request.app.state.settings.session_idle_minutes


def sign_out(request: Request, db_url: str) -> None:
    """End this session in the store, so its cookie signs nobody in again, wherever it was saved."""
    if session_id := request.session.get("sid"):
        reviewers.end_session(db_url, session_id)
    request.session.clear()


def current_reviewer(request: Request, db_url: str) -> Reviewer | None:
    """The signed-in reviewer: the session's row in the store, its account (or the token) re-checked
    on every request."""
    session_id = request.session.get("sid")
    found = (reviewers.session_of(db_url, session_id, hours=SESSION_HOURS, idle_minutes=_idle_minutes(request))
             if isinstance(session_id, str) else None)
    if found is None:
        return None
    name, kind, languages = found
    if kind == "account":
        return Reviewer(name, languages)
    token = shared_token(request.app.state.settings)
    if token and kind == _token_tag(token):
        return Reviewer(name, [])
    return None


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use (the sign-in form needs one too)."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get("csrf")
    return bool(expected and submitted) and hmac.compare_digest(expected, submitted)


# The published files (pages, feeds, media) come from records, i.e. from outside: served from the
# review page's own origin, a script among them could act as a signed-in reviewer. `sandbox`
# gives them an opaque origin with scripts, forms and plugins off, whatever the file is; pages
# keep their inline style and their images.
PUBLISHED_POLICY = ("sandbox; default-src 'none'; img-src * data:; media-src *; style-src 'self' 'unsafe-inline'; "
                    "font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
# Answers that are not pages (JSON, redirects, plain errors) need nothing at all.
NOTHING_POLICY = "sandbox; default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_ALWAYS = {
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
    b"cross-origin-opener-policy": b"same-origin",
}


def is_published_path(path: str) -> bool:
    """Whether `path` is one of the published outputs (the folders the app serves, the sitemap)."""
    top = path.strip("/").split("/", 1)[0]
    return top in SERVED_FOLDERS or top.startswith("sitemap")


class SecurityHeaders:
    """Security headers on every response, whoever made it (a page, a static file, a redirect,
    JSON, a 404 or 413): one place, so no route can forget them. Review pages keep the CSP with
    nonces they set; published files always get PUBLISHED_POLICY; the rest NOTHING_POLICY and
    `no-store` (they carry signed-in state)."""

    def __init__(self, app: ASGIApp, *, https_only: bool = False):
        self.app, self.https_only = app, https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        published = is_published_path(scope["path"])

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS.items():
                    headers[name.decode()] = value.decode()
                if published:
                    headers["content-security-policy"] = PUBLISHED_POLICY
                else:
                    headers.setdefault("content-security-policy", NOTHING_POLICY)
                    headers.setdefault("cache-control", "no-store")
                if self.https_only:
                    headers["strict-transport-security"] = "max-age=31536000"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._too_large(scope, receive, send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope, receive, send) -> None:
        message = f"request body too large (limit {self.limit // 1024} KB)"
        await PlainTextResponse(message, status_code=413)(scope, receive, send)


class _TooLarge(Exception):
    pass
