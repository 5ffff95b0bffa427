"""What approving does: publish at once, or leave it to the scheduled publish deployment.

- "now", with a Prefect server configured (PREFECT_API_URL): nothing here. The approval itself
  is a Prefect event (`pressflow.drafts.announce`), and the `publish` deployment's trigger in
  prefect.yaml makes one run of a burst of them, so three clicks are one run, not three; a
  worker does the writing and the run, its logs and artifacts show in the Prefect UI;
- "now", without a Prefect server: publish with the library (`pressflow.publish.publish`) in
  this process, as `pressflow publish` does then; no Prefect in this process at all (it would
  need a temporary Prefect server of its own, ~10-20 s to start, that records runs nobody sees).
  Runs happen on a background thread and the page says when publishing is under way and how
  it ended;
- "scheduled": do nothing; the `publish-scheduled` deployment picks approved drafts up.

PRESSFLOW_PUBLISH_ON_APPROVE=0 (`Settings.publish_on_approve`) selects "scheduled"; the default is "now".
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.config import Settings, prefect_api_url

if TYPE_CHECKING:
    from ..publish import PublishReport

DEPLOYMENT = "pressflow-publish/publish"
SCHEDULED_DEPLOYMENT = "pressflow-publish/publish-scheduled"


@dataclass(frozen=True)
class PublishMode:
    on_approve: bool
    via_prefect: bool

    def describe(self) -> str:
        if not self.on_approve:
            return (f"Approved drafts are published by the scheduled deployment {SCHEDULED_DEPLOYMENT} "
                    "(hourly); approving does not publish by itself.")
        if self.via_prefect:
            return (f"Approving publishes through the Prefect deployment {DEPLOYMENT}: its trigger on "
                    "approvals starts one run once approving pauses for 30 seconds.")
        return ("Approving publishes at once, from this server, in the background (no Prefect server is "
                "configured, so these runs are not recorded in Prefect; set PREFECT_API_URL for that).")


def mode_from_environment(settings: Settings | None = None) -> PublishMode:
    settings = settings or Settings()
    return PublishMode(on_approve=settings.publish_on_approve, via_prefect=prefect_api_url() is not None)


@dataclass(frozen=True)
class Outcome:
    """How the last publish run in this process ended."""

    ok: bool
    message: str
    finished_at: dt.datetime


class Publisher:
    """Publishes approved drafts when asked, as the mode says.

    In process, one flow run at a time on a background thread. A request made while a run is
    under way is served by one more run afterwards, since the running one may have read the
    store before that approval; any number of such requests make only that one run.
    """

    def __init__(self, settings: Settings, mode: PublishMode):
        self.settings, self.mode = settings, mode
        self._changed = threading.Condition()
        self._wanted = self._running = False
        self._started_at: dt.datetime | None = None
        self._last: Outcome | None = None

    def request(self) -> str:
        """Start publishing; returns a sentence for the reviewer."""
        if self.mode.via_prefect:
            return (f"Approved: the Prefect deployment {DEPLOYMENT} publishes it once approving pauses "
                    "for 30 seconds (one run for a burst of approvals).")
        with self._changed:
            self._wanted = True
            if not self._running:
                self._running = True
                threading.Thread(target=self._work, name="pressflow-publish", daemon=True).start()
        return "Publishing has started in the background; this page says when it is done."

    def status(self) -> dict | None:
        """What the page says about in-process publishing: {"running", "text"}, or None before any run."""
        with self._changed:
            if self._running:
                started = _clock(self._started_at)
                return {"running": True, "ok": None, "text": f"Publishing is under way (started {started})…"}
            if self._last is None:
                return None
            return {"running": False, "ok": self._last.ok,
                    "text": f"{self._last.message} (finished {_clock(self._last.finished_at)})"}

    def wait(self, timeout: float) -> bool:
        """Block until no run is under way or wanted (tests, shutdown); False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout)

    def _work(self) -> None:
        while self._take_request():
            outcome = _run_publish_flow(self.settings)
            with self._changed:
                self._last = outcome

    def _take_request(self) -> bool:
        with self._changed:
            if not self._wanted:
                self._running = False
                self._changed.notify_all()
                return False
            self._wanted, self._started_at = False, _now()
            return True


def _run_publish_flow(settings: Settings) -> Outcome:
    """Publish in this process with the library (no Prefect server is configured)."""
    from ..publish import publish

    try:
        report = publish(settings)
    except Exception as exc:  # noqa: BLE001 - the approval stands; the page says why publishing did not
        return Outcome(False, f"Publishing failed: {type(exc).__name__}: {exc}", _now())
    return Outcome(not report.failed, _summary_sentence(report), _now())


def _summary_sentence(report: PublishReport) -> str:
    published = sum(len(langs) for langs in report.releases.values())
    sentence = (f"Published {published} release language(s): {report.files_written} files written, "
                f"{report.files_unchanged} unchanged.")
    failed = [f"{slug} in {lang}: {reason}" for slug, langs in sorted(report.failed.items())
              for lang, reason in sorted(langs.items())]
    return sentence + (f" Not published: {'; '.join(failed)}." if failed else "")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _clock(when: dt.datetime | None) -> str:
    return when.strftime("%H:%M:%S UTC") if when else "just now"
