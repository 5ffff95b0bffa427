"""The review page shows each draft's deliveries: made by the runner against a real PDS and real
mail servers on loopback, read back through the review app's HTTP interface (TestClient)."""

from __future__ import annotations

import datetime as dt
import os
import re

import pytest
from fastapi.testclient import TestClient
from lxml import html

from mailserver import Dovecot, Smtp, dovecot_missing

_missing = dovecot_missing()
try:
    import aiosmtpd  # noqa: F401
except ImportError:
    _missing = _missing or "aiosmtpd is not installed (pip install -e '.[test]')"
if _missing:
    if os.environ.get("CI"):
        raise RuntimeError(f"the delivery review tests cannot run under CI: {_missing}")
    pytest.skip(_missing, allow_module_level=True)

from pds_support import create_account, start_pds, stop_pds  # noqa: E402
from pressflow.core import db  # noqa: E402
from pressflow.drafts import reviewers, service, store  # noqa: E402
from pressflow.prepare import pipeline  # noqa: E402
from pressflow.core.config import Settings  # noqa: E402
from pressflow.deliver import ledger as L  # noqa: E402
from pressflow.deliver.config import Account  # noqa: E402
from pressflow.deliver.runner import Runner  # noqa: E402
from pressflow.publish import publish  # noqa: E402
from pressflow.records import Event  # noqa: E402
from pressflow.review_app import create_app  # noqa: E402
from pressflow.review_app.publishing import PublishMode  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

SITE = "https://press.example.org"
DOMAIN = "lists.example.org"
PASSWORD = "correct horse battery"
MAIL_PASSWORD = "s3cret-for-tests"
NOW = dt.datetime(2021, 9, 13, 8, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def servers():
    process, base, data = start_pds()
    dovecot = Dovecot({"press-en": MAIL_PASSWORD, "office": MAIL_PASSWORD}).start()
    smtp = Smtp(dovecot, domain=DOMAIN, login=("office", MAIL_PASSWORD)).start()
    try:
        yield base, smtp
    finally:
        smtp.stop()
        dovecot.stop()
        stop_pds(process, data)


def email(smtp, name):
    return Account.model_validate(dict(
        channel="email", languages=["en"], smtp=smtp.address, security="none", id=f"email:{name}",
        **{"from": "Press Office <press@example.org>"}, to=[f"{name}@{DOMAIN}"], username="office",
        password_env="UNUSED", unsubscribe=f"https://press.example.org/lists/{name}/unsubscribe",
    )).model_copy(update={"secret": MAIL_PASSWORD})


def signed_in(app) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text).group(1)
    response = client.post("/signin", data={"name": "alice", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.text
    return client


def test_draft_page_and_queue_show_each_drafts_deliveries(servers, tmp_path):
    pds, smtp = servers
    settings = Settings(out_dir=tmp_path / "out", site_url=SITE, database_url=None, database_url_block=None)
    record = {"id": "fund", "title": "Ministers agree on a shared fund", "date": "2021-09-12",
              "summary": "The fund opens in May.", "languages": []}
    pipeline.prepare([(None, Event.model_validate(record))], settings)
    service.approve_all(settings, reviewer="ana")
    assert publish(settings, now=NOW).releases == {"fund": ["en"]}
    create_account(pds, "press-review.test")
    bluesky = Account(channel="bluesky", languages="*", service=pds, handle="press-review.test",
                      password_env="UNUSED", secret="pw-test")
    report = Runner(settings, [bluesky, email(smtp, "press-en"), email(smtp, "nobody-here")]).run()
    assert [r.channel for r in report.sent] == ["bluesky", "email"] and len(report.failed) == 1
    ledger = L.Ledger(settings.db_url)
    [post] = ledger.rows(account=bluesky.key)
    assert post.url.startswith("https://bsky.app/profile/press-review.test/post/")

    reviewers.add_user(settings.db_url, "alice", PASSWORD, [])
    client = signed_in(create_app(settings, PublishMode(on_approve=False, via_prefect=False)))
    with db.session_scope(settings.db_url) as session:
        ids = {d.channel: d.id for d in store.list_drafts(session, slug="fund")}

    heading, listed = shown(client.get(f"/drafts/{ids['bluesky']}").text)
    assert heading == "Deliveries on bluesky"
    assert listed == [(f"{bluesky.key}: sent · {post.url}", [post.url])]  # a post's deliveries only

    heading, listed = shown(client.get(f"/drafts/{ids['release']}").text)
    assert heading == "Deliveries by e-mail"
    assert listed[0] == ("email:press-en (release): sent", [])
    assert listed[1][0].startswith("email:nobody-here (release): failed · email: refused "
                                   f"nobody-here@{DOMAIN}: 550") and len(listed) == 2

    page = client.get(f"/drafts/{ids['mastodon']}").text  # nothing went to Mastodon
    assert "Not delivered anywhere yet." in page

    queue = html.fromstring(client.get("/?status=all").text)
    # the first column names the channel as translators do ("Bluesky post"), the sixth its deliveries
    cells = {row.xpath("td")[0].text_content(): row.xpath("td")[5] for row in queue.xpath("//tbody/tr")}
    assert [(a.text_content(), a.get("href")) for a in cells["Bluesky post"].xpath(".//a")] == [("view", post.url)]
    assert "sent" in cells["Bluesky post"].text_content() and "email:" not in cells["Bluesky post"].text_content()
    release = " ".join(cells["Press release"].text_content().split())
    assert "email:press-en (release): sent" in release and "nobody-here (release): failed" in release
    assert "550" in release and cells["Mastodon post"].text_content().strip() == "—"


def shown(page: str) -> tuple[str, list[tuple[str, list[str]]]]:
    """The draft page's deliveries section: its heading, and each line's text and links."""
    [section] = html.fromstring(page).xpath('//section[h2[@id="deliveries-h"]]')
    items = [(" ".join(li.text_content().split()), [a.get("href") for a in li.xpath(".//a")])
             for li in section.xpath(".//li")]
    return section.xpath("h2")[0].text_content(), items
