"""The e-mail channel against real servers on loopback: aiosmtpd accepts the mail and hands it to
a private Dovecot through its LDA; every message is read back from Dovecot over IMAP."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from mailserver import Dovecot, Smtp, dovecot_missing

_missing = dovecot_missing()
try:
    import aiosmtpd  # noqa: F401
except ImportError:
    _missing = _missing or "aiosmtpd is not installed (pip install -e '.[test]')"
if _missing:
    if os.environ.get("CI"):  # CI installs both (.ci/run): there a missing server is a failure
        raise RuntimeError(f"the e-mail tests cannot run under CI: {_missing}")
    pytest.skip(_missing, allow_module_level=True)

from lossy_proxy import LossyProxy  # noqa: E402
from pressflow.deliver.base import ChannelError, Message, RateLimited, Unconfirmable  # noqa: E402
from pressflow.deliver.config import Account, load_channels  # noqa: E402
from pressflow.core.errors import ConfigError  # noqa: E402
from pressflow.deliver.email import CONFIRM_GRACE, EmailChannel  # noqa: E402
from pressflow.core import db

# aiosmtpd warns that AUTH without TLS is unsafe: it is, off loopback.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

DOMAIN = "lists.example.org"
PASSWORD = "s3cret-for-tests"
LISTS = ("press-en", "press-zh", "press-ar", "briefings", "press-fr")


class Sessions:
    def __init__(self):
        self.data: dict = {}

    def load(self, account):
        return self.data.get(account)

    def save(self, account, data):
        self.data[account] = data


class Clock:
    def __init__(self, now=None):
        self.now = now or datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture(scope="module")
def servers():
    dovecot = Dovecot({name: PASSWORD for name in (*LISTS, "office")}).start()
    smtp = Smtp(dovecot, domain=DOMAIN, login=("office", PASSWORD)).start()
    try:
        yield dovecot, smtp
    finally:
        smtp.stop()
        dovecot.stop()


def account(smtp_address, list_name, dovecot=None, **extra):
    fields = dict(channel="email", languages="*", smtp=smtp_address, security="none",
                  id=f"email:{list_name}:{extra.pop('suffix', '')}",
                  **{"from": "Press Office <press@example.org>"}, to=[f"{list_name}@{DOMAIN}"],
                  username="office", password_env="PRESS_SMTP_PASSWORD",
                  unsubscribe=f"https://press.example.org/lists/{list_name}/unsubscribe")
    if dovecot is not None:
        fields["confirm_imap"] = f"imap://{list_name}@127.0.0.1:{dovecot.port}/INBOX"
    fields.update(extra)
    return Account.model_validate(fields).model_copy(update={"secret": PASSWORD})


def release(language="en", title="Ministers agree on a shared research fund", text=None, html=None, **kw):
    fields = dict(release="research-fund", language=language, kind="release",
                  text=text or "The ministers agreed today on a shared fund.\n\nIt opens in May.",
                  html=html, title=title, url=f"https://press.example.org/{language}/research-fund/",
                  image=None)
    fields.update(kw)
    return Message(**fields)


def sessions_started(sessions):
    [data] = sessions.data.values()
    [entry] = data["attempts"].values()
    return datetime.fromisoformat(entry["at"])


def inbox(dovecot, name):
    return dovecot.messages(name)


def bodies(mail):
    assert mail.get_content_type() == "multipart/alternative"
    # Mail's line ends are CRLF; the parts are compared as text.
    parts = {part.get_content_type(): part.get_content().replace("\r\n", "\n") for part in mail.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    return parts["text/plain"], parts["text/html"]


def test_a_release_read_back_over_imap_carries_every_header(servers):
    dovecot, smtp = servers
    before = len(inbox(dovecot, "press-en"))
    channel = EmailChannel(account(smtp.address, "press-en"), Sessions())
    planned = channel.plan("research-fund:en:email:0")
    assert planned == channel.plan("research-fund:en:email:0")  # stable: planned from the key
    sent = channel.send(release(), key="research-fund:en:email:0", planned=planned)
    assert sent.remote_id == planned
    mails = inbox(dovecot, "press-en")
    assert len(mails) == before + 1
    mail = mails[-1]
    assert mail["Message-ID"] == planned and planned.endswith("@example.org>")
    assert mail["From"] == "Press Office <press@example.org>"
    assert mail["To"] == f"press-en@{DOMAIN}"
    assert mail["Subject"] == "Ministers agree on a shared research fund"
    assert mail["Content-Language"] == "en"
    assert mail["List-Unsubscribe"] == "<https://press.example.org/lists/press-en/unsubscribe>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["List-Id"] == f"<press-en.{DOMAIN}>"
    assert mail["Date"] is not None
    text, html = bodies(mail)
    assert "shared fund" in text and "https://press.example.org/en/research-fund/" in text
    assert '<html lang="en" dir="ltr">' in html and "<p>It opens in May.</p>" in html


@pytest.mark.parametrize("language, name, title, text, direction", [
    ("zh", "press-zh", "部长们就共同研究基金达成一致", "部长们今天就共同研究基金达成一致。\n\n基金将于五月开放申请。", "ltr"),
    ("ar", "press-ar", "الوزراء يتفقون على صندوق بحثي مشترك", "اتفق الوزراء اليوم على صندوق بحثي مشترك.\n\nيفتح الصندوق في مايو.", "rtl"),
])
def test_chinese_and_arabic_releases(servers, language, name, title, text, direction):
    dovecot, smtp = servers
    channel = EmailChannel(account(smtp.address, name), Sessions())
    sent = channel.send(release(language, title=title, text=text), key=f"research-fund:{language}:email:0", planned=None)
    [mail] = [m for m in inbox(dovecot, name) if m["Message-ID"] == sent.remote_id]
    assert mail["Subject"] == title
    assert mail["Content-Language"] == language
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = bodies(mail)
    assert plain.startswith(text)
    assert f'<html lang="{language}" dir="{direction}">' in html
    assert text.split("\n\n")[1] in html


def test_html_given_by_the_renderer_is_sent_as_it_is(servers):
    dovecot, smtp = servers
    page = '<!DOCTYPE html>\n<html lang="en"><body><h1>Fund</h1><p>Rendered.</p></body></html>\n'
    channel = EmailChannel(account(smtp.address, "press-en"), Sessions())
    sent = channel.send(release(html=page), key="research-fund:en:email:html", planned=None)
    [mail] = [m for m in inbox(dovecot, "press-en") if m["Message-ID"] == sent.remote_id]
    assert bodies(mail)[1] == page


def test_an_embargoed_briefing_goes_only_to_a_list_marked_for_it(servers):
    dovecot, smtp = servers
    clock = Clock(datetime(2030, 1, 1, 0, 0, tzinfo=timezone.utc))
    embargo = datetime(2030, 1, 1, 10, 0, tzinfo=timezone(timedelta(hours=8)))  # 02:00 UTC
    briefing = release(embargo=embargo)
    marked = EmailChannel(account(smtp.address, "briefings", embargoed_briefings=True), Sessions(), clock=clock)
    sent = marked.send(briefing, key="research-fund:en:email:briefing", planned=None)
    [mail] = [m for m in inbox(dovecot, "briefings") if m["Message-ID"] == sent.remote_id]
    assert mail["Subject"] == ("Embargoed until 2030-01-01 02:00 UTC (10:00 +08:00): "
                               "Ministers agree on a shared research fund")
    assert mail["X-Embargoed-Until"] == "2030-01-01T02:00:00Z"

    before = len(inbox(dovecot, "press-fr"))
    plain = EmailChannel(account(smtp.address, "press-fr"), Sessions(), clock=clock)
    with pytest.raises(RateLimited) as held:
        plain.send(briefing, key="research-fund:fr:email:0", planned=None)
    assert held.value.retry_at == datetime(2030, 1, 1, 2, 0, tzinfo=timezone.utc)
    assert len(inbox(dovecot, "press-fr")) == before  # nothing before the embargo
    clock.now = datetime(2030, 1, 1, 2, 1, tzinfo=timezone.utc)  # the embargo has ended
    sent = plain.send(briefing, key="research-fund:fr:email:0", planned=None)
    [mail] = [m for m in inbox(dovecot, "press-fr") if m["Message-ID"] == sent.remote_id]
    assert mail["Subject"] == "Ministers agree on a shared research fund"


def test_a_withdrawal_sends_the_list_a_notice(servers):
    dovecot, smtp = servers
    channel = EmailChannel(account(smtp.address, "press-en"), Sessions())
    original = channel.send(release(), key="research-fund:en:email:w0", planned=None)
    notice = release(kind="withdrawal", text="This release has been withdrawn.")
    sent = channel.send(notice, key="research-fund:en:email:withdrawal", planned=None)
    [mail] = [m for m in inbox(dovecot, "press-en") if m["Message-ID"] == sent.remote_id]
    assert mail["Subject"] == "Withdrawn: Ministers agree on a shared research fund"
    assert "withdrawn" in bodies(mail)[0]
    with pytest.raises(ChannelError, match="cannot be taken back"):
        channel.delete(original.remote_id)


def test_a_correction_is_a_new_message_beside_the_first(servers):
    dovecot, smtp = servers
    channel = EmailChannel(account(smtp.address, "press-en"), Sessions())
    first = channel.send(release(), key="research-fund:en:email:c0", planned=None)
    with pytest.raises(ChannelError, match="cannot be edited"):
        channel.update(first.remote_id, release(text="Corrected."))
    second = channel.send(release(text="Corrected: it opens in June."), key="research-fund:en:email:c1", planned=None)
    ids = [m["Message-ID"] for m in inbox(dovecot, "press-en")]
    assert first.remote_id != second.remote_id
    assert ids.count(first.remote_id) == 1 and ids.count(second.remote_id) == 1


def test_a_lost_answer_after_the_data_is_confirmed_from_the_mailbox(servers):
    dovecot, smtp = servers
    sessions = Sessions()
    with LossyProxy("127.0.0.1", smtp.port) as proxy:
        channel = EmailChannel(account(proxy.address, "press-en", dovecot, suffix="lost"), sessions, timeout=10)
        proxy.lose_answer_after(b"\r\n.\r\n")
        planned = channel.plan("research-fund:en:email:lost")
        with pytest.raises(Exception) as lost:
            channel.send(release(), key="research-fund:en:email:lost", planned=planned)
        assert not isinstance(lost.value, (ChannelError, RateLimited)), lost.value
        assert proxy.lost == 1
    again = EmailChannel(account(smtp.address, "press-en", dovecot, suffix="lost"), sessions)
    sent = again.confirm(release(), key="research-fund:en:email:lost", planned=planned)
    assert sent is not None and sent.remote_id == planned
    assert [m["Message-ID"] for m in inbox(dovecot, "press-en")].count(planned) == 1  # no duplicate


def test_a_send_lost_before_the_data_is_absent_once_mail_would_have_arrived(servers):
    dovecot, smtp = servers
    sessions, clock = Sessions(), Clock()
    key = "research-fund:en:email:early"
    with LossyProxy("127.0.0.1", smtp.port) as proxy:
        channel = EmailChannel(account(proxy.address, "press-en", dovecot, suffix="early"), sessions,
                               clock=clock, timeout=10)
        proxy.lose_answer_after(b"mail FROM:")  # smtplib writes it so
        with pytest.raises(Exception):
            channel.send(release(), key=key, planned=None)
    channel = EmailChannel(account(smtp.address, "press-en", dovecot, suffix="early"), sessions, clock=clock)
    planned = channel.plan(key)
    with pytest.raises(RateLimited, match="not in the confirmation mailbox yet") as wait:
        channel.confirm(release(), key=key, planned=planned)  # it could still be on its way
    assert wait.value.retry_at == sessions_started(sessions) + CONFIRM_GRACE  # look again then
    clock.now += CONFIRM_GRACE + timedelta(minutes=1)
    assert channel.confirm(release(), key=key, planned=planned) is None  # surely absent
    channel.send(release(), key=key, planned=planned)  # so the runner sends it again
    assert [m["Message-ID"] for m in inbox(dovecot, "press-en")].count(planned) == 1  # not lost, not twice


def test_without_a_confirmation_mailbox_a_lost_answer_is_unconfirmable(servers):
    _, smtp = servers
    channel = EmailChannel(account(smtp.address, "press-en"), Sessions())
    with pytest.raises(Unconfirmable, match="no confirm_imap"):
        channel.confirm(release(), key="k", planned=None)


def test_smtp_4xx_postpones_and_5xx_fails_naming_the_address(servers):
    dovecot, smtp = servers
    smtp.tempfail.add(f"press-fr@{DOMAIN}")
    try:
        channel = EmailChannel(account(smtp.address, "press-fr"), Sessions())
        with pytest.raises(RateLimited, match="451") as later:
            channel.send(release(), key="research-fund:fr:email:busy", planned=None)
        assert later.value.retry_at > datetime.now(timezone.utc)
    finally:
        smtp.tempfail.clear()
    nobody = EmailChannel(account(smtp.address, "nobody-here"), Sessions())
    with pytest.raises(ChannelError, match=f"nobody-here@{DOMAIN}: 550"):
        nobody.send(release(), key="research-fund:xx:email:0", planned=None)
    wrong = EmailChannel(account(smtp.address, "press-fr").model_copy(update={"secret": "wrong"}), Sessions())
    with pytest.raises(ChannelError, match="refused the login"):
        wrong.send(release(), key="research-fund:fr:email:login", planned=None)


def test_the_channels_file_wants_an_https_one_click_link(tmp_path):
    path = tmp_path / "channels.yaml"
    path.write_text("- channel: email\n  languages: [en]\n  smtp: 127.0.0.1:25\n  from: a@example.org\n"
                    "  to: [b@example.org]\n  unsubscribe: http://example.org/u\n")
    with pytest.raises(ConfigError, match="unsubscribe: .* not an https URL"):
        load_channels(path)
    path.write_text(path.read_text().replace("http://", "https://") + "  embargoed_briefings: true\n")
    [entry] = load_channels(path)
    assert entry.embargoed_briefings and entry.unsubscribe == "https://example.org/u"


# --- embargoed briefings, through the runner, from the store -----------------------------------

SITE = "https://press.example.org"
PLUS8 = timezone(timedelta(hours=8))


def embargoed_release(settings, slug, title, embargo):
    """A release prepared in English, with a Chinese press release added, every draft approved;
    its `publish_at` is `embargo` (in +08:00, as the record says it)."""
    from pressflow.prepare import pipeline
    from pressflow.drafts import service
    from pressflow.drafts import store
    from pressflow.records import Event

    record = {"id": slug, "title": title, "date": "2030-01-01", "summary": "Ministers meet on the fund.",
              "languages": [], "publish_at": embargo.isoformat()}
    assert not pipeline.prepare([(None, Event.model_validate(record))], settings).errors
    with db.session_scope(settings.db_url) as session:
        fingerprint = session.get(store.Release, slug).fingerprint
        source = store.list_drafts(session, slug=slug, lang="en", channel="release")[0].text
        store.add_draft(session, slug=slug, lang="zh", channel="release", fingerprint=fingerprint,
                        source_text=source, text=source.replace(source.splitlines()[0], f"# 部长们就基金会面 {slug}", 1))
    service.approve_all(settings, reviewer="ana")


def mails_about(dovecot, name, title):
    return [m for m in inbox(dovecot, name) if title in (m["Subject"] or "")]


def briefing_accounts(smtp, suffix):
    return [account(smtp.address, "briefings", languages=["en"], embargoed_briefings=True, suffix=suffix),
            account(smtp.address, "press-zh", languages=["zh"], embargoed_briefings=True, suffix=suffix),
            account(smtp.address, "press-en", languages=["en"], suffix=suffix)]


def test_an_embargoed_release_is_briefed_to_marked_lists_only_once_then_published_to_the_others(servers, tmp_path):
    from pressflow.core.config import Settings
    from pressflow.deliver import ledger as L
    from pressflow.deliver.runner import Runner
    from pressflow.publish import publish

    dovecot, smtp = servers
    settings = Settings(out_dir=tmp_path / "out", site_url=SITE, database_url=None, database_url_block=None)
    embargo = (datetime.now(timezone.utc) + timedelta(days=2)).astimezone(PLUS8).replace(second=0, microsecond=0)
    title = "Ministers meet on the fund (briefed)"
    embargoed_release(settings, "briefed", title, embargo)
    lists = briefing_accounts(smtp, "briefed")
    # A social account on a port nobody listens on: anything sent to it would be an error.
    social = Account(channel="bluesky", languages="*", service="http://127.0.0.1:9", handle="press.test",
                     password_env="UNUSED", secret="x")

    report = Runner(settings, [*lists, social]).run()
    assert report.ok, report.errors
    assert sorted((r.account, r.language, r.kind) for r in report.sent) == [
        ("email:briefings:briefed", "en", "briefing"), ("email:press-zh:briefed", "zh", "briefing")]
    [mail] = mails_about(dovecot, "briefings", title)
    utc = embargo.astimezone(timezone.utc)
    assert mail["Subject"] == f"Embargoed until {utc:%Y-%m-%d %H:%M} UTC ({embargo:%H:%M} +08:00): {title}" or (
        mail["Subject"] == f"Embargoed until {utc:%Y-%m-%d %H:%M} UTC ({embargo:%Y-%m-%d %H:%M} +08:00): {title}")
    assert mail["X-Embargoed-Until"] == f"{utc:%Y-%m-%dT%H:%M:00Z}"
    assert mail["Content-Language"] == "en"
    text, html = bodies(mail)
    assert text.startswith(f"EMBARGOED UNTIL {utc:%Y-%m-%d %H:%M} UTC")  # first, before the release
    assert "NOT FOR PUBLICATION" in text and f"{SITE}/site/en/briefed.html" in text
    assert html.index('role="note"') < html.index("<article")  # the notice heads the rendered page
    [zh] = [m for m in inbox(dovecot, "press-zh") if "briefed" in bodies(m)[0]]
    assert zh["Content-Language"] == "zh" and zh["Subject"].startswith("Embargoed until")
    assert not mails_about(dovecot, "press-en", title)  # an unmarked list waits for the embargo
    ledger = L.Ledger(settings.db_url)
    assert not ledger.rows(account=social.key)  # never to a social channel

    again = Runner(settings, [*lists, social]).run()  # exactly once
    assert again.ok and not again.sent
    assert len(mails_about(dovecot, "briefings", title)) == 1

    # The embargo ends: publish writes the outbox, and the release mail goes to the other list.
    after = embargo + timedelta(minutes=1)
    assert publish(settings, now=after).releases == {"briefed": ["en", "zh"]}
    published = (settings.out_dir / "outbox" / "briefed" / "en" / "press-release.txt").read_text()
    assert text.split("\n\n", 1)[1].startswith(published)  # the briefing is what publish writes
    report = Runner(settings, lists, now=after).run()
    assert report.ok and [(r.account, r.kind) for r in report.sent] == [("email:press-en:briefed", "release")]
    [public] = mails_about(dovecot, "press-en", title)
    assert public["Subject"] == title and "X-Embargoed-Until" not in public
    # The marked lists had this very text as a briefing: they do not get it again.
    assert len(mails_about(dovecot, "briefings", title)) == 1
    covered = [r for r in ledger.rows(release="briefed") if r.kind == "release" and r.account != lists[2].key]
    assert [(r.state, r.remote_id) for r in covered] == [(L.SENT, mail["Message-ID"]), (L.SENT, zh["Message-ID"])]
    assert {r.state for r in ledger.rows(release="briefed") if r.kind == "briefing"} == {L.SUPERSEDED}
    assert not Runner(settings, lists, now=after).run().sent


def test_a_briefing_corrected_or_withdrawn_under_embargo(servers, tmp_path):
    from pressflow.drafts import service
    from pressflow.drafts import store
    from pressflow.core.config import Settings
    from pressflow.deliver.runner import Runner

    dovecot, smtp = servers
    settings = Settings(out_dir=tmp_path / "out", site_url=SITE, database_url=None, database_url_block=None)
    embargo = (datetime.now(timezone.utc) + timedelta(days=3)).astimezone(PLUS8).replace(second=0, microsecond=0)
    title = "Ministers meet on the fund (corrected)"
    embargoed_release(settings, "corrected", title, embargo)
    lists = briefing_accounts(smtp, "corrected")
    assert len(Runner(settings, lists).run().sent) == 2
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, lang="en", channel="release")
        store.edit_draft(session, draft, draft.text.replace("Ministers meet on the fund.", "Ministers meet on the fund, "
                                                            "in May."), author="ana")
    service.approve_all(settings, reviewer="ana")
    report = Runner(settings, lists).run()
    assert [(r.account, r.kind) for r in report.sent] == [("email:briefings:corrected", "briefing")]
    first, second = mails_about(dovecot, "briefings", title)  # a correction is a new message beside
    assert "in May" in bodies(second)[0] and "in May" not in bodies(first)[0]
    assert second["Subject"].startswith("Embargoed until")

    with db.session_scope(settings.db_url) as session:  # the approval is taken back
        [draft] = store.list_drafts(session, lang="en", channel="release")
        store.set_status(session, draft, store.REJECTED, reviewer="ana", reason="not this year")
    report = Runner(settings, lists).run()
    assert report.ok and [(r.account, r.kind) for r in report.sent] == [("email:briefings:corrected", "withdrawal")]
    notice = mails_about(dovecot, "briefings", title)[-1]
    assert notice["Subject"] == f"Withdrawn: {title}" and "embargoed briefing" in bodies(notice)[0]
    assert not mails_about(dovecot, "press-en", title)
    assert not Runner(settings, lists).run().sent
