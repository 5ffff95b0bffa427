"""The project documents itself: every link in the README and docs/ resolves inside the
repository, and nothing points at files a clone does not have (the team's ../shared folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document):
    for target in LINK.findall(document.read_text(encoding="utf-8")):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue
        path = (document.parent / target.split("#", 1)[0]).resolve()
        assert path.exists(), f"{document.name} links {target}, which is not in the repository"
        assert path.is_relative_to(ROOT), f"{document.name} links {target}, outside the repository"


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
