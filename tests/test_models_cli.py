"""`pressflow models` offline: list what is installed and missing, install from a file, and a
clear one-line message (no traceback, no endless retry) when the Argos index is out of reach."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pressflow.prepare import pipeline
from pressflow.cli import app
from pressflow.records import validate_record
from pressflow.translate import testmodel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def private_argos(tmp_path, monkeypatch):
    """An empty Argos package folder for this test only, so installs do not leak into others."""
    import argostranslate.settings as argos_settings

    folder = tmp_path / "argos"
    folder.mkdir()
    monkeypatch.setattr(argos_settings, "package_data_dir", folder)
    monkeypatch.setattr(argos_settings, "package_dirs", [folder])
    monkeypatch.setattr(argos_settings, "local_package_index", tmp_path / "index.json")
    # an address that refuses at once, whether or not this machine is online
    monkeypatch.setattr(argos_settings, "remote_package_index", "http://127.0.0.1:9/index.json")
    return folder


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def missing_languages(output: str) -> list[str]:
    [line] = [line for line in output.splitlines() if line.startswith("missing for member languages: ")]
    return line.removeprefix("missing for member languages: ").split(", ")


def test_list_shows_installed_pairs_and_missing_member_languages(argos_models, settings):
    event = validate_record({"title": "Forum in Paris and Madrid", "date": "2021-06-11",
                             "summary": "A forum.", "languages": ["es", "fr", "zh"]})
    pipeline.register([(None, event)], settings)
    result = run("models", "list", "--out", str(settings.out_dir))
    assert result.exit_code == 0, result.output
    assert "en -> es" in result.output and "en -> zh" in result.output
    missing = missing_languages(result.output)
    assert "fr" in missing  # from the release in the store
    assert {"kk", "ru"} <= set(missing)  # from the packaged registry (Kazakhstan)
    assert not {"en", "es", "zh"} & set(missing)


def test_list_on_a_fresh_folder_names_what_the_registry_needs(private_argos, tmp_path, monkeypatch):
    registry = tmp_path / "countries.yaml"
    registry.write_text("overrides:\n  KZ: [kk, ru]\n  BR: [pt]\n  GB: [en]\n")
    monkeypatch.setenv("PRESSFLOW_COUNTRIES", str(registry))
    out = tmp_path / "out"
    result = run("models", "list", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "no translation models installed" in result.output
    assert missing_languages(result.output) == ["kk", "pt", "ru"]  # English is the source: never missing
    assert not out.exists()  # looking did not create an empty store


def test_install_pair_offline_says_what_to_do_in_one_line(private_argos):
    result = run("models", "install", "en", "fr")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: cannot reach the Argos package index")
    assert "pressflow models install FILE.argosmodel" in lines[0]
    assert "Traceback" not in result.output


def test_install_file_installs_a_package(private_argos):
    package = testmodel.build_package("en", "fr", ROOT / "build" / "test-models")
    result = run("models", "install", str(package))
    assert result.exit_code == 0, result.output
    assert result.output.startswith("installed en -> fr")
    assert [p.name for p in private_argos.iterdir()] == ["translate-en_fr-1_0"]
    listed = run("models", "list")
    assert "en -> fr" in listed.output


@pytest.mark.parametrize("name, message", [("missing.argosmodel", "no such file"),
                                           ("not-a-model.argosmodel", "not an Argos model")])
def test_install_bad_file_is_one_line(private_argos, tmp_path, name, message):
    path = tmp_path / name
    if name.startswith("not"):
        path.write_text("hello")
    result = run("models", "install", str(path))
    assert result.exit_code == 1
    assert result.output.strip() == f"error: {path}: {message}" + (
        " (expected a .argosmodel zip file)" if name.startswith("not") else "")
