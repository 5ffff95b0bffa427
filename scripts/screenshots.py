#!/usr/bin/env python3
"""Screenshots of the published site for the README, into docs/screenshots/.

    python scripts/screenshots.py [--out DIR]

Publishes the demo site (`scripts/demo_site.py`: the bundled events in English, Spanish, Chinese
and Arabic, translated by random-weight test models, so the translated text is gibberish) and
photographs a release page and the index at 390 px (a phone) and 1280 px (a laptop), in English
and Arabic, and the review page (`pressflow serve` on that site, signed in with a team token, a
Spanish draft open), with Debian's Chromium driven by Playwright. The tests take the same pictures into a
temporary folder; only this script writes into the checkout. The language bar names Chinese in
Chinese: without a CJK font (Debian: `apt-get install fonts-wqy-microhei`) it shows as boxes.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
RELEASE = "2021-08-30-beauty-of-life-on-earth"
SHOTS = [(lang, name, width) for lang in ("en", "ar") for name in (f"{RELEASE}.html", "index.html")
         for width in (390, 1280)]
HEIGHTS = {390: 844, 1280: 800}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="publish the demo site here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pressflow-screenshots-") as temporary:
        out = (args.out or Path(temporary) / "out").resolve()
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_site.py"), "--pending", str(out)], check=True)
        from playwright.sync_api import sync_playwright

        DOCS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for lang, name, width in SHOTS:
                page = browser.new_page(viewport={"width": width, "height": HEIGHTS[width]})
                page.goto((out / "site" / lang / name).as_uri())
                page.wait_for_load_state("load")
                target = DOCS / f"{'page' if name != 'index.html' else 'index'}-{lang}-{width}.png"
                page.screenshot(path=str(target))
                print(target.relative_to(ROOT))
                page.close()
            review_page(browser, out)
            browser.close()
    return 0


def review_page(browser, out: Path) -> None:
    """`pressflow serve` on the demo site, signed in with a team token, a Spanish draft open."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_urlsafe(16)
    home = out.parent / f".{out.name}-home"  # demo_site.py's Argos and Prefect homes
    env = {**os.environ, "PRESSFLOW_REVIEW_TOKEN": token, "PRESSFLOW_PUBLISH_ON_APPROVE": "0",
           "ARGOS_PACKAGES_DIR": str(home / "argos-packages"), "XDG_CACHE_HOME": str(home / "cache"),
           "PREFECT_HOME": str(home / "prefect")}
    command = [str(Path(sys.executable).with_name("pressflow")), "serve", "--out", str(out), "--port", str(port)]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/signin", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/signin")
        page.get_by_label("Your name").fill("rosa")
        page.get_by_label("Password or team token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="(release, es)").first.click()
        page.wait_for_load_state("load")
        target = DOCS / "review.png"
        page.screenshot(path=str(target))
        print(target.relative_to(ROOT))
        page.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
