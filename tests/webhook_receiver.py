"""A real HTTP receiver on loopback for webhooks: what Prefect's automations call."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP server on loopback that keeps every JSON body POSTed to it, in order."""

    def __init__(self, path: str = "/notices", wait: float = 240):
        self.wait = wait  # seconds `wait_for` waits, unless told
        self.bodies: list[dict] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.bodies.append(json.loads(body))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def matching(self, predicate) -> list[dict]:
        with self.arrived:
            return [body for body in self.bodies if predicate(body)]

    def wait_for(self, predicate, timeout: float | None = None) -> list[dict]:
        """The bodies `predicate` accepts, once there is one; AssertionError after `timeout` s."""
        timeout = self.wait if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not (found := [body for body in self.bodies if predicate(body)]):
                if (left := deadline - time.monotonic()) <= 0:
                    raise AssertionError(f"no matching webhook call in {timeout} s; got {self.bodies}")
                self.arrived.wait(left)
        return found

    def close(self):
        self.server.shutdown()
        self.server.server_close()
