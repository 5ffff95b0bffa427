"""docs/reference/ is generated from the code (scripts/reference.py) and committed: regenerated
here, it must come out the same. So a new setting, command, option, QA check or event that is
not in the committed reference fails, and so does a setting without a comment, or an event no
flow module describes (the script refuses to write those)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
HINT = "run `python scripts/reference.py` and commit docs/reference/"


@pytest.fixture(scope="module")
def generator():
    spec = importlib.util.spec_from_file_location("pressflow_reference_script", ROOT / "scripts" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def generated(generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    generator.write(out)
    return out


@pytest.mark.parametrize("name", ["cli.md", "settings.md", "checks.md", "events.md"])
def test_the_committed_reference_is_what_the_code_says(generated, name):
    committed = REFERENCE / name
    assert committed.is_file(), f"docs/reference/{name} is missing: {HINT}"
    assert committed.read_text(encoding="utf-8") == (generated / name).read_text(encoding="utf-8"), \
        f"docs/reference/{name} differs from the code: {HINT}"


def test_every_generated_page_is_generated(generator):
    written = {path.name for path in REFERENCE.glob("*.md")} - {"README.md"}
    assert written == set(generator.PAGES), f"docs/reference/ holds pages the script does not write: {written}"


def test_every_setting_command_and_check_is_named(generator, generated):
    Settings, CHECKS = generator.settings_module().Settings, generator.checks_registry()  # wherever they live
    settings = (generated / "settings.md").read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"| `{name}` |" in settings, name
    checks = (generated / "checks.md").read_text(encoding="utf-8")
    for name in CHECKS:
        assert f"## `{name}`" in checks, name
    cli = (generated / "cli.md").read_text(encoding="utf-8")
    for command in ("prepare", "publish", "run", "deliver", "serve", "review approve", "models install",
                    "users add", "memory import", "channels resolve"):
        assert f"## `pressflow {command}`" in cli, command


def test_a_setting_is_documented_by_the_comment_directly_above_it(generator):
    lines = ["class Settings:", "    documented: int = 1  # not above: does not count", "    bare: int = 2"]
    assert generator._comment_above(lines, 3) == ""
    assert generator._comment_above(["    # Entries per feed.", "    feed_limit: int = 50"], 2) == "Entries per feed."
