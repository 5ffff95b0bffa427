"""How `pressflow serve` bounds slow clients: time limits on a request's arrival, and a
connection limit below the process's file limit.

uvicorn (0.55) has no timeout on a request's arrival: its keep-alive timer only runs between
requests and is reset by every byte, so a client that sends half a header and then a byte every
few seconds ("slowloris") holds its connection, and its file descriptor, for ever. 1,100 of them
under systemd's default `LimitNOFILE=1024` exhaust the descriptors: accept() fails with
`Errno 24` and nobody else is served. `limit_concurrency` does not help: it answers 503 to a
request once too many connections are open, so under such an attack it refuses the honest
requests and keeps the slow ones.

So the server runs uvicorn's own httptools protocol with a small subclass (`BoundedHttp`):

- **Header timeout** (`PRESSFLOW_SERVE_HEADER_TIMEOUT`, default 10 s, at most 30): from a
  connection's opening, or from the first byte of a further request on a kept-alive connection,
  to the end of the request's headers. Past it the connection is closed (with 408 when part of a
  request came). Headers are also capped at 64 KiB (431): httptools has no such limit of its own.
- **Body timeout** (`PRESSFLOW_SERVE_BODY_TIMEOUT`, default 30 s, at most 30): from the end of
  the headers to the end of the body; past it the connection is closed and the page sees the
  client gone. A response the client stops reading is cut after the same time (its write
  buffer full all along): slow reading is the same attack.
- **Connection limit** (`PRESSFLOW_SERVE_MAX_CONNECTIONS`; unset: derived from the file limit,
  `connection_limit`): when a new connection would pass it, the connection that has waited longest
  without a complete request (still sending its headers, or idle between requests) is closed to
  make room: a slow client is the one that waits, an honest request sends its headers at once and
  is served. Connections whose requests are being answered are never closed for room; when all
  are, the new connection is refused.

The limit stays below the file limit by `RESERVED_FILES` (the database and its pool, log files,
published files being sent, which anyio's 40 worker threads bound, a publish run's files and its
Prefect client) plus the files already open at start, plus `ACCEPT_BATCH`: the event loop
accepts at most that many connections at once (uvicorn's `backlog`, which asyncio's selector
loop also uses as its accept batch) before any is admitted or turned away. The asyncio loop is
used rather than uvloop, whose libuv accepts until the queue is empty, without a bound.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections import OrderedDict
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from ..core.config import Settings
from ..core.errors import ConfigError

RESERVED_FILES = 256
ACCEPT_BATCH = 64
MIN_CONNECTIONS = 16
DEFAULT_MAX_CONNECTIONS = 10_000  # with a very high file limit: a review page needs far fewer
MAX_HEADER_BYTES = 64 * 1024
MAX_TIMEOUT = 30  # seconds: the most a header or body timeout may be
SHED_WARNING_SECONDS = 60  # at most one warning a minute while slow connections are being shed

logger = logging.getLogger("uvicorn.error")


def open_files() -> int:
    """How many files this process has open now (0 where /proc is not there to say)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def connection_limit(configured: int = 0) -> int:
    """The most connections the server keeps open: `configured` (checked against the file limit),
    or what the file limit leaves after the files the process needs."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = DEFAULT_MAX_CONNECTIONS * 2
    room = soft - open_files() - RESERVED_FILES - ACCEPT_BATCH
    if room < MIN_CONNECTIONS:
        raise ConfigError(f"the file limit ({soft} open files) leaves room for {max(room, 0)} connections; "
                          f"raise it (systemd: LimitNOFILE=65536, a shell: ulimit -n 65536)")
    if configured:
        if configured > room:
            raise ConfigError(f"PRESSFLOW_SERVE_MAX_CONNECTIONS={configured} does not fit in the file limit "
                              f"({soft} open files leave room for {room} connections); lower it, or raise the "
                              "limit (systemd: LimitNOFILE=65536)")
        return configured
    return min(room, DEFAULT_MAX_CONNECTIONS)


class Guard:
    """The connections of one server: how many are open, and which wait without a complete
    request, oldest first (the ones closed to make room)."""

    def __init__(self, max_connections: int, header_timeout: float, body_timeout: float):
        self.max_connections, self.header_timeout, self.body_timeout = max_connections, header_timeout, body_timeout
        self.live: set[BoundedHttp] = set()
        self.waiting: OrderedDict[BoundedHttp, None] = OrderedDict()
        self.shed = 0
        self._warned = -float("inf")

    def opened(self, protocol: "BoundedHttp") -> None:
        self.live.add(protocol)
        self.waiting[protocol] = None
        while len(self.live) > self.max_connections:
            oldest = next(iter(self.waiting))
            if oldest is protocol:  # every other connection is being answered: turn this one away
                protocol.drop()
                return
            oldest.drop()
            self.shed += 1
            self._warn()

    def idle(self, protocol: "BoundedHttp") -> None:
        if protocol in self.live:
            self.waiting[protocol] = None
            self.waiting.move_to_end(protocol)

    def busy(self, protocol: "BoundedHttp") -> None:
        self.waiting.pop(protocol, None)

    def gone(self, protocol: "BoundedHttp") -> None:
        self.live.discard(protocol)
        self.waiting.pop(protocol, None)

    def _warn(self) -> None:
        now = time.monotonic()
        if now - self._warned >= SHED_WARNING_SECONDS:
            self._warned = now
            logger.warning("%d connections open (the limit): closed %d slow or idle connections so far to admit "
                           "new ones; a reverse proxy in front should absorb slow clients (README, Review page)",
                           len(self.live), self.shed)


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with header, body and send timeouts and a connection limit."""

    guard: ClassVar[Guard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None  # the headers' or the body's deadline
        self._send_timer: asyncio.TimerHandle | None = None  # while the client reads nothing of the answer
        self._header_bytes: int | None = 0  # None: the headers are in; counting the next request's

    # --- the connection's life ---

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.guard.header_timeout, self._headers_too_slow)
        self.guard.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        self.guard.gone(self)
        super().connection_lost(exc)

    def drop(self) -> None:
        """Close the connection now, with no answer (to make room, or refused for want of it)."""
        self._stop_timers()
        self.guard.gone(self)
        self.transport.abort()  # no lingering close: the descriptor is what the room is made for

    # --- the request's arrival ---

    def data_received(self, data: bytes) -> None:
        if self._header_bytes is not None:
            self._header_bytes += len(data)
        super().data_received(data)
        if self._header_bytes is not None and self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
            self._answer(431, "request headers too large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._timer is None:  # a further request on a kept-alive connection: the same time for its headers
            self._header_bytes = 0
            self._arm(self.guard.header_timeout, self._headers_too_slow)

    def on_headers_complete(self) -> None:
        self._disarm()
        self._header_bytes = None
        self.guard.busy(self)
        super().on_headers_complete()
        self._arm(self.guard.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline and self.cycle.response_complete:
            self._header_bytes = 0
            self.guard.idle(self)  # waits for its next request: uvicorn's keep-alive timer runs

    # --- a response the client does not read ---

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.guard.body_timeout, self._reads_too_slow)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    # --- timers ---

    def _arm(self, seconds: float, handler) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stop_timers(self) -> None:
        self._disarm()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _headers_too_slow(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self._header_bytes:
            self._answer(408, "request headers not received in time")
        else:
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()  # the page, reading the body, sees the client gone

    def _reads_too_slow(self) -> None:
        self._send_timer = None
        if not self.transport.is_closing():
            self.transport.abort()  # its buffer is full: a graceful close would wait for it

    def _answer(self, status: int, message: str) -> None:
        body = message.encode("ascii")
        self.transport.write(b"".join([
            STATUS_LINE[status], b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: ", str(len(body)).encode("ascii"), b"\r\nconnection: close\r\n\r\n", body]))
        self.transport.close()


def uvicorn_options(settings: Settings) -> dict:
    """uvicorn.run's options for bounded slow clients (see the module's docstring)."""
    for name, seconds in (("HEADER", settings.serve_header_timeout), ("BODY", settings.serve_body_timeout)):
        if not 0 < seconds <= MAX_TIMEOUT:
            raise ConfigError(f"PRESSFLOW_SERVE_{name}_TIMEOUT={seconds:g}: give a number of seconds above 0 and at "
                              f"most {MAX_TIMEOUT} (a slow client holds a connection that long)")
    if settings.serve_max_connections < 0:
        raise ConfigError("PRESSFLOW_SERVE_MAX_CONNECTIONS: give a number of connections, or 0 for what the "
                          "file limit leaves room for")
    guard = Guard(connection_limit(settings.serve_max_connections), settings.serve_header_timeout,
                  settings.serve_body_timeout)
    protocol = type("BoundedHttp", (BoundedHttp,), {"guard": guard})
    return {"http": protocol, "loop": "asyncio", "ws": "none", "backlog": ACCEPT_BATCH, "timeout_keep_alive": 5}
