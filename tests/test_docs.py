"""The project documents itself: every link in the README and docs/ (guides and reference
included) resolves inside the repository, down to the heading it names, and nothing points at
files a clone does not have (the team's ../shared folder). The README stays a front page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "outputs" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (code blocks left out)."""
    found: set[str] = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if match := re.match(r"^#{1,6} +(.+?) *#*$", line):
            anchor = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            base, n = anchor, 1
            while anchor in found:
                anchor, n = f"{base}-{n}", n + 1
            found.add(anchor)
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{document.name} links {target}, which is not in the repository"
        assert path.is_relative_to(ROOT), f"{document.name} links {target}, outside the repository"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_to_a_heading_finds_it(document):
    text = FENCE.sub("", document.read_text(encoding="utf-8"))
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target) or "#" not in target:
            continue
        name, anchor = target.split("#", 1)
        path = (document.parent / name).resolve() if name else document
        if path.suffix == ".md" and path.is_file():
            assert anchor in anchors(path), f"{document.name} links {target}: {path.name} has no such heading"


def test_the_readme_is_a_front_page_that_points_into_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200, "the README is the front page: the rest belongs in docs/"
    for page in ("getting-started.md", "guides/review.md", "guides/agencies.md", "guides/prefect.md",
                 "guides/scale.md", "channels.md", "reference/cli.md", "reference/settings.md",
                 "reference/checks.md", "reference/events.md", "extending.md", "performance.md",
                 "security.md", "changelog.md"):
        assert (ROOT / "docs" / page).is_file(), page
        assert f"(docs/{page})" in readme, page


def test_every_page_of_docs_is_linked_from_somewhere():
    linked = {(document.parent / target.split("#", 1)[0]).resolve()
              for document in DOCUMENTS for target in LINK.findall(document.read_text(encoding="utf-8"))
              if not re.match(r"^[a-z]+:", target) and not target.startswith("#")}
    for page in (ROOT / "docs").rglob("*.md"):
        assert page.resolve() in linked, f"{page.relative_to(ROOT)} is linked from no page"


def test_the_contract_documents_exist_and_the_readme_links_them():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("records.md", "layout.md", "architecture.md", "sources.md"):
        assert (ROOT / "docs" / name).is_file()
        assert f"(docs/{name})" in readme, name


def test_nothing_a_user_reads_points_outside_the_repository():
    readable = [*DOCUMENTS, *sorted((ROOT / "events").glob("*.yaml")), *sorted((ROOT / "src").rglob("*.py")),
                *sorted((ROOT / "templates").rglob("*.j2"))]
    for path in readable:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path
        assert "DESIGN.md" not in text, path
        assert "seed/anso-activities-2021.txt" not in text, path
