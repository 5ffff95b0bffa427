"""The driver: what is due, per account, sent exactly once, taken back on withdrawal.

For each enabled account and each published release in its languages, every message (post
part, release e-mail) has a slot (release, language, account, kind, part). A slot's row in the
ledger is claimed and committed (`sending`) before the network call; a row found `sending` (a
crash, a lost response) is confirmed on the platform before anything is sent again. A changed
message (an approved correction) is edited in place where the channel shows edits, else the
old post is deleted and the new one posted (or, where nothing can be deleted, sent beside it).
A slot no longer published (the release under embargo again) is deleted where the channel can,
and e-mail lists get a withdrawal notice. E-mail lists marked `embargoed_briefings` also get
approved releases still under embargo (`briefings.py`), once, as a delivery of kind `briefing`;
when the embargo ends such a list does not get the same text again (docs/channels.md).

One runner at a time per store (a lock): a second `pressflow deliver` waits.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from ..core import db
from ..core.config import Settings
from . import ledger as L
from .base import ChannelError, Image, Message, RateLimited, Sent, Unconfirmable
from .briefings import BRIEFING, read_briefings, still_out
from .config import Account, channel_class, is_loopback
from .due import Due, over_limit, read_outbox

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # sends confirmed absent before a row is failed for good
DELIVER_LOCK_KEY = 0x7072_6573_7366_0010
EVENTS = {L.SENT: "pressflow.delivery.sent", L.FAILED: "pressflow.delivery.failed",
          L.UNKNOWN: "pressflow.delivery.unknown", L.DELETED: "pressflow.delivery.deleted"}


def message_to_dict(message: Message) -> dict:
    return {"release": message.release, "language": message.language, "kind": message.kind,
            "text": message.text, "html": message.html, "title": message.title, "url": message.url,
            "image": {"path": str(message.image.path), "alt": message.image.alt, "mime": message.image.mime}
            if message.image else None, "part": message.part,
            "embargo": message.embargo.isoformat() if message.embargo else None}


def message_from_dict(data: dict, reply_to: str | None = None) -> Message:
    image = data.get("image")
    if image and not Path(image["path"]).is_file():
        image = None  # withdrawn with its release: a retry sends the text alone
    return Message(data["release"], data["language"], data["kind"], data["text"], data.get("html"),
                   data["title"], data["url"], Image(Path(image["path"]), image["alt"], image["mime"]) if image else None,
                   part=data.get("part", 0), reply_to=reply_to,
                   embargo=dt.datetime.fromisoformat(data["embargo"]) if data.get("embargo") else None)


def withdrawal_notice(release_message: dict) -> Message:
    title, url = release_message["title"], release_message["url"]
    if release_message.get("kind") == BRIEFING:
        text = (f"Withdrawn: {title}\n\nThe embargoed briefing \"{title}\" sent earlier has been withdrawn. "
                f"Please do not publish it, neither now nor when its embargo ends.\n")
    else:
        text = (f"Withdrawn: {title}\n\nThe release \"{title}\" sent earlier ({url}) has been withdrawn. "
                f"Please do not publish it; its page is no longer online.\n")
    return Message(release_message["release"], release_message["language"], "withdrawal", text, None,
                   f"Withdrawn: {title}", url, None)


@dataclass
class DeliverReport:
    sent: list[L.Row] = field(default_factory=list)
    failed: list[L.Row] = field(default_factory=list)
    unknown: list[L.Row] = field(default_factory=list)
    postponed: list[L.Row] = field(default_factory=list)
    deleted: list[L.Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # accounts that could not be used, one line each

    @property
    def ok(self) -> bool:
        return not (self.failed or self.unknown or self.errors)

    def summary(self) -> str:
        return (f"{len(self.sent)} sent, {len(self.deleted)} deleted, {len(self.postponed)} postponed, "
                f"{len(self.failed)} failed, {len(self.unknown)} unknown")


def site_allowed(settings: Settings, account: Account) -> str | None:
    """Why `account` may not be delivered to with this site URL, or None. A loopback or unset
    site URL would post links nobody can open: refused, unless the account's own server is on
    loopback too (a test or a staging server on this machine)."""
    host = urlsplit(settings.site_url or "").hostname or ""
    if (not settings.site_url or is_loopback(host)) and not account.server_is_loopback:
        return (f"{account.key}: refusing to deliver links to {settings.site_url or '(no site URL)'}: "
                f"set PRESSFLOW_SITE_URL to the public site")
    return None


class Runner:
    def __init__(self, settings: Settings, accounts: list[Account], *, now: dt.datetime | None = None,
                 on_event: Callable[[str, L.Row], None] | None = None,
                 channels: dict[str, Any] | None = None,
                 around_send: Callable[[L.Row, Callable[[], Sent]], Sent] | None = None):
        # `around_send(row, call)`: how one network call is run (the Prefect flow makes it a task).
        self.around_send = around_send or (lambda row, call: call())
        self.settings, self.accounts = settings, [a for a in accounts if a.is_enabled]
        self.now = now or dt.datetime.now(dt.timezone.utc)
        self.ledger = L.Ledger(settings.db_url)
        self.on_event = on_event
        self._channels: dict[str, Any] = dict(channels or {})
        self.report = DeliverReport()
        self._blocked: dict[str, dt.datetime] = {}  # account -> rate limited until

    # --- entry --------------------------------------------------------------------------------

    def run(self, *, release: str | None = None) -> DeliverReport:
        with db.exclusive(self.settings.db_url, "deliver", DELIVER_LOCK_KEY):
            due = read_outbox(self.settings)
            if release is not None:
                due = {k: v for k, v in due.items() if k[0] == release}
            # Embargoed briefings, read from the store only when a list takes them; None when
            # they could not be read (then no briefing is sent or taken back in this run).
            briefings: dict | None = {}
            if any(a.channel == "email" and a.embargoed_briefings for a in self.accounts):
                try:
                    briefings = read_briefings(self.settings, self.now, release=release)
                except Exception as exc:
                    log.exception("embargoed briefings not read")
                    self.report.errors.append(f"embargoed briefings: not read: {_line(exc)}")
                    briefings = None
            for account in self.accounts:
                if (why := site_allowed(self.settings, account)) is not None:
                    self.report.errors.append(why)
                    continue
                try:
                    self._account(account, due, release, briefings)
                except (ChannelError, Exception) as exc:  # one account failing leaves the others
                    if isinstance(exc, RateLimited):
                        continue
                    log.exception("delivery to %s stopped", account.key)
                    self.report.errors.append(f"{account.key}: {' '.join(str(exc).split())[:300]}")
        return self.report

    def channel(self, account: Account):
        if account.key not in self._channels:
            self._channels[account.key] = channel_class(account.channel)(account, self.ledger.sessions())
        return self._channels[account.key]

    # --- one account --------------------------------------------------------------------------

    def _account(self, account: Account, due: dict[tuple[str, str], Due], release: str | None,
                 briefings: dict[tuple[str, str], Message] | None = None) -> None:
        desired: dict[tuple, Message] = {}
        for (slug, language), item in sorted(due.items()):
            if account.serves(language):
                for message in item.for_channel(account.channel):
                    desired[(slug, language, account.key, message.kind, message.part)] = message
        marked = account.channel == "email" and account.embargoed_briefings
        if marked:  # never to another list, never to a social channel
            for (slug, language), message in sorted((briefings or {}).items()):
                if account.serves(language):
                    desired[(slug, language, account.key, BRIEFING, 0)] = message
        rows = self.ledger.rows(account=account.key, release=release)
        by_slot: dict[tuple, list[L.Row]] = {}
        for row in rows:
            by_slot.setdefault(row.slot, []).append(row)
        for slot, message in desired.items():
            self._slot(account, slot, message, by_slot.get(slot, []))
        leftover = {slot: slot_rows for slot, slot_rows in by_slot.items()
                    if slot not in desired and slot[3] != "withdrawal"}
        briefed = [slot for slot, slot_rows in leftover.items()
                   if slot[3] == BRIEFING and any(r.state not in L.GONE for r in slot_rows)]
        ended: set[tuple[str, str]] = set()
        if briefed and marked and briefings is not None:
            ended = still_out(self.settings, self.now, sorted({(s[0], s[1]) for s in briefed}))
        for slot, slot_rows in leftover.items():
            if slot[3] == BRIEFING and (briefings is None or not marked or (slot[0], slot[1]) in ended):
                # The embargo ended (the release goes out as usual), or the list is no longer
                # marked: nothing to take back, only what was never sent is dropped.
                if briefings is not None:
                    for row in slot_rows:
                        self._briefing_over(account, row)
                continue
            for row in slot_rows:
                self._take_back(account, row)

    def _slot(self, account: Account, slot: tuple, message: Message, rows: list[L.Row]) -> None:
        content_hash = message.content_hash()
        active = [r for r in rows if r.state not in L.GONE]
        current = active[-1] if active else None
        if current is not None and current.state in (L.SENDING, L.DELETING):
            self._settle(account, current)  # a crash or a lost answer: find out first
            rows = [r for r in self.ledger.rows(account=account.key, release=slot[0]) if r.slot == slot]
            active = [r for r in rows if r.state not in L.GONE]
            current = active[-1] if active else None
        if current is not None and current.content_hash == content_hash:
            if current.state == L.SENT and self._replies_to_gone(account, current):
                pass  # the same text, but the part before it is posted again: so is this one
            else:
                if current.state in (L.PENDING, L.POSTPONED):
                    self._send(account, current)
                elif current.state == L.UNKNOWN:
                    self.report.unknown.append(current)
                elif current.state == L.FAILED:
                    self.report.failed.append(current)
                return
        replaces = None
        if current is not None:
            if current.state == L.SENT:
                replaces = current.id  # a correction
            elif current.state == L.UNKNOWN:
                self.report.unknown.append(current)  # settle it first (`pressflow channels resolve`)
                return
            elif current.state != L.SENDING:
                self.ledger.set(current.id, L.SUPERSEDED, last_error="replaced before it was sent")
            else:
                return  # still sending (could not confirm): next run
        elif (briefing := self._briefed(account, slot, message, rows)) is not None:
            return self._covered_by_briefing(account, slot, message, content_hash, rows, briefing)
        generation = sum(1 for r in rows if r.content_hash == content_hash)
        channel = self.channel(account)
        key = L.idempotency_key(slot[0], slot[1], account.channel, account.key, slot[3], slot[4],
                                content_hash, generation)
        too_long = over_limit(account.channel, message.text) if message.kind == "post" else None
        row = self.ledger.add(release=slot[0], language=slot[1], channel=account.channel, account=account.key,
                              kind=slot[3], part=slot[4], content_hash=content_hash, key=key,
                              planned=None if too_long else channel.plan(key), message=message_to_dict(message),
                              replaces=replaces, state=L.FAILED if too_long else L.PENDING, last_error=too_long)
        if too_long:
            return self._done(row.id, L.FAILED)
        self._send(account, row)

    # --- threads ------------------------------------------------------------------------------

    def _parent(self, row: L.Row) -> L.Row | None:
        """The newest row still standing of the thread part before `row` (None for a first part)."""
        if row.part == 0:
            return None
        slot = (row.release, row.language, row.account, row.kind, row.part - 1)
        active = [r for r in self.ledger.rows(account=row.account, release=row.release)
                  if r.slot == slot and r.state not in L.GONE]
        return active[-1] if active else None

    def _replies_to_gone(self, account: Account, row: L.Row) -> bool:
        """Whether a sent thread part replies to a post that is deleted or about to be: its
        parent was (or is being) posted again by a correction, on a channel without edits.
        Then the part is deleted and posted again too, replying to the new parent; so are the
        parts after it, each in turn, because each one's parent is then posted again."""
        if row.kind != "post" or row.part == 0 or self.channel(account).capabilities.edit:
            return False
        parent = self._parent(row)
        if parent is None:
            return False
        replied = row.message.get("reply_to")
        if replied is None:  # sent before reply targets were kept: a newer parent was posted since
            return parent.created_at > row.created_at
        return not (parent.state == L.SENT and parent.remote_id == replied)

    # --- embargoed briefings ------------------------------------------------------------------

    def _briefed(self, account: Account, slot: tuple, message: Message, rows: list[L.Row]) -> L.Row | None:
        """The briefing this list already has of exactly this release, sent after any earlier
        delivery of the release to it: then the release is not sent to it again."""
        if message.kind != "release" or account.channel != "email":
            return None
        briefings = [r for r in self.ledger.rows(account=account.key, release=slot[0])
                     if r.slot == (slot[0], slot[1], account.key, BRIEFING, 0) and r.state == L.SENT]
        if not briefings:
            return None
        briefing = briefings[-1]
        same = briefing.message.get("text") == message.text and briefing.message.get("title") == message.title
        return briefing if same and all(r.created_at <= briefing.created_at for r in rows) else None

    def _covered_by_briefing(self, account: Account, slot: tuple, message: Message, content_hash: str,
                             rows: list[L.Row], briefing: L.Row) -> None:
        """The embargo ended and the list had the same text as a briefing: its release delivery
        is the briefing's message (a correction or a withdrawal later goes to it as usual)."""
        generation = sum(1 for r in rows if r.content_hash == content_hash)
        key = L.idempotency_key(slot[0], slot[1], account.channel, account.key, slot[3], slot[4],
                                content_hash, generation)
        row = self.ledger.add(release=slot[0], language=slot[1], channel=account.channel, account=account.key,
                              kind=slot[3], part=slot[4], content_hash=content_hash, key=key,
                              planned=briefing.planned, message=message_to_dict(message), state=L.SENT,
                              last_error=f"not sent again: the list had it as embargoed briefing {briefing.id}")
        self.ledger.set(row.id, L.SENT, remote_id=briefing.remote_id, url=briefing.url)
        self._briefing_followed(row)

    def _briefing_followed(self, release_row: L.Row) -> None:
        """The release went to the list: its briefing is history (superseded by the release)."""
        for row in self.ledger.rows(account=release_row.account, release=release_row.release, states=(L.SENT,)):
            if row.slot == (release_row.release, release_row.language, release_row.account, BRIEFING, 0):
                self.ledger.set(row.id, L.SUPERSEDED, last_error=f"the embargo ended: the release is delivery "
                                                                 f"{release_row.id}")

    def _briefing_over(self, account: Account, row: L.Row) -> None:
        """A briefing no longer due because its embargo ended (or its list is no longer marked):
        a sent one stays sent, one not sent by then is never sent."""
        if row.state in (L.PENDING, L.POSTPONED, L.FAILED):
            self.ledger.set(row.id, L.SUPERSEDED, last_error="the embargo ended before it was sent")
        elif row.state == L.SENDING:
            self._settle(account, row)  # find out whether it went; if it did not, it goes now
        elif row.state == L.UNKNOWN:
            self.report.unknown.append(row)

    # --- sending ------------------------------------------------------------------------------

    def _reply_to(self, row: L.Row) -> tuple[bool, str | None]:
        """(ready, remote id of the previous part): a part waits until the one before is sent
        (its newest row: not one a correction replaces)."""
        if row.part == 0:
            return True, None
        parent = self._parent(row)
        return (True, parent.remote_id) if parent is not None and parent.state == L.SENT else (False, None)

    def _send(self, account: Account, row: L.Row) -> None:
        if row.state == L.POSTPONED and row.retry_at and row.retry_at > self.now:
            self.report.postponed.append(row)
            return
        if (until := self._blocked.get(account.key)) is not None:
            self.ledger.set(row.id, L.POSTPONED, retry_at=until)
            self.report.postponed.append(self.ledger.get(row.id))
            return
        ready, reply_to = self._reply_to(row)
        if not ready:
            return  # the previous part comes first (next run, once it is sent)
        channel = self.channel(account)
        message = message_from_dict(row.message, reply_to)
        if reply_to is not None and row.message.get("reply_to") != reply_to:  # kept: see _replies_to_gone
            self.ledger.set(row.id, row.state, message={**row.message, "reply_to": reply_to})
            row = self.ledger.get(row.id)
        if row.replaces is not None:
            old = self.ledger.get(row.replaces)
            if old is not None and old.state == L.SENT:
                if channel.capabilities.edit:
                    return self._attempt(account, row, lambda: channel.update(old.remote_id, message), old=old)
                if channel.capabilities.delete:
                    self._delete(account, old)
                    if self.ledger.get(old.id).state != L.DELETED:
                        return  # the old post must go first: next run
                else:
                    self.ledger.set(old.id, L.SUPERSEDED, last_error=f"corrected by delivery {row.id}")
        self._attempt(account, row, lambda: channel.send(message, key=row.idempotency_key, planned=row.planned))

    def _attempt(self, account: Account, row: L.Row, call: Callable[[], Sent], old: L.Row | None = None) -> None:
        if not self.ledger.claim(row, from_states=(L.PENDING, L.POSTPONED)):
            return
        try:
            sent = self.around_send(row, call)
        except RateLimited as exc:
            self._postpone(account, row, exc)
        except Unconfirmable as exc:
            self.ledger.set(row.id, L.UNKNOWN, last_error=_line(exc))
            self._done(row.id, L.UNKNOWN)
        except ChannelError as exc:
            self.ledger.set(row.id, L.FAILED, last_error=_line(exc))
            self._done(row.id, L.FAILED)
        except Exception as exc:  # the outcome is not known (a lost answer): confirm before anything else
            log.warning("delivery %s: %s; confirming", row.id, _line(exc))
            self.ledger.set(row.id, L.SENDING, last_error=_line(exc))
            self._settle(account, self.ledger.get(row.id))
        else:
            self._mark_sent(row, sent, old)

    def _mark_sent(self, row: L.Row, sent: Sent, old: L.Row | None = None) -> None:
        self.ledger.set(row.id, L.SENT, remote_id=sent.remote_id, url=sent.url, last_error=None)
        if old is not None:
            self.ledger.set(old.id, L.SUPERSEDED, last_error=f"edited in place by delivery {row.id}")
        if row.kind == "release":
            self._briefing_followed(row)
        self._done(row.id, L.SENT)

    def _postpone(self, account: Account, row: L.Row, exc: RateLimited, state: str = L.POSTPONED) -> None:
        self._blocked[account.key] = exc.retry_at
        self.ledger.set(row.id, state, retry_at=exc.retry_at, last_error=_line(exc))
        self.report.postponed.append(self.ledger.get(row.id))

    def _settle(self, account: Account, row: L.Row) -> L.Row | None:
        """A row left `sending` (or `deleting`): find out what happened before doing anything else."""
        channel = self.channel(account)
        if row.state == L.DELETING:
            self._delete(account, row, claimed=True)
            return self.ledger.get(row.id)
        ready, reply_to = self._reply_to(row)
        message = message_from_dict(row.message, reply_to)
        try:
            if row.replaces is not None and channel.capabilities.edit:
                old = self.ledger.get(row.replaces)
                found = channel.update(old.remote_id, message)  # an edit applied twice is the same edit
            else:
                found = channel.confirm(message, key=row.idempotency_key, planned=row.planned)
        except RateLimited as exc:
            self._postpone(account, row, exc, state=L.SENDING)  # still to be confirmed
            return self.ledger.get(row.id)
        except Unconfirmable as exc:
            self.ledger.set(row.id, L.UNKNOWN, last_error=_line(exc))
            self._done(row.id, L.UNKNOWN)
            return self.ledger.get(row.id)
        except Exception as exc:
            self.ledger.set(row.id, L.SENDING, last_error=f"not confirmed yet: {_line(exc)}")
            self.report.errors.append(f"{account.key}: delivery {row.id} not confirmed yet: {_line(exc)}")
            return self.ledger.get(row.id)
        if found is not None:
            self._mark_sent(row, found)
            return self.ledger.get(row.id)
        if row.attempts >= MAX_ATTEMPTS:
            self.ledger.set(row.id, L.FAILED, last_error=f"not sent after {row.attempts} attempts: {row.last_error}")
            self._done(row.id, L.FAILED)
            return self.ledger.get(row.id)
        self.ledger.set(row.id, L.PENDING)  # surely not sent: send it again, with the same key
        fresh = self.ledger.get(row.id)
        self._send(account, fresh)
        return self.ledger.get(row.id)

    # --- taking back --------------------------------------------------------------------------

    def _take_back(self, account: Account, row: L.Row) -> None:
        if row.state in (L.PENDING, L.POSTPONED, L.FAILED):
            self.ledger.set(row.id, L.SUPERSEDED, last_error="no longer published before it was sent")
        elif row.state == L.SENDING:
            self._settle(account, row)
        elif row.state == L.UNKNOWN:
            self.report.unknown.append(row)
        elif row.state in (L.SENT, L.DELETING):
            channel = self.channel(account)
            if channel.capabilities.delete:
                self._delete(account, row, claimed=row.state == L.DELETING)
            elif row.kind in ("release", BRIEFING):
                self._notice(account, row)

    def _delete(self, account: Account, row: L.Row, *, claimed: bool = False) -> None:
        if not claimed and not self.ledger.claim(row, from_states=(L.SENT,), to=L.DELETING):
            return
        try:
            self.channel(account).delete(row.remote_id)
        except RateLimited as exc:
            self._postpone(account, row, exc, state=L.DELETING)
            return
        except Exception as exc:  # stays `deleting`: the next run deletes again (a missing post counts as deleted)
            self.ledger.set(row.id, L.DELETING, last_error=_line(exc))
            self.report.errors.append(f"{account.key}: delivery {row.id} not deleted yet: {_line(exc)}")
            return
        self.ledger.set(row.id, L.DELETED, last_error=None)
        self._done(row.id, L.DELETED)

    def _notice(self, account: Account, row: L.Row) -> None:
        """No delete on this channel (e-mail): the list gets a withdrawal notice, once."""
        slot = (row.release, row.language, row.account, "withdrawal", 0)
        message = withdrawal_notice(row.message)
        notices = [r for r in self.ledger.rows(account=account.key, release=row.release)
                   if r.slot == slot and r.message.get("url") == message.url and r.created_at >= row.created_at]
        if notices:
            notice = notices[-1]
            if notice.state == L.SENDING:
                notice = self._settle(account, notice)
            elif notice.state in (L.PENDING, L.POSTPONED):
                self._send(account, notice)
                notice = self.ledger.get(notice.id)
        else:
            content_hash = message.content_hash()
            key = L.idempotency_key(*slot[:2], account.channel, account.key, "withdrawal", 0, content_hash, row.id)
            notice = self.ledger.add(release=row.release, language=row.language, channel=account.channel,
                                     account=account.key, kind="withdrawal", part=0, content_hash=content_hash,
                                     key=key, planned=self.channel(account).plan(key),
                                     message=message_to_dict(message))
            self._send(account, notice)
            notice = self.ledger.get(notice.id)
        if notice is not None and notice.state == L.SENT:
            self.ledger.set(row.id, L.WITHDRAWN, last_error=f"withdrawal notice sent (delivery {notice.id})")

    # --- reporting ----------------------------------------------------------------------------

    def _done(self, row_id: int, state: str) -> None:
        row = self.ledger.get(row_id)
        {L.SENT: self.report.sent, L.FAILED: self.report.failed, L.UNKNOWN: self.report.unknown,
         L.DELETED: self.report.deleted}[state].append(row)
        if self.on_event is not None and state in EVENTS:
            try:
                self.on_event(EVENTS[state], row)
            except Exception:  # an event that cannot be emitted must not undo a delivery
                log.exception("event for delivery %s not emitted", row_id)


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def deliver(settings: Settings, accounts: list[Account], *, release: str | None = None,
            on_event: Callable[[str, L.Row], None] | None = None) -> DeliverReport:
    """Send what is due to every enabled account; take back what was withdrawn."""
    return Runner(settings, accounts, on_event=on_event).run(release=release)


def resolve(settings: Settings, row_id: int, *, sent: str | None = None, not_sent: bool = False) -> L.Row:
    """A person settles an `unknown` delivery: it was sent (at this URL), or it was not (send it again)."""
    from ..core.errors import ConfigError

    ledger = L.Ledger(settings.db_url)
    row = ledger.get(row_id)
    if row is None:
        raise ConfigError(f"no delivery {row_id} (see `pressflow channels status`)")
    if row.state not in (L.UNKNOWN, L.SENDING):
        raise ConfigError(f"delivery {row_id} is {row.state}, not unknown: nothing to settle")
    if sent is not None:
        remote = row.remote_id or sent
        if row.channel == "bluesky" and row.planned and "/post/" in sent:
            remote = sent  # the channel deletes by the record key at the URL's end
        ledger.set(row_id, L.SENT, url=sent, remote_id=remote, last_error="settled by hand: sent")
    elif not_sent:
        ledger.set(row_id, L.PENDING, last_error="settled by hand: not sent")
    return ledger.get(row_id)
