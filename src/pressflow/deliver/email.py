"""E-mail: a release to a mailing list in the list's language (docs/channels.md, "E-mail").

One message per release and list: text and HTML (`multipart/alternative`), `Content-Language`,
`List-Unsubscribe` with the list's https link and `List-Unsubscribe-Post:
List-Unsubscribe=One-Click` (RFC 8058; the sending domain's DKIM signature must cover both, which
is the mail server's work), and a `Message-ID` planned from the delivery key before anything is
sent, so the same delivery always carries the same id.

- Embargoed briefings go only to a list marked `embargoed_briefings: true`, with the embargo in
  the subject in UTC and in the record's own offset. Another list's delivery is postponed until
  the embargo ends (then it is an ordinary release).
- A withdrawal sends the list a notice (e-mail cannot take a message back).
- SMTP 4xx postpones; 5xx fails, naming the address.
- Confirmation of a send whose answer was lost looks for the Message-ID in `confirm_imap` (a
  mailbox the list's copy reaches: the office's own subscription or the Sent folder). Found:
  sent. Not found once `CONFIRM_GRACE` has passed since the send began: not sent (mail would
  have arrived). Not found sooner: RateLimited until then (the runner confirms again, it does
  not send again). No mailbox configured: Unconfirmable.
"""

from __future__ import annotations

import hashlib
import html as htmllib
import imaplib
import re
import smtplib
import ssl
from datetime import datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Callable, ClassVar
from urllib.parse import unquote, urlsplit

from ._attempts import Attempts
from .base import Capabilities, ChannelError, Message, RateLimited, Sent, Unconfirmable

CONFIRM_GRACE = timedelta(minutes=15)  # how long a message accepted by SMTP may take to reach the mailbox
TEMPFAIL_WAIT = timedelta(minutes=15)  # an SMTP 4xx: try again after this
RTL = {"ar", "arc", "ckb", "dv", "fa", "he", "ks", "ku", "ps", "sd", "ug", "ur", "yi"}


def _offset(moment: datetime) -> str:
    minutes = int(moment.utcoffset().total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def embargo_line(embargo: datetime) -> str:
    """`Embargoed until 2030-01-01 02:00 UTC (10:00 +08:00)`: UTC, and the record's own offset."""
    if embargo.tzinfo is None:
        embargo = embargo.replace(tzinfo=timezone.utc)
    utc = embargo.astimezone(timezone.utc)
    text = f"Embargoed until {utc:%Y-%m-%d %H:%M} UTC"
    if embargo.utcoffset() != timedelta(0):
        day = "" if embargo.date() == utc.date() else f"{embargo:%Y-%m-%d} "
        text += f" ({day}{embargo:%H:%M} {_offset(embargo)})"
    return text


def embargo_notice(message: Message) -> str:
    """What a briefing says first, in its text and its HTML: the embargo, and that the page is
    not online before then."""
    return (f"{embargo_line(message.embargo)}. Not for publication, in any form, before then. "
            f"The release goes online at {message.url} when the embargo ends.")


def _after_body(html: str, banner: str) -> str:
    """`banner` first in the document's body (the rendered page is not otherwise changed)."""
    match = re.search(r"<body\b[^>]*>", html, re.IGNORECASE)
    if match is None:
        return banner + html
    return f"{html[:match.end()]}\n{banner}{html[match.end():]}"


class EmailChannel:
    name: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(
        edit=False, delete=False, threads=False, alt_text=False, language_tag=True, limit=None,
        counts="no limit")

    def __init__(self, account, sessions=None, *, clock: Callable[[], datetime] | None = None,
                 timeout: float = 60.0):
        self.account = account
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.attempts = Attempts(sessions, account.key, self.clock)
        host, _, port = account.smtp.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.security = account.security or "starttls"
        self.username, self.password = account.username, account.secret
        self.sender = account.from_
        self.to = list(account.to)
        self.unsubscribe = account.unsubscribe
        self.embargoed_briefings = bool(account.embargoed_briefings)
        self.confirm_imap = account.confirm_imap
        self.timeout = timeout

    # -- the interface ----------------------------------------------------------------------

    def plan(self, key: str) -> str:
        domain = parseaddr(self.sender)[1].rpartition("@")[2] or "pressflow.invalid"
        return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}.pressflow@{domain}>"

    def send(self, message: Message, *, key: str, planned: str | None) -> Sent:
        message_id = planned or self.plan(key)
        now = self.clock()
        embargoed = message.embargo is not None and _aware(message.embargo) > now
        if embargoed and not self.embargoed_briefings:
            raise RateLimited(_aware(message.embargo).astimezone(timezone.utc),
                              f"email: {', '.join(self.to)} takes no embargoed briefings; held")
        mail = self.compose(message, message_id, now=now)
        self.attempts.begin(key)
        self._deliver(mail)
        return Sent(message_id, None)

    def confirm(self, message: Message, *, key: str, planned: str | None) -> Sent | None:
        message_id = planned or self.plan(key)
        if not self.confirm_imap:
            raise Unconfirmable(f"email: no confirm_imap mailbox to look for {message_id} in; "
                                f"ask {', '.join(self.to)} whether it arrived")
        if self._in_mailbox(message_id):
            return Sent(message_id, None)
        age = self.attempts.age(key)
        if age is None and self.attempts.durable:
            return None  # the send never began (its start is recorded before connecting)
        if age is not None and age >= CONFIRM_GRACE:
            return None  # accepted mail would have reached the mailbox by now
        if age is None:
            raise Unconfirmable(f"email: {message_id} is not in the confirmation mailbox and there is no "
                                f"record of when the send began (no session store)")
        # It may still be on its way: look again once it surely would have arrived (the runner
        # keeps the row to be confirmed, it does not send it again).
        raise RateLimited(self.attempts.get(key)["at"] + CONFIRM_GRACE,
                          f"email: {message_id} is not in the confirmation mailbox yet")

    def delete(self, remote_id: str) -> None:
        raise ChannelError("email: a sent message cannot be taken back; a withdrawal sends a notice")

    def update(self, remote_id: str, message: Message) -> Sent:
        raise ChannelError("email: a sent message cannot be edited; a correction is sent as a new message")

    # -- the message ------------------------------------------------------------------------

    def subject(self, message: Message, now: datetime) -> str:
        title = " ".join(message.title.split())
        if message.kind == "withdrawal" and not title.lower().startswith("withdrawn"):
            return f"Withdrawn: {title}"
        if message.embargo is not None and _aware(message.embargo) > now:
            return f"{embargo_line(message.embargo)}: {title}"
        return title

    def compose(self, message: Message, message_id: str, *, now: datetime | None = None) -> EmailMessage:
        now = now or self.clock()
        mail = EmailMessage(policy=policy.SMTP)
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail["Subject"] = self.subject(message, now)
        mail["Date"] = format_datetime(now.astimezone(timezone.utc))
        mail["Message-ID"] = message_id
        list_address = parseaddr(self.to[0])[1]
        mail["List-Id"] = f"<{list_address.replace('@', '.')}>"  # RFC 2919
        mail["List-Unsubscribe"] = f"<{self.unsubscribe}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
        mail["Precedence"] = "list"
        if message.embargo is not None and _aware(message.embargo) > now:
            mail["X-Embargoed-Until"] = _aware(message.embargo).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = message.text if message.text.endswith("\n") else message.text + "\n"
        if message.url and message.url not in text:
            text += f"\n{message.url}\n"
        html = self._html(message)
        if message.embargo is not None and _aware(message.embargo) > now:
            notice = embargo_notice(message)
            text = f"{notice.upper()}\n\n{text}"
            html = _after_body(html, f'<p role="note" style="border:2px solid #b00;padding:.5em 1em;'
                                     f'font-weight:bold;font-size:1.2em">{htmllib.escape(notice)}</p>\n')
        mail.set_content(text, subtype="plain", charset="utf-8", cte=_cte(text))
        mail.add_alternative(html, subtype="html", charset="utf-8", cte=_cte(html))
        # After the content: set_content() clears every Content-* header.
        mail["Content-Language"] = message.language
        return mail

    def _html(self, message: Message) -> str:
        language = message.language
        direction = "rtl" if language.split("-")[0].lower() in RTL else "ltr"
        body = message.html
        if body is None:
            paragraphs = [p for p in message.text.split("\n\n") if p.strip()]
            body = "".join(f"<p>{htmllib.escape(p).replace(chr(10), '<br>')}</p>\n" for p in paragraphs)
            if message.url:
                url = htmllib.escape(message.url, quote=True)
                body += f'<p><a href="{url}">{url}</a></p>\n'
        if body.lstrip()[:14].lower().startswith(("<!doctype", "<html")):
            return body
        return (f'<!DOCTYPE html>\n<html lang="{htmllib.escape(language)}" dir="{direction}">\n<head>'
                f'<meta charset="utf-8"><title>{htmllib.escape(message.title)}</title></head>\n'
                f"<body>\n{body}</body>\n</html>\n")

    # -- SMTP and IMAP ----------------------------------------------------------------------

    def _deliver(self, mail: EmailMessage) -> None:
        sender = parseaddr(self.sender)[1]
        recipients = [parseaddr(a)[1] for a in self.to]
        try:
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(mail, from_addr=sender, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            _refused(exc.recipients, sent_to=[])
        except smtplib.SMTPSenderRefused as exc:
            _refused({exc.sender if isinstance(exc.sender, str) else sender: (exc.smtp_code, exc.smtp_error)}, [])
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(f"email: {self.host}:{self.port} refused the login {self.username!r}: "
                               f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ChannelError(f"email: {self.host}:{self.port}: {exc}") from exc
        except (smtplib.SMTPDataError, smtplib.SMTPConnectError, smtplib.SMTPHeloError) as exc:
            _refused({", ".join(recipients): (exc.smtp_code, exc.smtp_error)}, [])
        if refused:
            _refused(refused, sent_to=[r for r in recipients if r not in refused])

    def _in_mailbox(self, message_id: str) -> bool:
        url = urlsplit(self.confirm_imap)
        host, port = url.hostname, url.port or (993 if url.scheme == "imaps" else 143)
        mailbox = unquote(url.path.lstrip("/")) or "INBOX"
        if url.scheme == "imaps":
            conn = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=self.timeout)
        else:
            conn = imaplib.IMAP4(host, port, timeout=self.timeout)
            if not _loopback(host):
                conn.starttls(ssl_context=ssl.create_default_context())
        try:
            conn.login(unquote(url.username), unquote(url.password or "") or self.password or "")
            status, _ = conn.select(_quote(mailbox), readonly=True)
            if status != "OK":
                raise Unconfirmable(f"email: cannot open the confirmation mailbox {mailbox!r}")
            status, data = conn.uid("SEARCH", None, "HEADER", "Message-ID", _quote(message_id))
            if status != "OK":
                raise Unconfirmable(f"email: the confirmation mailbox cannot be searched ({status})")
            return bool(data and data[0] and data[0].split())
        except imaplib.IMAP4.error as exc:
            raise Unconfirmable(f"email: the confirmation mailbox {host}: {exc}") from exc
        finally:
            try:
                conn.logout()
            except (OSError, imaplib.IMAP4.error):
                pass


def _refused(refused: dict, sent_to: list[str]) -> None:
    """4xx for every refused address postpones; any 5xx fails, naming the addresses."""
    codes = {address: (code, _text(text)) for address, (code, text) in refused.items()}
    described = "; ".join(f"{address}: {code} {text}" for address, (code, text) in codes.items())
    also = f" (accepted for {', '.join(sent_to)})" if sent_to else ""
    if all(400 <= code < 500 for code, _ in codes.values()) and not sent_to:
        raise RateLimited(datetime.now(timezone.utc) + TEMPFAIL_WAIT, f"email: postponed: {described}")
    raise ChannelError(f"email: refused {described}{also}")


def _text(value) -> str:
    return (value.decode(errors="replace") if isinstance(value, bytes) else str(value)).replace("\n", " ")


def _cte(text: str) -> str:
    # Mostly ASCII stays readable in quoted-printable; Chinese or Arabic is shorter in base64.
    ascii_share = sum(c.isascii() for c in text) / max(1, len(text))
    return "quoted-printable" if ascii_share > 0.7 else "base64"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _loopback(host: str) -> bool:
    from .config import is_loopback

    return is_loopback(host)
