"""Shared test set-up: isolated homes for Argos and Prefect, real test models, a Prefect harness.

The environment is set at import time, before anything imports argostranslate (its settings
read ARGOS_PACKAGES_DIR once, at import) or Prefect.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
_HOME = Path(tempfile.mkdtemp(prefix="pressflow-tests-"))
os.environ.update({
    "ARGOS_PACKAGES_DIR": str(_HOME / "argos-packages"),
    "ARGOS_CHUNK_TYPE": "SPACY",
    "XDG_DATA_HOME": str(_HOME / "xdg-data"),
    "XDG_CONFIG_HOME": str(_HOME / "xdg-config"),
    "XDG_CACHE_HOME": str(_HOME / "xdg-cache"),
    "PREFECT_HOME": str(_HOME / "prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
})
os.environ.pop("PREFECT_API_URL", None)
for variable in ("PRESSFLOW_OUT", "PRESSFLOW_DATABASE_URL", "PRESSFLOW_COUNTRIES", "PRESSFLOW_GLOSSARY"):
    os.environ.pop(variable, None)
(_HOME / "argos-packages").mkdir()
# argostranslate's spaCy chunker tries to download a sentence model unless this folder exists;
# packages bundle their own spacy/ pipeline, which takes priority.
(_HOME / "xdg-cache" / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True)

# Built packages are reused across runs (the builder fingerprints its parameters).
MODEL_CACHE = ROOT / "build" / "test-models"
TEST_PAIRS = (("en", "es"), ("en", "zh"), ("en", "ar"))


def pytest_sessionfinish(session, exitstatus):
    _stop_throwaway_postgres()
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def argos_models() -> list[tuple[str, str]]:
    """Tiny genuine Argos packages for en->es, en->zh and en->ar, installed with argostranslate's installer."""
    from pressflow.translate import testmodel
    from pressflow.translate.models import installed_models

    installed = {(m.source, m.target) for m in installed_models()}
    for source, target in TEST_PAIRS:
        if (source, target) not in installed:
            testmodel.install_package(testmodel.build_package(source, target, MODEL_CACHE))
    return list(TEST_PAIRS)


@pytest.fixture(scope="session")
def prefect_harness():
    """A temporary Prefect server and database for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def no_prefect_server(monkeypatch):
    """No Prefect server for this test, as for a user who never configured one: the session's
    harness (`prefect_harness`, once an earlier test started it) stays in Prefect's settings otherwise."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    if "prefect.settings" not in sys.modules:
        yield
        return
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


@pytest.fixture
def settings(tmp_path):
    """Settings pointing at a fresh output folder (and its own SQLite store)."""
    from pressflow.core.config import Settings

    return Settings(out_dir=tmp_path / "out")


@pytest.fixture
def events():
    """The four bundled example events, validated."""
    from pressflow.records import load_records

    result = load_records([EVENTS])
    assert not result.errors, result.errors
    return result.events


@contextlib.contextmanager
def decoding_capped(tokens: str = "24"):
    """The random-weight test model rarely emits </s>: cap its output so translating stays quick."""
    before = os.environ.get("PRESSFLOW_MAX_DECODING_LENGTH")
    os.environ["PRESSFLOW_MAX_DECODING_LENGTH"] = tokens
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PRESSFLOW_MAX_DECODING_LENGTH")
        else:
            os.environ["PRESSFLOW_MAX_DECODING_LENGTH"] = before


def add_release_row(session, *, slug: str, fingerprint: str, source_text: str, title: str = "Office",
                    publish_at=None) -> dict:
    """A release row, and the record version its drafts made by hand stand for, as prepare keeps
    one: the source text's title and paragraphs (a title line, the summary, then the body); returns it."""
    import datetime as dt

    from pressflow.drafts import store

    blocks = [block.strip() for block in source_text.strip().split("\n\n")]
    record = {"title": blocks[0].removeprefix("# "), "date": "2021-09-12", "summary": blocks[1], "body": blocks[2:]}
    store.upsert_release(session, slug=slug, title=title, date=dt.date(2021, 9, 12), publish_at=publish_at,
                         fingerprint=fingerprint, record=record, source_file=None)
    session.flush()
    store.keep_record_version(session, slug=slug, fingerprint=fingerprint, record=record, source_file=None)
    return record


def approve_all(settings) -> None:
    """Stand in for reviewers: approve every pending draft."""
    from pressflow.core import db
    from pressflow.drafts import store

    with db.session_scope(settings.db_url) as session:
        for draft in store.list_drafts(session, status=store.PENDING):
            store.set_status(session, draft, store.APPROVED, reviewer="test")


@pytest.fixture(scope="session")
def prefect_server_env(tmp_path_factory):
    """A real `prefect server start` subprocess for the session, with its event services on (the
    persister that records events, triggers and actions that run automations; `prefect_harness`
    does not promise those). Yields the environment a client or `prefect` command of it uses."""
    from test_prefect_server import PREFECT, Service, free_port, wait_healthy

    home = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home / "home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
           "PREFECT_CLI_PROMPT": "false", "PREFECT_UI_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "INFO",
           "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
           "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "true",
           "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "true",  # triggers and actions both
           "PWD": str(ROOT)}
    server = Service("server", [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env, home)
    try:
        wait_healthy(server, env["PREFECT_API_URL"])
        yield env
    finally:
        server.stop()
        print(f"----- prefect server log -----\n{server.output()[-20000:]}")


@pytest.fixture
def prefect_server(prefect_server_env):
    """This test's Prefect client settings point at the session's real server."""
    from prefect.events.worker import EventsWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect keeps one events worker per process, bound to the server it met first (e.g. an
    # earlier test's harness): stop it so this test's events go to this server, and stop the
    # one made here so later tests do not send theirs to it.
    EventsWorker.drain_all()
    with temporary_settings({PREFECT_API_URL: prefect_server_env["PREFECT_API_URL"]}):
        yield prefect_server_env
        EventsWorker.drain_all()


# --- PostgreSQL ----------------------------------------------------------------------------
# A real server: PRESSFLOW_TEST_POSTGRES_URL (a SQLAlchemy URL of a database on it, e.g.
# postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres, whose user may create
# databases). Without it, where PostgreSQL's binaries are installed (the README's apt line
# installs them), the first test that needs a server starts a throwaway cluster, as .ci/run
# does: loopback only, its own port, trust authentication, removed when the session ends.
# Without either these tests skip and say why, except under CI, where they fail.
POSTGRES_URL = os.environ.get("PRESSFLOW_TEST_POSTGRES_URL")
_postgres: dict = {}  # the throwaway cluster: {"url", "data", "pg_ctl", "as_postgres"} or {"missing": why}


def _postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian keeps them under /usr/lib/postgresql)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: [int(x) for x in p.parts[-3].split(".") if x.isdigit()])
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _start_throwaway_postgres() -> str | None:
    """A PostgreSQL cluster of this session's own, or None (the reason in `_postgres["missing"]`)."""
    if _postgres:
        return _postgres.get("url")
    bin_dir = _postgres_bin()
    if bin_dir is None:
        _postgres["missing"] = "no PostgreSQL binaries (apt-get install postgresql)"
        return None
    # initdb refuses to run as root: the cluster belongs to the postgres user then, as in .ci/run.
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="pressflow-test-pg-"))
    try:
        if as_postgres:
            shutil.chown(data, user="postgres")
        port = _free_port()
        subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(data / "data"), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(data / "data"), "-l", str(data / "log"),
                        "-w", "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {data}", "start"],
                       check=True, capture_output=True, timeout=120)
    except (OSError, subprocess.SubprocessError, LookupError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        _postgres["missing"] = (f"could not start a throwaway PostgreSQL cluster with {bin_dir}: "
                                f"{exc} {detail.decode(errors='replace')[-300:]}".strip())
        shutil.rmtree(data, ignore_errors=True)
        return None
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    _postgres.update(url=url, data=data, pg_ctl=bin_dir / "pg_ctl", as_postgres=as_postgres)
    os.environ["PRESSFLOW_TEST_POSTGRES_URL"] = url  # for tests (and their subprocesses) that read it
    return url


def _stop_throwaway_postgres() -> None:
    if "data" in _postgres:
        subprocess.run([*_postgres["as_postgres"], str(_postgres["pg_ctl"]), "-D", str(_postgres["data"] / "data"),
                        "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(_postgres["data"], ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_server_url() -> str | None:
    """PRESSFLOW_TEST_POSTGRES_URL, else a throwaway cluster's URL, else None."""
    return POSTGRES_URL or _start_throwaway_postgres()


def require_postgres() -> str:
    """The server's URL, or skip (fail under CI=1, where .ci/run starts a server)."""
    url = postgres_server_url()
    if not url:
        reason = f"PRESSFLOW_TEST_POSTGRES_URL is not set and {_postgres.get('missing')}: no PostgreSQL server to test against"
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{reason}; CI is set: .ci/run starts a server, so these tests must run", pytrace=False)
        pytest.skip(reason)
    return url


class PostgresDatabases:
    """Makes fresh databases on the test server (`make(template=None)` returns a URL) and drops
    them all at `drop_all`. Names start with PRESSFLOW_TEST_DB_PREFIX (default pressflow_test)
    and a random part, so people sharing a server do not collide."""

    def __init__(self, server_url: str):
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.server = make_url(server_url)
        self.admin = create_engine(self.server, isolation_level="AUTOCOMMIT")
        self.made: list[str] = []

    def make(self, template: str | None = None) -> str:
        import secrets

        name = f"{os.environ.get('PRESSFLOW_TEST_DB_PREFIX', 'pressflow_test')}_{secrets.token_hex(5)}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        self.made.append(name)
        return self.server.set(database=name).render_as_string(hide_password=False)

    __call__ = make

    def drop_all(self) -> None:
        from sqlalchemy.engine import make_url

        from pressflow.core import db
        from pressflow.drafts import store

        for url in [u for u in db._engines if make_url(u).database in self.made]:
            db._engines.pop(url).dispose()  # a database in use cannot be dropped
        with self.admin.connect() as connection:
            for name in self.made:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture
def postgres_databases():
    """A factory of fresh databases on the test server, dropped after the test."""
    databases = PostgresDatabases(require_postgres())
    yield databases
    databases.drop_all()


@pytest.fixture(scope="module")
def module_postgres_databases():
    """The same, for module fixtures (e.g. a prepared template database), dropped after the module."""
    databases = PostgresDatabases(require_postgres())
    yield databases
    databases.drop_all()


@pytest.fixture
def postgres_url(postgres_databases) -> str:
    """One fresh, empty database on the test server."""
    return postgres_databases()


# --- browsers and the review page's server ----------------------------------------------------
CHROMIUM = os.environ.get("PRESSFLOW_CHROMIUM", "/usr/bin/chromium")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def wait_until_serving(process: subprocess.Popen, base: str, timeout: float) -> None:
    """Wait for a `pressflow serve` subprocess to answer its sign-in page; fail with its output."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/signin").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"pressflow serve did not start:\n{process.stdout.read()}")
        time.sleep(0.2)
