"""`pressflow serve` against slow clients, through a real server process and real sockets.

Under systemd's default file limit (1,024), 1,100 clients that send half a header and then a
line now and then ("slowloris") once took every file descriptor (`Errno 24` on accept) and nobody
else was served. Now the connections still waiting for their headers make room for new ones, a
request's headers and body must arrive in time, and a normal request is answered at once.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest
from conftest import wait_until_serving

from pressflow.drafts import reviewers
from pressflow.core.config import Settings
from pressflow.core.errors import ConfigError
from pressflow.review_app import connections

SLOW_CLIENTS = 1_100
FILE_LIMIT = 1_024  # systemd's default LimitNOFILE for a service


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def file_limit(soft: int):
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    return limit


@contextmanager
def serving(tmp_path: Path, *, files: int | None = None, **env: str) -> Iterator[tuple[str, Path]]:
    """`pressflow serve` on a free loopback port (under a file limit of `files`); yields its base
    URL and the file its output goes to."""
    settings = Settings(out_dir=tmp_path / "out")
    reviewers.add_user(settings.db_url, "alice", "correct horse battery", [])
    port, output = free_port(), tmp_path / "serve-output.txt"
    environment = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "FORWARDED_ALLOW_IPS")}
    environment.update(PRESSFLOW_PUBLISH_ON_APPROVE="0", **env)
    with output.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "pressflow.cli", "serve", "--out", str(settings.out_dir),
                                    "--port", str(port)], env=environment, stdout=sink, stderr=subprocess.STDOUT,
                                   text=True, preexec_fn=file_limit(files) if files else None)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                if httpx.get(f"{base}/signin").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() - started > 120:
                pytest.fail(f"pressflow serve did not start:\n{output.read_text()}")
            time.sleep(0.2)
        yield base, output
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Slowloris:
    """`count` connections that each send half a request's headers, then one more header line a
    second, reopening any connection the server closes (as the attack's tools do)."""

    def __init__(self, port: int, count: int):
        self.port, self.count = port, count
        self.sockets: list[socket.socket | None] = [None] * count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def _open(self) -> socket.socket | None:
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(b"GET /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n")
            sock.setblocking(False)
            return sock
        except OSError:
            sock.close()
            return None

    def start(self) -> None:
        for index in range(self.count):
            self.sockets[index] = self._open()
        self._thread.start()

    def _trickle(self) -> None:
        while not self._stop.wait(1.0):
            for index, sock in enumerate(self.sockets):
                if self._stop.is_set():
                    return
                try:
                    if sock is None:
                        raise OSError
                    sock.send(b"X-Slow: a\r\n")
                except OSError:
                    if sock is not None:
                        sock.close()
                    self.sockets[index] = self._open()
                    self.reopened += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def test_a_normal_request_is_answered_while_1100_slow_clients_hold_connections(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < SLOW_CLIENTS + 200:
        pytest.skip(f"this test process may open {hard} files; it needs {SLOW_CLIENTS + 200}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * SLOW_CLIENTS)), hard))
    try:
        # the header timeout at its most: what keeps the server answering here is the connection limit
        with serving(tmp_path, files=FILE_LIMIT, PRESSFLOW_SERVE_HEADER_TIMEOUT="30") as (base, output):
            attack = Slowloris(int(base.rsplit(":", 1)[1]), SLOW_CLIENTS)
            attack.start()
            try:
                time.sleep(3)  # three rounds of trickling, every connection reopened as it is closed
                for _ in range(3):
                    started = time.monotonic()
                    response = httpx.get(f"{base}/signin", timeout=10)
                    elapsed = time.monotonic() - started
                    assert response.status_code == 200 and elapsed < 3, (response.status_code, elapsed)
                    time.sleep(0.5)
            finally:
                attack.stop()
            time.sleep(0.5)
            log = output.read_text()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert "Errno 24" not in log and "Too many open files" not in log and "out of system resource" not in log, log
    assert "closed" in log and "slow or idle connections" in log, log  # it said it shed connections, once
    assert attack.reopened > 0  # the server did close slow connections to make room


@pytest.fixture(scope="module")
def quick_timeouts(tmp_path_factory) -> Iterator[str]:
    with serving(tmp_path_factory.mktemp("quick"), PRESSFLOW_SERVE_HEADER_TIMEOUT="2",
                 PRESSFLOW_SERVE_BODY_TIMEOUT="2") as (base, _output):
        yield base


def time_until_closed(base: str, first: bytes, trickle: bytes, limit: float = 12) -> tuple[float, bytes]:
    """Send `first`, then `trickle` every half second until the server closes the connection:
    how long that took, and what it answered."""
    port = int(base.rsplit(":", 1)[1])
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        started = time.monotonic()
        sock.sendall(first)
        sock.settimeout(0.5)
        while time.monotonic() - started < limit:
            try:
                data = sock.recv(4096)
                if not data:
                    break
                answer += data
            except TimeoutError:
                try:
                    sock.sendall(trickle)
                except OSError:
                    break
            except OSError:
                break
        return time.monotonic() - started, answer


def test_a_client_trickling_its_headers_is_cut_after_the_header_timeout(quick_timeouts):
    elapsed, answer = time_until_closed(quick_timeouts, b"GET /signin HTTP/1.1\r\nHost: x\r\n", b"X-Slow: a\r\n")
    assert 1.5 < elapsed < 5, elapsed
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    elapsed, answer = time_until_closed(quick_timeouts, b"", b"")  # a client that sends nothing at all
    assert 1.5 < elapsed < 5 and answer == b"", (elapsed, answer)


def test_a_client_trickling_its_body_is_cut_after_the_body_timeout(quick_timeouts):
    head = (b"POST /signin HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 10000\r\n\r\nname=")
    elapsed, _answer = time_until_closed(quick_timeouts, head, b"a")
    assert 1.5 < elapsed < 5, elapsed


def test_kept_alive_connections_get_the_same_time_for_each_request(quick_timeouts):
    port = int(quick_timeouts.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /signin HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        time.sleep(0.2)
        sock.sendall(b"GET /signin HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.5)
        answer = b""
        while time.monotonic() - started < 10:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                sock.sendall(b"X-Slow: a\r\n")
                continue
            if not data:
                break
            answer += data
        # (the first answer's last bytes may come first)
        assert 1.5 < time.monotonic() - started < 5 and b"HTTP/1.1 408 " in answer, answer


def test_normal_requests_pass_the_timeouts(quick_timeouts):
    with httpx.Client(base_url=quick_timeouts) as client:
        for _ in range(3):
            assert client.get("/signin").status_code == 200
        response = client.post("/signin", data={"name": "alice", "password": "wrong", "csrf_token": "x"})
        assert response.status_code in (303, 400, 403), response.status_code


# --- settings ------------------------------------------------------------------------------------


def test_the_connection_limit_leaves_room_below_the_file_limit(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    monkeypatch.setattr(connections, "open_files", lambda: 30)
    derived = connections.connection_limit()
    assert derived == 1024 - 30 - connections.RESERVED_FILES - connections.ACCEPT_BATCH
    assert connections.connection_limit(500) == 500
    with pytest.raises(ConfigError, match="PRESSFLOW_SERVE_MAX_CONNECTIONS=1000 does not fit"):
        connections.connection_limit(1000)
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (256, 4096))
    with pytest.raises(ConfigError, match="LimitNOFILE"):
        connections.connection_limit()


def test_timeouts_over_30_seconds_are_refused_when_the_server_starts(tmp_path):
    for name, value in (("HEADER", "60"), ("BODY", "31"), ("BODY", "0")):
        settings = Settings(out_dir=tmp_path, **{f"serve_{name.lower()}_timeout": float(value)})
        with pytest.raises(ConfigError, match=f"PRESSFLOW_SERVE_{name}_TIMEOUT={value}: .* at most 30"):
            connections.uvicorn_options(settings)
    settings = Settings(out_dir=tmp_path, serve_header_timeout=30, serve_body_timeout=30)
    assert connections.uvicorn_options(settings)["backlog"] == connections.ACCEPT_BATCH
