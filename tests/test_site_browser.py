"""The published site in a real browser and through checkers nobody here wrote.

A demo site (the bundled events plus a release with a long address, in English, Spanish,
Chinese and Arabic, `scripts/demo_site.py`, run in its own process so the Arabic test model it
installs stays out of this session's models) is checked:

- by the Nu HTML checker (`vnu.jar` from npm, in `tests/tools/`): 0 errors on every page;
- by axe-core (npm, injected into Debian's Chromium by Playwright): 0 WCAG 2.1 A/AA violations
  on a release page, an index and the subscribe page, in English and Arabic;
- by screenshots at 390 and 1280 px of pages and the index in English, Arabic, Spanish and
  Chinese, written to a temporary folder: no horizontal scroll, images that load from disk, and a
  first screen that is not blank.

`scripts/screenshots.py` writes the same screenshots into docs/ for the README; tests never do.
Without Chromium, Playwright, Java or the npm tools the checks skip, saying what is missing;
with CI=1 they fail instead.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CHROMIUM, ROOT, browser_missing

TOOLS = ROOT / "tests" / "tools" / "node_modules"
VNU = TOOLS / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE = TOOLS / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
RELEASE = "2021-08-30-beauty-of-life-on-earth"  # the bundled release with an image and three quotes
LONG_URL_RELEASE = "2021-10-20-data-sharing-workshop"
WIDTHS = {390: 844, 1280: 800}

pytestmark = pytest.mark.slow


def need(missing: str | None) -> None:
    if missing is None:
        return
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{missing}; CI is set: these checks must run there", pytrace=False)
    pytest.skip(missing)



@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_site.py"), str(out)], capture_output=True,
                         text=True, timeout=900, env={k: v for k, v in os.environ.items() if not k.startswith("ARGOS")})
    assert run.returncode == 0, run.stdout + run.stderr
    return out


@pytest.fixture(scope="module")
def browser():
    need(browser_missing())
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def pages_of(site: Path) -> list[Path]:
    return sorted(p for p in (site / "site").glob("*/*.html")) + sorted((site / "outbox").glob("*/*/press-release.html"))


def test_nu_html_checker_finds_no_error_on_any_page(site):
    need(None if shutil.which("java") else "no Java (apt-get install default-jre-headless)")
    need(None if VNU.is_file() else f"no {VNU.relative_to(ROOT)} (npm ci in tests/tools)")
    pages = pages_of(site)
    assert len(pages) >= 5 * 4 * 2
    run = subprocess.run(["java", "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, pages)],
                         capture_output=True, text=True, timeout=600)
    messages = json.loads(run.stderr or run.stdout)["messages"]
    errors = [f"{m.get('url', '').rsplit('/', 3)[-3:]}: {m.get('message')}" for m in messages if m.get("type") == "error"]
    assert errors == [], "\n".join(errors)


def open_page(browser, path: Path, width: int):
    page = browser.new_page(viewport={"width": width, "height": WIDTHS[width]})
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page


@pytest.mark.parametrize("lang", ["en", "ar"])
@pytest.mark.parametrize("name", [f"{RELEASE}.html", f"{LONG_URL_RELEASE}.html", "index.html", "subscribe.html"])
def test_axe_finds_no_wcag_violation(site, browser, name, lang):
    need(None if AXE.is_file() else f"no {AXE.relative_to(ROOT)} (npm ci in tests/tools)")
    page = open_page(browser, site / "site" / lang / name, 1280)
    violations = axe_violations(page)
    page.close()
    assert violations == [], json.dumps(violations, indent=1)


def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.1 A and AA rules on the open page: each violation with its nodes."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG)
    return [{"id": v["id"], "help": v["help"], "nodes": [n["html"][:160] for n in v["nodes"]]}
            for v in result["violations"]]


@pytest.mark.parametrize("width", sorted(WIDTHS))
@pytest.mark.parametrize("lang", ["en", "ar", "es", "zh"])  # left-to-right and right-to-left, Latin and CJK
@pytest.mark.parametrize("name", [f"{RELEASE}.html", f"{LONG_URL_RELEASE}.html", "index.html", "subscribe.html"])
def test_no_horizontal_scroll_and_a_first_screen_that_shows_the_page(site, browser, tmp_path, name, lang, width):
    page = open_page(browser, site / "site" / lang / name, width)
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    shot = tmp_path / f"{lang}-{Path(name).stem}-{width}.png"
    page.screenshot(path=str(shot))
    images = page.evaluate("[...document.images].map(i => [i.currentSrc, i.complete && i.naturalWidth > 0])")
    page.close()
    assert scroll_width <= inner_width, f"{lang}/{name} at {width} px scrolls sideways: {scroll_width} > {inner_width}"
    assert all(ok for _, ok in images), images  # relative media addresses resolve from disk too
    assert ink(browser, shot) > 0.05, f"{shot.name}: the first screen is almost blank"


def ink(browser, png: Path) -> float:
    """The share of a screenshot's pixels that differ from its most common colour, counted by
    Chromium itself (the PNG drawn on a canvas), in steps of 4 pixels."""
    page = browser.new_page()
    data = base64.b64encode(png.read_bytes()).decode()
    share = page.evaluate("""async data => {
        const image = new Image(); image.src = "data:image/png;base64," + data; await image.decode();
        const canvas = document.createElement("canvas"); canvas.width = image.width; canvas.height = image.height;
        const context = canvas.getContext("2d"); context.drawImage(image, 0, 0);
        const pixels = context.getImageData(0, 0, image.width, image.height).data, counts = new Map();
        let total = 0;
        for (let i = 0; i < pixels.length; i += 16) {
            const key = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
            counts.set(key, (counts.get(key) || 0) + 1); total++;
        }
        return 1 - Math.max(...counts.values()) / total;
    }""", data)
    page.close()
    return share
