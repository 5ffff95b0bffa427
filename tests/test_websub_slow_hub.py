"""A WebSub hub that accepts the connection and then answers one byte every few seconds (each
read is quick enough for a per-read timeout, the answer never ends): the pings of a publish are
bounded as a whole, and such a hub is a warning, as a down one is. A real trickling server on
loopback, in-process and under the `pressflow publish` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from pressflow.drafts import service
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.publish import publish, websub
from pressflow.records import validate_record


class TricklingHub:
    """Accepts each connection, reads the request, then sends an HTTP answer one byte every
    `interval` seconds, at most `limit` bytes (so a client without a bound is slow, not stuck
    forever), and records how many connections it had."""

    ANSWER = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nX-Padding: " + b"." * 500 + b"\r\n\r\n"

    def __init__(self, interval: float, limit: int):
        self.interval, self.limit = interval, limit
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hub"
        self.stopped = threading.Event()
        self.connections = 0

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(connection,), daemon=True).start()

    def _trickle(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(5)
            try:
                connection.recv(65536)  # the request (small: one form field)
                for byte in self.ANSWER[:self.limit]:
                    if self.stopped.wait(self.interval):
                        return
                    connection.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up and closed


def prepare(settings: Settings) -> None:
    """One English release, approved as it is prepared (no reviewer in these tests)."""
    record = {"id": "forum", "title": "Water forum", "date": "2021-09-01", "summary": "Delegates met.",
              "languages": []}
    assert not pipeline.prepare([(None, validate_record(record))], settings).failed
    assert service.approve_releases(settings, ["forum"], reviewer="test").count


def test_the_pings_of_a_publish_are_bounded_as_a_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(websub, "BUDGET_SECONDS", 3, raising=False)
    with TricklingHub(interval=0.5, limit=60) as hub:  # 30 s an answer; every read well within 10 s
        settings = Settings(out_dir=tmp_path / "out", websub_hub=hub.url)
        prepare(settings)
        started = time.monotonic()
        report = publish(settings)
        took = time.monotonic() - started
    assert len(report.feeds_changed) >= 2  # several pings would each have waited 30 s
    assert report.releases == {"forum": ["en"]}
    assert took < 3 + 5, took
    [warning] = [w for w in report.warnings if "WebSub" in w]
    assert warning == (f"WebSub hub {hub.url} did not answer within 3 s (all pings of a publish together); "
                       f"{len(report.feeds_changed)} changed feed(s) not confirmed: subscribers will poll them")
    assert (settings.out_dir / "feeds" / "en" / "feed.json").is_file()


@pytest.mark.slow
def test_publish_with_a_hub_trickling_a_byte_every_8_seconds_is_done_within_60_seconds(tmp_path):
    """As reported: one byte every 8 s kept `pressflow publish` waiting 150 s and more."""
    with TricklingHub(interval=8, limit=40) as hub:
        env = {**os.environ, "PRESSFLOW_WEBSUB_HUB": hub.url, "PRESSFLOW_OUT": str(tmp_path / "out")}
        prepare(Settings(out_dir=tmp_path / "out", websub_hub=hub.url))
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pressflow.cli", "publish"], env=env, capture_output=True,
                              text=True, timeout=300, stdin=subprocess.DEVNULL)
        took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert took < 60, took
    assert f"WebSub hub {hub.url} did not answer within {websub.BUDGET_SECONDS} s" in done.stdout + done.stderr
