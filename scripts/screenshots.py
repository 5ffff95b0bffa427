#!/usr/bin/env python3
"""Screenshots of the published site, the subscribe page and the review queue, into docs/screenshots/.

    python scripts/screenshots.py

What it needs (no network):
- pressflow installed with its test extras (`pip install -e '.[test]'`), for Playwright;
- Debian's Chromium at /usr/bin/chromium (`apt-get install chromium`), which Playwright drives;
- a CJK font for the Chinese pages (`apt-get install fonts-noto-cjk`): without one, Chinese
  shows as boxes.

It does what a person would, with the `pressflow` command, in a temporary folder: builds small
Argos test models (`pressflow models build-test en:ar en:zh`: random weights, so the Arabic and
Chinese text is gibberish) into a temporary ARGOS_PACKAGES_DIR; prepares the bundled events
(events/) in Arabic and Chinese; approves every release but one with `pressflow review approve`
and publishes them (`pressflow publish`); then serves the folder (`pressflow serve`, signed in
with a team token) and photographs the first screen at 390 px (a phone) and 1280 px (a laptop):

    page-<lang>-<width>.png       a release page, in en, ar and zh
    subscribe-<lang>-<width>.png  the subscribe page, in en, ar and zh
    queue-<lang>-<width>.png      the review queue with that language's drafts (one release left
                                  pending), the whole page
    index-<lang>-<width>.png      the index, in en and ar
    review.png                    a Chinese draft on the review page, at 1280 px

Each picture but the queue's is the first screen; each is saved as a 256-colour PNG (Pillow), so
the folder stays small. The tests take their own screenshots into a temporary folder; only this
script writes into the checkout.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
TARGETS = ["ar", "zh"]
LANGUAGES = ["en", *TARGETS]
RELEASE = "2021-08-30-beauty-of-life-on-earth"  # published, with an image and quotes
PENDING = "2021-09-12-green-aral-sea-office"  # left for review, so the queue has drafts in every language
HEIGHTS = {390: 844, 1280: 800}
SERVER_WAIT_SECONDS = 60


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pressflow-screenshots-") as temporary:
        work = Path(temporary)
        env = isolated_environment(work)
        out = publish_examples(work, env)
        DOCS.mkdir(parents=True, exist_ok=True)
        with serving(out, env) as (base, token):
            photograph(base, token)
    return 0


def isolated_environment(work: Path) -> dict[str, str]:
    """Argos, Prefect and caches inside `work`, never the user's."""
    cache = work / "cache"
    # argostranslate's spaCy chunker downloads a model unless this folder exists (packages bring their own)
    (cache / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True)
    (work / "argos-packages").mkdir()
    return {**os.environ, "ARGOS_PACKAGES_DIR": str(work / "argos-packages"), "ARGOS_CHUNK_TYPE": "SPACY",
            "XDG_CACHE_HOME": str(cache), "PREFECT_HOME": str(work / "prefect"),
            "PRESSFLOW_MAX_DECODING_LENGTH": "24",  # random weights rarely stop on their own
            "PRESSFLOW_SITE_URL": "https://press.example.org",  # the feed addresses the subscribe page shows
            "PRESSFLOW_PUBLISH_ON_APPROVE": "0"}


def pressflow(env: dict[str, str], *arguments: str) -> None:
    command = [str(Path(sys.executable).with_name("pressflow")), *arguments]
    print("$ pressflow", " ".join(arguments), flush=True)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)


def publish_examples(work: Path, env: dict[str, str]) -> Path:
    """The bundled events in English, Arabic and Chinese: all published but PENDING."""
    out, events = work / "out", work / "events"
    shutil.copytree(ROOT / "events", events)
    for record in events.glob("*.yaml"):  # Arabic and Chinese instead of the member countries' languages
        record.write_text(record.read_text(encoding="utf-8").rstrip("\n") + f"\nlanguages: [{', '.join(TARGETS)}]\n",
                          encoding="utf-8")
    pressflow(env, "models", "build-test", *(f"en:{lang}" for lang in TARGETS), "--work-dir", str(work / "models"))
    pressflow(env, "prepare", str(events), "--out", str(out))
    for record in sorted(events.glob("*.yaml")):
        if record.stem != PENDING:
            pressflow(env, "review", "approve", "--all", "--release", record.stem, "--reviewer", "rosa",
                      "--out", str(out))
    pressflow(env, "publish", "--no-deliver", "--out", str(out))
    return out


@contextmanager
def serving(out: Path, env: dict[str, str]):
    """`pressflow serve` on `out`, with a team token; yields its address and the token."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_urlsafe(16)
    command = [str(Path(sys.executable).with_name("pressflow")), "serve", "--out", str(out), "--port", str(port)]
    server = subprocess.Popen(command, env={**env, "PRESSFLOW_REVIEW_TOKEN": token})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/signin", server)
        yield base, token
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_WAIT_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"pressflow serve stopped (exit {server.returncode})")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"pressflow serve did not answer {url} within {SERVER_WAIT_SECONDS} s")


def photograph(base: str, token: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for width in HEIGHTS:
            context = browser.new_context(viewport={"width": width, "height": HEIGHTS[width]})
            page = context.new_page()
            sign_in(page, base, token)
            for lang in LANGUAGES:
                shoot(page, f"{base}/site/{lang}/{RELEASE}.html", f"page-{lang}-{width}.png")
                shoot(page, f"{base}/site/{lang}/subscribe.html", f"subscribe-{lang}-{width}.png")
                shoot(page, f"{base}/?lang={lang}", f"queue-{lang}-{width}.png", full_page=True)
                if lang != "zh":  # the README's index pictures
                    shoot(page, f"{base}/site/{lang}/index.html", f"index-{lang}-{width}.png")
            if width == 1280:
                page.goto(f"{base}/?lang=zh")
                page.get_by_role("link", name="(Press release, zh)").first.click()
                page.wait_for_load_state("load")
                save(page, "review.png")
            context.close()
        browser.close()


def sign_in(page, base: str, token: str) -> None:
    page.goto(f"{base}/signin")
    page.get_by_label("Your name").fill("rosa")
    page.get_by_label("Password or team token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state("load")


def shoot(page, url: str, name: str, full_page: bool = False) -> None:
    response = page.goto(url)
    if response is None or response.status != 200:
        raise SystemExit(f"{url}: answered {response.status if response else 'nothing'}")
    page.wait_for_load_state("load")
    save(page, name, full_page)


def save(page, name: str, full_page: bool = False) -> None:
    """The first screen (or the whole page), as a 256-colour PNG."""
    target = DOCS / name
    page.screenshot(path=str(target), full_page=full_page)
    with Image.open(target) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(target, optimize=True)
    print(target.relative_to(ROOT), f"{target.stat().st_size // 1024} KiB", flush=True)


if __name__ == "__main__":
    sys.exit(main())
