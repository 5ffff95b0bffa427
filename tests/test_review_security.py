"""What an attacker of the review page was shown unable to do, through real HTTP requests.

`pressflow serve` (real uvicorn) for what uvicorn decides (forwarded headers) and for the headers
every answer carries; FastAPI's TestClient over the same app, on real SQLite and PostgreSQL
stores, for sessions, CSRF tokens, names and error pages.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from conftest import wait_until_serving
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from sqlalchemy import select

from pressflow.core import db
from pressflow.core.errors import ReviewError
from pressflow.drafts import reviewers, store
from pressflow.memory.store import SqlMemory
from pressflow.core.config import Settings
from pressflow.review_app import create_app
from pressflow.review_app.publishing import PublishMode

PASSWORD = "correct horse battery"
EVIL_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" onload="fetch(\'/\')">'
            '<script>document.title = "ran"</script></svg>')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serving(settings: Settings, **env: str) -> Iterator[str]:
    """`pressflow serve` on a free loopback port, with `env` added; yields its base URL."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "FORWARDED_ALLOW_IPS")}
    environment.update(PRESSFLOW_PUBLISH_ON_APPROVE="0", **env)
    process = subprocess.Popen([sys.executable, "-m", "pressflow.cli", "serve", "--out", str(settings.out_dir),
                                "--port", str(port)], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    wait_until_serving(process, base, timeout=120)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=60)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, name="alice", password=PASSWORD, **headers):
    token = csrf_of(client.get("/signin").text)
    return client.post("/signin", data={"name": name, "password": password, "csrf_token": token}, headers=headers)


def published_files(out: Path) -> None:
    """What a publish leaves: a page, a feed, media (here a hostile SVG, as a record could once bring)."""
    for path, text in {"site/es/launch.html": "<!doctype html><title>Launch</title><p>Hola</p>",
                       "site/media/evil.svg": EVIL_SVG,
                       "feeds/es/rss.xml": '<?xml version="1.0"?><rss version="2.0"><channel/></rss>',
                       "sitemap.xml": '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>',
                       }.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(text, encoding="utf-8")


# --- headers on every answer (real uvicorn) -----------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    settings = Settings(out_dir=tmp_path_factory.mktemp("served") / "out")
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    published_files(settings.out_dir)
    with serving(settings) as base:
        yield base


def test_published_files_cannot_run_script_in_the_review_origin(server):
    for path in ("/site/es/launch.html", "/site/media/evil.svg", "/feeds/es/rss.xml", "/site/es/missing.html",
                 "/sitemap.xml"):
        response = httpx.get(server + path)
        assert response.status_code == (404 if "missing" in path else 200), path
        policy = response.headers.get("content-security-policy", "")
        directives = {d.strip().split(" ")[0] for d in policy.split(";")}
        assert {"sandbox", "default-src"} <= directives, (path, policy)
        assert "default-src 'none'" in policy and "script-src" not in policy, (path, policy)
        assert response.headers.get("x-content-type-options") == "nosniff", path
        assert response.headers.get("x-frame-options") == "DENY", path
    assert httpx.get(server + "/site/media/evil.svg").headers["content-type"].startswith("image/svg+xml")


def test_json_answers_redirects_and_pages_carry_security_headers(server):
    answers = {
        "redirect to sign-in": httpx.get(server + "/"),
        "JSON 401": httpx.get(server + "/publishing"),
        "JSON 422": httpx.post(server + "/drafts/x/length"),
        "sign-in page": httpx.get(server + "/signin"),
        "413": httpx.post(server + "/signin", content=b"x" * (2 * 1024 * 1024)),
    }
    assert answers["redirect to sign-in"].status_code == 303
    assert answers["JSON 401"].status_code == 401 and answers["JSON 401"].json()
    assert answers["413"].status_code == 413
    for what, response in answers.items():
        headers = response.headers
        assert headers.get("x-content-type-options") == "nosniff", what
        assert headers.get("referrer-policy") == "same-origin", what
        assert "frame-ancestors 'none'" in headers.get("content-security-policy", ""), what
    assert "nonce-" in answers["sign-in page"].headers["content-security-policy"]  # pages keep their own
    assert answers["JSON 401"].headers["cache-control"] == "no-store"


# --- forwarded headers (real uvicorn) ------------------------------------------------------------


def failed_sign_ins(base: str, count: int, forwarded: bool) -> list[int]:
    """Status codes of `count` wrong passwords, for different names, each claiming another address."""
    codes = []
    with httpx.Client(base_url=base) as client:
        for n in range(count):
            headers = {"X-Forwarded-For": f"203.0.113.{n + 1}"} if forwarded else {}
            codes.append(sign_in(client, name=f"guess{n}", password="wrong password", **headers).status_code)
    return codes


PER_ADDRESS = 30  # failed sign-ins an address may make in 5 minutes


def test_a_client_cannot_dodge_the_throttle_by_claiming_other_addresses(tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    with serving(settings) as base:
        codes = failed_sign_ins(base, PER_ADDRESS + 1, forwarded=True)
    assert codes[:PER_ADDRESS] == [401] * PER_ADDRESS
    assert codes[PER_ADDRESS] == 429  # counted as 127.0.0.1, whatever X-Forwarded-For said


def test_forwarded_addresses_count_when_the_proxy_is_trusted(tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    with serving(settings, PRESSFLOW_TRUSTED_PROXIES="127.0.0.1") as base:
        codes = failed_sign_ins(base, PER_ADDRESS + 1, forwarded=True)
    assert codes == [401] * (PER_ADDRESS + 1)  # each one from the address the proxy named


def test_a_malformed_trusted_proxy_setting_stops_the_server_with_one_line(settings):
    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    env = {**os.environ, "PRESSFLOW_TRUSTED_PROXIES": "127.0.0.1, proxy.example"}
    result = subprocess.run([sys.executable, "-m", "pressflow.cli", "serve", "--out", str(settings.out_dir),
                             "--port", str(free_port())], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == ("error: PRESSFLOW_TRUSTED_PROXIES: 'proxy.example' is not an IP address "
                                     "or network")


# --- sessions and CSRF tokens (TestClient, SQLite and PostgreSQL) ---------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def any_store(request, tmp_path) -> Settings:
    """Settings whose store is SQLite, or a fresh database on the PostgreSQL test server."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Settings(out_dir=tmp_path / "out", database_url=url)


@pytest.fixture
def app(any_store):
    reviewers.add_user(any_store.db_url, "alice", PASSWORD, [])
    return create_app(any_store, PublishMode(on_approve=False, via_prefect=False))


def signed_in(app) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client).status_code == 303
    assert client.get("/").status_code == 200
    return client


def replay(app, client: TestClient | str) -> int:
    """The queue's status for a new client holding a copy of `client`'s cookie (or this cookie)."""
    thief = TestClient(app, follow_redirects=False)
    thief.cookies.set("pressflow_review", client if isinstance(client, str) else client.cookies["pressflow_review"])
    return thief.get("/").status_code


def test_a_cookie_saved_before_sign_out_signs_nobody_in(app):
    client = signed_in(app)
    saved = TestClient(app, follow_redirects=False)
    saved.cookies.set("pressflow_review", client.cookies["pressflow_review"])
    token = csrf_of(client.get("/").text)
    assert client.post("/signout", data={"csrf_token": token}).status_code == 303
    assert saved.get("/").status_code == 303  # to the sign-in page
    assert saved.get("/publishing").status_code == 401


def test_a_password_change_ends_every_earlier_session(app, any_store):
    first, second = signed_in(app), signed_in(app)
    reviewers.add_user(any_store.db_url, "alice", "a brand new password", [])  # `pressflow users add` again
    assert replay(app, first) == 303 and replay(app, second) == 303
    assert sign_in(TestClient(app, follow_redirects=False), password="a brand new password").status_code == 303


def test_removing_an_account_ends_its_sessions_even_if_it_comes_back(app, any_store):
    client = signed_in(app)
    reviewers.remove_user(any_store.db_url, "alice")
    assert replay(app, client) == 303
    reviewers.add_user(any_store.db_url, "alice", PASSWORD, [])  # the same name and password again
    assert replay(app, client) == 303


def test_signing_out_of_one_session_leaves_the_others(app):
    phone, laptop = signed_in(app), signed_in(app)
    saved = phone.cookies["pressflow_review"]
    phone.post("/signout", data={"csrf_token": csrf_of(phone.get("/").text)})
    assert replay(app, saved) == 303 and replay(app, laptop) == 200


def with_token(settings: Settings) -> Settings:
    return settings.model_copy(update={"review_token": "a shared team token"})


def test_a_token_session_ends_on_sign_out(any_store):
    app = create_app(with_token(any_store), PublishMode(on_approve=False, via_prefect=False))
    client = TestClient(app, follow_redirects=False)
    assert sign_in(client, name="guest", password="a shared team token").status_code == 303
    saved = client.cookies["pressflow_review"]
    client.post("/signout", data={"csrf_token": csrf_of(client.get("/").text)})
    client.cookies.set("pressflow_review", saved)
    assert client.get("/").status_code == 303


def test_the_csrf_token_changes_at_sign_in(app):
    client = TestClient(app, follow_redirects=False)
    before = csrf_of(client.get("/signin").text)
    assert client.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": before}).status_code == 303
    after = csrf_of(client.get("/").text)
    assert after != before
    # a token learnt before sign-in (e.g. planted by a page that read it) does not pass after
    assert client.post("/signout", data={"csrf_token": before}).status_code == 403


def test_the_store_keeps_no_usable_session_id(app, any_store):
    client = signed_in(app)
    with db.session_scope(any_store.db_url) as session:
        rows = session.scalars(select(reviewers.ReviewSession)).all()
    assert len(rows) == 1 and rows[0].name == "alice"
    cookie = client.cookies["pressflow_review"]
    assert rows[0].id_hash not in cookie


# --- names: one limit everywhere -----------------------------------------------------------------


LONG = "a" * (db.NAME_LIMIT + 1)


def test_an_overlong_name_is_refused_on_the_sign_in_page_in_one_line(any_store):
    client = TestClient(create_app(with_token(any_store), PublishMode(on_approve=False, via_prefect=False)))
    response = sign_in(client, name=LONG, password="a shared team token")
    assert response.status_code == 400
    assert f"A name has at most {db.NAME_LIMIT} characters." in response.text


def test_an_overlong_name_is_refused_by_users_add_and_the_review_cli(any_store):
    from pressflow.cli import app as cli

    env = {"PRESSFLOW_DATABASE_URL": any_store.database_url} if any_store.database_url else {}
    out = ["--out", str(any_store.out_dir)]
    added = CliRunner().invoke(cli, ["users", "add", LONG, *out], env={**env, "PRESSFLOW_NEW_PASSWORD": PASSWORD})
    assert added.exit_code == 1
    assert added.output.strip() == (f"error: reviewer name 'aaaaaaaaaaaaaaaaaaaa'... is {len(LONG)} characters "
                                    f"long; at most {db.NAME_LIMIT}")
    draft_id = add_draft(any_store)
    for command in (["review", "approve", str(draft_id)], ["review", "reject", str(draft_id), "--reason", "no"]):
        result = CliRunner().invoke(cli, [*command, "--reviewer", LONG, *out], env=env)
        assert result.exit_code == 1, result.output
        assert result.output.count("\n") == 1 and "at most 100" in result.output, result.output
    with db.session_scope(any_store.db_url) as session:
        assert store.get_draft(session, draft_id).status == store.PENDING


def add_draft(settings: Settings) -> int:
    with db.session_scope(settings.db_url) as session:
        store.upsert_release(session, slug="office", title="Office", date=dt.date(2021, 9, 12), publish_at=None,
                             fingerprint="f1", record={}, source_file=None)
        draft = store.add_draft(session, slug="office", lang="es", channel="release", fingerprint="f1",
                                source_text="Hello.\n", text="Hola.\n")
        session.flush()
        return draft.id


def test_the_same_limit_holds_on_every_store_entry_point(any_store):
    draft_id = add_draft(any_store)
    with pytest.raises(ReviewError, match="at most 100"), db.session_scope(any_store.db_url) as session:
        store.edit_draft(session, store.get_draft(session, draft_id), "Hola otra vez.\n", author=LONG)
    with pytest.raises(ReviewError, match="at most 100"):
        SqlMemory(any_store.db_url, author=LONG)
    with pytest.raises(reviewers.AccountError, match="at most 100"):
        reviewers.add_user(any_store.db_url, LONG, PASSWORD, [])
    reviewers.add_user(any_store.db_url, "b" * db.NAME_LIMIT, PASSWORD, [])  # the limit itself is fine


# --- error pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/feeds/", "/site/", "/feeds/es/rss.xml", "/site/es/index.html"])
def test_published_paths_before_the_first_publish_are_404_pages(app, path):
    response = TestClient(app, raise_server_exceptions=True).get(path)
    assert response.status_code == 404
    assert "Not found" in response.text and "after the first publish" in response.text
    assert "<style" in response.text  # the review page's own look, not a bare error


def test_a_draft_id_beyond_64_bits_is_a_404(app):
    client = signed_in(app)
    client.raise_server_exceptions = True
    huge = str(2**64)
    assert client.get(f"/drafts/{huge}").status_code == 404
    token = csrf_of(client.get("/").text)
    for action in ("save", "approve"):
        response = client.post(f"/drafts/{huge}/{action}", data={"csrf_token": token, "expected_revision": "1",
                                                                  "expected_status": "draft", "text": "x"})
        assert response.status_code == 404, (action, response.text)
        assert "No such draft" in response.text


def test_a_hostile_svg_opened_in_chromium_runs_no_script(server):
    """The header's effect, in a real browser: the SVG's script would set the title and fetch '/'."""
    chromium = os.environ.get("PRESSFLOW_CHROMIUM", "/usr/bin/chromium")
    missing = None if Path(chromium).exists() else f"no Chromium at {chromium} (apt-get install chromium)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install playwright)"
    if missing:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{missing}; CI is set: this test must run there")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(server + "/site/media/evil.svg")
            page.wait_for_timeout(500)
            assert page.title() != "ran"
            assert requests == [server + "/site/media/evil.svg"]  # the onload fetch never left
        finally:
            browser.close()
