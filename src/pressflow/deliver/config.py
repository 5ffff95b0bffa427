"""The channels file: which accounts each language's posts and releases go to.

A YAML file named by PRESSFLOW_CHANNELS (or `--channels FILE`) whose top level is a list of
accounts. Every field is documented in docs/channels.md. A bad file is refused in one line that
names the entry and the field: `channels.yaml: entry 2 (bluesky): handle: required for bluesky`.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.config import secret_block_value
from ..core.errors import ConfigError

CHANNEL_NAMES = ("bluesky", "mastodon", "email", "x", "linkedin")
# Channels that post for the organisation only when the entry says `enabled: true`.
OFF_BY_DEFAULT = ("x", "linkedin")
DEFAULT_ENDPOINTS = {"x": "https://api.x.com", "linkedin": "https://api.linkedin.com"}


class Account(BaseModel):
    """One entry of the channels file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    channel: Literal["bluesky", "mastodon", "email", "x", "linkedin"]
    languages: list[str] | Literal["*"]
    # An id for the ledger, the status list and events; default `<channel>:<handle or from>`.
    # Changing it makes every delivery of the account new: keep it stable.
    id: str | None = None
    enabled: bool | None = None  # default: true, but false for x and linkedin
    service: str | None = None  # Bluesky: the PDS, e.g. https://bsky.social
    instance: str | None = None  # Mastodon: e.g. https://mastodon.social
    smtp: str | None = None  # e-mail: host:port
    endpoint: str | None = None  # X, LinkedIn: the API base (defaults to the platform's)
    handle: str | None = None  # Bluesky handle or DID; Mastodon @user@host (for display)
    from_: str | None = Field(default=None, alias="from")  # e-mail sender
    to: list[str] | None = None  # e-mail: the list's addresses for this language
    username: str | None = None  # e-mail: SMTP login (default: no login)
    author: str | None = None  # LinkedIn: urn:li:organization:... or urn:li:person:...
    security: Literal["starttls", "tls", "none"] | None = None  # e-mail: default starttls
    unsubscribe: str | None = None  # e-mail: the list's https one-click unsubscribe URL (RFC 8058)
    embargoed_briefings: bool = False  # e-mail: this list takes releases before their embargo ends
    confirm_imap: str | None = None  # e-mail: imap(s)://user@host:port/Mailbox holding a copy (confirmation)
    password_env: str | None = None  # the environment variable holding the password
    token_env: str | None = None  # the environment variable holding the access token
    secret_block: str | None = None  # or: the Prefect Secret block holding it
    secret: str | None = Field(default=None, exclude=True, repr=False)  # resolved, never read from the file

    @field_validator("languages", mode="before")
    @classmethod
    def _languages(cls, value: Any) -> Any:
        if value == "*" or value == ["*"]:
            return "*"
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise ValueError("a list of language codes, or '*'")
        for code in value:
            if not isinstance(code, str) or not code.replace("-", "").isalnum() or len(code) > 12:
                raise ValueError(f"{code!r} is not a language code")
        return value

    @property
    def key(self) -> str:
        return self.id or f"{self.channel}:{self.handle or self.from_ or self.author or self.instance or '?'}"

    @property
    def is_enabled(self) -> bool:
        return self.enabled if self.enabled is not None else self.channel not in OFF_BY_DEFAULT

    def serves(self, language: str) -> bool:
        return self.languages == "*" or language in self.languages

    @property
    def server(self) -> str | None:
        """Where the channel's requests go: a URL, or host:port for SMTP."""
        return {"bluesky": self.service, "mastodon": self.instance, "email": self.smtp}.get(
            self.channel, self.endpoint or DEFAULT_ENDPOINTS.get(self.channel))

    @property
    def server_is_loopback(self) -> bool:
        server = self.server or ""
        host = (urlsplit(server).hostname if "://" in server else server.rsplit(":", 1)[0]) or ""
        return is_loopback(host)


REQUIRED: dict[str, tuple[str, ...]] = {
    "bluesky": ("service", "handle"),
    "mastodon": ("instance",),
    "email": ("smtp", "from_", "to", "unsubscribe"),
    "x": (),
    "linkedin": ("author",),
}
NEEDS_SECRET = ("bluesky", "mastodon", "x", "linkedin")  # e-mail: only when `username` is set


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _field_name(name: str) -> str:
    return "from" if name == "from_" else name


def _check(account: Account) -> None:
    for name in REQUIRED[account.channel]:
        if not getattr(account, name):
            raise ValueError(f"{_field_name(name)}: required for {account.channel}")
    for name in ("service", "instance", "endpoint"):
        value = getattr(account, name)
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError(f"{name}: {value!r} is not an http(s) URL")
    if account.unsubscribe is not None and urlsplit(account.unsubscribe).scheme != "https":
        raise ValueError(f"unsubscribe: {account.unsubscribe!r} is not an https URL (RFC 8058)")
    if account.confirm_imap is not None and (urlsplit(account.confirm_imap).scheme not in ("imap", "imaps")
                                             or not urlsplit(account.confirm_imap).username):
        raise ValueError(f"confirm_imap: {account.confirm_imap!r} is not imap(s)://user@host:port/Mailbox")
    if account.smtp is not None:
        host, _, port = account.smtp.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"smtp: {account.smtp!r} is not host:port")
    sources = [n for n in ("password_env", "token_env", "secret_block") if getattr(account, n)]
    if len(sources) > 1:
        raise ValueError(f"{sources[1]}: give one of password_env, token_env, secret_block")
    if not sources and (account.channel in NEEDS_SECRET or account.username):
        raise ValueError(f"password_env: {account.channel} needs a secret "
                         f"(password_env, token_env or secret_block)")


def resolve_secret(account: Account, *, where: str) -> Account:
    """The account with its secret read from its environment variable or Prefect Secret block."""
    if account.password_env or account.token_env:
        name = account.password_env or account.token_env
        field = "password_env" if account.password_env else "token_env"
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"{where}: {field}: the environment variable {name} is not set")
    elif account.secret_block:
        value = secret_block_value(account.secret_block, setting=f"{where}: secret_block")
    else:
        return account
    return account.model_copy(update={"secret": value})


def load_channels(path: Path | str, *, secrets: bool = True) -> list[Account]:
    """The accounts of the channels file, validated; secrets resolved unless `secrets=False`."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the channels file ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from exc
    if data is None:
        return []
    if not isinstance(data, list):
        raise ConfigError(f"{path}: the top level must be a list of accounts (- channel: ...)")
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(data, start=1):
        label = f"entry {number}" + (f" ({entry.get('channel')})" if isinstance(entry, dict) and entry.get("channel") else "")
        where = f"{path}: {label}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: an account is a mapping (channel: ..., languages: ...)")
        for name in ("secret", "password", "token"):
            if name in entry:
                raise ConfigError(f"{where}: {name}: secrets are not written in the file; name them with "
                                  f"password_env, token_env or secret_block")
        try:
            account = Account.model_validate(entry)
            _check(account)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(_field_name(str(p)) for p in error["loc"]) or "entry"
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "missing":
                message = "required"
            elif error["type"] == "extra_forbidden":
                message = "unknown field (see docs/channels.md)"
            raise ConfigError(f"{where}: {field}: {message}") from None
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if account.key in seen:
            raise ConfigError(f"{where}: id: {account.key!r} is already entry {seen[account.key]}; give each an id")
        seen[account.key] = number
        accounts.append(account)
    if not secrets:
        return accounts
    # Every entry is checked before any secret is read: a bad entry 3 is named before entry 1's unset variable.
    return [resolve_secret(a, where=f"{path}: entry {n} ({a.channel})") if a.is_enabled else a
            for n, a in enumerate(accounts, start=1)]


def channels_file(option: Path | str | None = None) -> Path | None:
    """`--channels FILE`, else PRESSFLOW_CHANNELS, else None (no delivery)."""
    if option:
        return Path(option)
    value = os.environ.get("PRESSFLOW_CHANNELS")
    return Path(value) if value else None


def channel_class(name: str) -> type:
    """The class of the channel `name`: the class in `pressflow.deliver.<name>` whose `name` is it."""
    module = importlib.import_module(f"pressflow.deliver.{'email' if name == 'email' else name}")
    for value in vars(module).values():
        if isinstance(value, type) and getattr(value, "name", None) == name and hasattr(value, "send"):
            return value
    raise ConfigError(f"pressflow.deliver.{name} has no channel class named {name!r}")
