#!/usr/bin/env python3
"""Screenshots of the published site for the README, into docs/screenshots/.

    python scripts/screenshots.py [--out DIR]

Publishes the demo site (`scripts/demo_site.py`: the bundled events in English, Spanish, Chinese
and Arabic, translated by random-weight test models, so the translated text is gibberish) and
photographs a release page and the index at 390 px (a phone) and 1280 px (a laptop), in English
and Arabic, with Debian's Chromium driven by Playwright. The tests take the same pictures into a
temporary folder; only this script writes into the checkout. The language bar names Chinese in
Chinese: without a CJK font (Debian: `apt-get install fonts-wqy-microhei`) it shows as boxes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
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
        subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_site.py"), str(out)], check=True)
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
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
