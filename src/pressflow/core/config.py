"""Settings in one place, read from the environment (PRESSFLOW_*) with sensible defaults.

Every PRESSFLOW_* variable is a field here, read once when a `Settings` is made. Flows, the CLI
and the review app take a `Settings` and pass it on as an object: nothing downstream reads the
environment, and nothing writes it to carry a value along (the CLI's `--countries` becomes
`countries_file` of the settings it passes).

Exception by design: the translation engine's knobs (`batch_size`, `max_decoding_length`,
`threads`, `model_cache`) belong to the process that runs the model, which on a Dask cluster
is a worker on another machine, so the engine reads them from a `Settings()` of its own
process (`engine_settings()`), not from the flow's.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from .errors import ConfigError

# The repository checkout (editable install): where `templates/` and `events/` live.
PROJECT_ROOT = Path(__file__).resolve().parents[3]


def bundled_templates() -> Path:
    """The templates pressflow ships: the copy a wheel carries (`pressflow/templates`, copied
    from the checkout's `templates/` when the wheel is built, see setup.py), else the
    checkout's own `templates/` (an editable install, or running from the source tree)."""
    packaged = Path(__file__).resolve().parents[1] / "templates"
    return packaged if packaged.is_dir() else PROJECT_ROOT / "templates"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PRESSFLOW_{name}", default)


def _flag(name: str, default: str) -> bool:
    return _env(name, default).strip().lower() not in ("0", "false", "no", "off", "")


class Settings(BaseModel):
    """Where things are and who publishes them."""

    # The output folder (`--out`): feeds, pages, outbound files, and state/ (the SQLite store).
    out_dir: Path = Field(default_factory=lambda: Path(_env("OUT", "outputs")))
    # The draft store, any SQLAlchemy URL (PostgreSQL: postgresql+psycopg://..., `pip install -e '.[postgres]'`);
    # unset: SQLite in OUT/state/pressflow.db.
    database_url: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_DATABASE_URL"), repr=False)
    # Secrets a Prefect team keeps in Secret blocks rather than in each machine's environment:
    # these name the block (`prefect block ls`), read from the Prefect server on first use only,
    # so a command that needs neither never imports Prefect. The plain variable wins when both
    # are set.
    database_url_block: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_DATABASE_URL_BLOCK") or None)
    # The shared sign-in token of the review page (instead of, or besides, accounts).
    review_token: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_REVIEW_TOKEN") or None, repr=False)
    # Or: the name of a Prefect Secret block holding that token.
    review_token_block: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_REVIEW_TOKEN_BLOCK") or None)
    # The key that signs review-page session cookies; unset: one created once in OUT/state/.
    secret_key: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_SECRET_KEY") or None, repr=False)
    # The Jinja2 templates (rendered in Jinja2's sandbox); unset: the templates installed with the package.
    templates_dir: Path = Field(default_factory=lambda: Path(_env("TEMPLATES", str(bundled_templates()))))
    # The country-to-language registry (`--countries`); unset: the packaged countries.yaml.
    countries_file: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("PRESSFLOW_COUNTRIES")) else None
    )
    # Do-not-translate terms and forced translations; unset: the packaged glossary.yaml.
    glossary_file: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("PRESSFLOW_GLOSSARY")) else None
    )
    # City names per language for datelines and pages (see render/places.py); unset: data/places.yaml.
    places_file: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("PRESSFLOW_PLACES")) else None
    )
    # The language records are written in: its drafts are the source every translation is made from.
    source_language: str = Field(default_factory=lambda: _env("SOURCE_LANGUAGE", "en"))
    # The public address of the site: the base of every link in feeds, pages, sitemaps and posts.
    site_url: str = Field(default_factory=lambda: _env("SITE_URL", "http://127.0.0.1:8000").rstrip("/"))
    # Where reviewers open the review page (`pressflow serve`), for the link in the events that
    # tell them drafts wait. Unset: the site's address, which `pressflow serve` also serves.
    review_url: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_REVIEW_URL") or None)
    # Who publishes, in short: each Atom entry's author, the masthead's short name.
    organization: str = Field(default_factory=lambda: _env("ORGANIZATION", "ANSO"))
    # The site's masthead: the organization's full name beside its short one, and its logo (a
    # web address, or a path under the site URL such as /site/media/logo.png; unset: a
    # monogram of the short name), and the address the footer gives for press enquiries.
    organization_name: str = Field(
        default_factory=lambda: _env("ORGANIZATION_NAME", "Alliance of International Science Organizations"))
    # The masthead's logo: a web address or a path under the site URL; unset: a monogram.
    logo_url: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_LOGO") or None)
    # The press contact in every page's footer.
    contact_email: str = Field(default_factory=lambda: _env("CONTACT_EMAIL", "anso@cashq.ac.cn"))
    # tag URI authority for feed entry ids (RFC 4151): a domain the publisher owns, and a date
    # it owned it on. Changing either changes every entry id, so subscribers see duplicates.
    tag_authority: str = Field(default_factory=lambda: _env("TAG_AUTHORITY", "anso.org.cn,2021"))
    # Off: source-language drafts are reviewed like every other. On: they are approved as soon as
    # they are prepared, for offices whose staff write the record as the final text.
    auto_approve_source: bool = Field(default_factory=lambda: _flag("AUTO_APPROVE_SOURCE", "0"))
    # Entries per feed, newest first.
    feed_limit: int = Field(default_factory=lambda: int(_env("FEED_LIMIT", "50")))
    # A WebSub hub (https://www.w3.org/TR/websub/): every feed names it, and a publish that
    # changed feeds tells it which, so subscribers get them at once instead of polling.
    websub_hub: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_WEBSUB_HUB") or None)
    # Releases translated together. Each chunk is planned, translated and stored before the
    # next, so prepare's memory follows the chunk (~0.5 MB a release in 8 languages), not the
    # batch; 200 releases still fill hundreds of model batches, so batching loses nothing.
    chunk_releases: int = Field(default_factory=lambda: int(_env("CHUNK_RELEASES", "200")), ge=1)
    # Where the prepare flow's model work runs: "threads" (default), or "dask" (a local cluster
    # of `dask_workers` processes, or the running cluster at `dask_address`).
    task_runner: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_TASK_RUNNER") or None)
    # An existing Dask scheduler (tcp://host:8786) for `task_runner` dask; unset: a local cluster.
    dask_address: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_DASK_ADDRESS") or None)
    # Worker processes of the local Dask cluster.
    dask_workers: int = Field(default_factory=lambda: int(_env("DASK_WORKERS", "2")), ge=1)
    # The review page: publish as soon as a reviewer approves (else the scheduled deployment does),
    # and mark its session cookie Secure (behind HTTPS).
    publish_on_approve: bool = Field(default_factory=lambda: _flag("PUBLISH_ON_APPROVE", "1"))
    # Behind HTTPS: session cookies only over HTTPS (and an HSTS header).
    cookie_secure: bool = Field(default_factory=lambda: _flag("COOKIE_SECURE", "0"))
    # A review page sign-in ends after this many minutes without a request (and 12 hours after
    # it began, whatever happens): a screen left signed in on a shared desk does not stay so.
    session_idle_minutes: int = Field(default_factory=lambda: int(_env("SESSION_IDLE_MINUTES", "30")), ge=1, le=12 * 60)
    # The translation engine, in the process that runs the model (see the module docstring).
    # Sentences per CTranslate2 call (16 and 32 measure within 5% of each other on 2 cores).
    batch_size: int = Field(default_factory=lambda: int(_env("BATCH_SIZE", "32")), ge=1)
    # Upper bound on tokens per translated sentence.
    max_decoding_length: int = Field(default_factory=lambda: int(_env("MAX_DECODING_LENGTH", "0")) or 512, ge=1)
    # CTranslate2 threads per model; unset or 0: every core.
    threads: int = Field(default_factory=lambda: int(_env("THREADS", "0")) or (os.cpu_count() or 1), ge=1)
    # Translation models kept loaded at once (memory follows the largest).
    model_cache: int = Field(default_factory=lambda: int(_env("MODEL_CACHE", "2")), ge=1)
    # `pressflow models install FILE`: the most a package may unpack to, in MiB (Argos's packages
    # unpack to a few hundred). A package over it is refused before anything is written.
    model_max_mb: int = Field(default_factory=lambda: int(_env("MODEL_MAX_MB", "1024")), ge=1)

    def site_url_warning(self) -> str | None:
        """A warning when the site address cannot be the public one: left at its default, or a
        loopback or unspecified host. It goes into every canonical link, feed, sitemap and post,
        so a publish with it says so (once a run: `publish`'s report)."""
        import ipaddress
        from urllib.parse import urlsplit

        host = (urlsplit(self.site_url).hostname or "").lower()
        try:
            local = ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
        except ValueError:
            local = host in ("", "localhost") or host.endswith(".localhost")
        if not local:
            return None
        given = "is not set" if "PRESSFLOW_SITE_URL" not in os.environ else f"is {self.site_url}"
        return (f"PRESSFLOW_SITE_URL {given}: every link in the feeds, pages, sitemap and social posts points at "
                f"{self.site_url}, which readers cannot reach; set it to the public address "
                "(e.g. PRESSFLOW_SITE_URL=https://press.example.org) and publish again")

    @property
    def review_page_url(self) -> str:
        return (self.review_url or self.site_url).rstrip("/")

    # Addresses of reverse proxies whose X-Forwarded-For/-Proto the review page believes (comma-
    # separated IPs or networks, uvicorn's forwarded_allow_ips). Empty: none, so nobody can pick
    # the address the sign-in throttle counts by sending a header.
    trusted_proxies: str = Field(default_factory=lambda: _env("TRUSTED_PROXIES", "").strip())
    # `pressflow serve` and slow clients (review_app/connections.py): a request's headers must
    # arrive within the header timeout and its body within the body timeout (at most 30 s each),
    # and at most this many connections stay open (0: what the file limit leaves room for).
    # Checked when `pressflow serve` starts (`connections.uvicorn_options`), not by other commands.
    serve_header_timeout: float = Field(default_factory=lambda: float(_env("SERVE_HEADER_TIMEOUT", "10")))
    # Seconds `pressflow serve` waits for a request's body (at most 30).
    serve_body_timeout: float = Field(default_factory=lambda: float(_env("SERVE_BODY_TIMEOUT", "30")))
    # Connections `pressflow serve` keeps open; 0: what the file limit leaves after 256 files for the store,
    # logs and publishing. Past it the connection waiting longest without a complete request is closed.
    serve_max_connections: int = Field(default_factory=lambda: int(_env("SERVE_MAX_CONNECTIONS", "0")))

    @property
    def db_url(self) -> str:
        """The draft store: SQLite inside the output folder unless a URL (or its Secret block) is configured."""
        if self.database_url:
            return self.database_url
        if self.database_url_block:
            return secret_block_value(self.database_url_block, setting="PRESSFLOW_DATABASE_URL_BLOCK")
        return f"sqlite:///{(self.out_dir / 'state' / 'pressflow.db').resolve()}"

    def shared_review_token(self) -> str | None:
        """The review page's shared sign-in token, from PRESSFLOW_REVIEW_TOKEN or its Secret block."""
        if self.review_token:
            return self.review_token
        if self.review_token_block:
            return secret_block_value(self.review_token_block, setting="PRESSFLOW_REVIEW_TOKEN_BLOCK") or None
        return None

    def with_out(self, out_dir: Path | str | None) -> "Settings":
        return self if out_dir is None else self.model_copy(update={"out_dir": Path(out_dir)})

    def absolute(self) -> "Settings":
        """The same settings with every path absolute (against this process's working folder),
        so that they mean the same in any process or on any machine they are sent to."""
        paths = {name: Path(value).absolute() for name in ("out_dir", "templates_dir", "countries_file", "glossary_file",
                                                                    "places_file")
                 if (value := getattr(self, name)) is not None}
        database_url = self.database_url
        if database_url and database_url.startswith("sqlite:///") and not database_url.startswith("sqlite:////") \
                and ":memory:" not in database_url:
            database_url = f"sqlite:///{Path(database_url.removeprefix('sqlite:///')).absolute()}"
        return self.model_copy(update={**paths, "database_url": database_url})

_secrets: dict[str, str] = {}


def secret_block_value(name: str, *, setting: str) -> str:
    """The value of the Prefect Secret block `name`, read from the Prefect server once per process.

    Once: the review page asks for its token on every request. A changed secret takes effect
    when the process (`pressflow serve`, a worker's flow run) starts again.
    """
    if name not in _secrets:
        if prefect_api_url() is None:  # else Prefect would start a temporary server, empty, to look in
            raise ConfigError(f"{setting}={name} names a Prefect Secret block, but no Prefect server is "
                              f"configured: set PREFECT_API_URL (or `prefect config set PREFECT_API_URL=...`)")
        try:
            from prefect.blocks.system import Secret

            value = Secret.load(name, _sync=True).get()
        except Exception as exc:  # no server, no such block, not a Secret: one line that says which
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise ConfigError(f"{setting}={name}: cannot read that Prefect Secret block ({detail}); "
                              f"create it with `prefect block create secret` or in the Prefect UI, "
                              f"and check PREFECT_API_URL") from exc
        _secrets[name] = value if isinstance(value, str) else str(value)
    return _secrets[name]


def engine_settings() -> Settings:
    """The settings of this process, for the translation engine (read where the model runs)."""
    return Settings()


def prefect_api_url() -> str | None:
    """The Prefect server runs are recorded in (PREFECT_API_URL, or the active Prefect profile's),
    or None when there is none: then pressflow runs without Prefect.

    Found without importing Prefect (about a second) when Prefect is not loaded yet: the
    environment, then the profiles file. Once Prefect is loaded, its own settings answer
    (they include temporary settings, e.g. a test harness).
    """
    import sys

    if "prefect.settings" in sys.modules:
        try:
            from prefect.settings import get_current_settings

            return get_current_settings().api.url or None
        except Exception:  # a broken Prefect profile must not take pressflow down
            pass
    if url := os.environ.get("PREFECT_API_URL"):
        return url
    return _profile_api_url()


def _profile_api_url() -> str | None:
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return url or None
