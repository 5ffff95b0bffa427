"""`pressflow models install FILE.argosmodel` checks a package before it is installed, installs it
in one rename or not at all, never over another package unless asked; `models list` and prepare
survive a broken folder, and which package serves a pair is decided, shown and warned about."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pressflow.cli import app
from pressflow.translate import models, testmodel

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "test-models"
DELETE = object()


@pytest.fixture
def private_argos(tmp_path, monkeypatch):
    """An empty Argos package folder for this test only, so installs do not leak into others."""
    import argostranslate.settings as argos_settings

    folder = tmp_path / "argos"
    folder.mkdir()
    monkeypatch.setattr(argos_settings, "package_data_dir", folder)
    monkeypatch.setattr(argos_settings, "package_dirs", [folder])
    return folder


@pytest.fixture(scope="module")
def english_french() -> Path:
    return testmodel.build_package("en", "fr", CACHE)


def repack(source: Path, out: Path, *, folder: str | None = None, metadata: dict | None = None,
           drop: tuple[str, ...] = (), add: dict[str, bytes] | None = None) -> Path:
    """A copy of a built package with its folder renamed, metadata fields changed, files dropped or added."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            top, _, rest = info.filename.partition("/")
            if rest in drop:
                continue
            data = zin.read(info)
            if rest == "metadata.json" and metadata:
                meta = {**json.loads(data), **metadata}
                data = json.dumps({k: v for k, v in meta.items() if v is not DELETE}).encode()
            zout.writestr(f"{folder or top}/{rest}", data)
        for name, data in (add or {}).items():
            zout.writestr(name, data)
    return out


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def folders(packages: Path) -> list[str]:
    return sorted(p.name for p in packages.iterdir() if p.is_dir())


def one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    return line


def install(path: Path, *more: str):
    return run("models", "install", str(path), *more)


# --- a package that is not whole is refused, and leaves nothing ------------------------------


def test_a_package_without_metadata_is_refused_and_leaves_nothing(private_argos, english_french, tmp_path):
    package = repack(english_french, tmp_path / "no-metadata.argosmodel", drop=("metadata.json",))
    line = one_error_line(install(package))
    assert line == f"error: {package}: has no metadata.json in its folder; nothing was installed"
    assert folders(private_argos) == []
    listed = run("models", "list")
    assert listed.exit_code == 0, listed.output
    assert "no translation models installed" in listed.output


@pytest.mark.parametrize("drop, says", [
    (("model/model.bin",), "model/model.bin is missing (no CTranslate2 model)"),
    (("model/shared_vocabulary.json",), "model/ has no vocabulary"),
    (("sentencepiece.model",), "no tokenizer (sentencepiece.model or bpe.model)"),
], ids=["model", "vocabulary", "tokenizer"])
def test_a_package_missing_a_file_its_model_needs_is_refused(private_argos, english_french, tmp_path, drop, says):
    package = repack(english_french, tmp_path / "partial.argosmodel", drop=drop)
    line = one_error_line(install(package))
    assert line.startswith(f"error: {package}: {says}") and line.endswith("; nothing was installed"), line
    assert folders(private_argos) == [] and not list(private_argos.glob(".pressflow-staging-*"))


@pytest.mark.parametrize("add, says", [
    ({"README.txt": b"loose"}, "is not one package folder"),
    ({"other-folder/metadata.json": b"{}"}, "is not one package folder"),
    ({"translate-en_fr-1_0/../../escaped.txt": b"x"}, "holds a file named"),
], ids=["loose-file", "two-folders", "dot-dot"])
def test_a_zip_that_is_not_one_package_folder_is_refused(private_argos, english_french, tmp_path, add, says):
    package = repack(english_french, tmp_path / "odd.argosmodel", add=add)
    line = one_error_line(install(package))
    assert line.startswith(f"error: {package}: {says}"), line
    assert folders(private_argos) == [] and not (tmp_path / "escaped.txt").exists()


# --- a broken folder already there breaks nothing else -----------------------------------------


def test_a_broken_folder_is_listed_and_the_other_languages_still_prepare(private_argos, english_french, settings,
                                                                          tmp_path, monkeypatch, no_prefect_server):
    assert install(english_french).exit_code == 0
    (private_argos / "translate-en_de-1_0").mkdir()  # as an interrupted install left it
    (private_argos / "translate-en_de-1_0" / "README.md").write_text("half a package")
    listed = run("models", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0] == f"en -> fr  1.0  {private_argos / 'translate-en_fr-1_0'}"
    assert lines[1] == f"not used: {private_argos / 'translate-en_de-1_0'}: no metadata.json"
    assert [m.path.name for m in models.find_route("en", "fr")] == ["translate-en_fr-1_0"]

    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "8")
    record = tmp_path / "forum.yaml"
    record.write_text("title: Forum in Paris\ndate: 2021-06-11\nsummary: A forum.\nlanguages: [fr]\n")
    prepared = run("prepare", record, "--out", settings.out_dir)
    assert prepared.exit_code == 0, prepared.output
    assert "fr" in prepared.output


# --- an install never replaces another package unless asked -----------------------------------


def test_a_package_in_an_installed_folder_is_refused_unless_replace(private_argos, english_french, tmp_path):
    assert install(english_french).exit_code == 0
    installed = private_argos / "translate-en_fr-1_0"
    before = {p: p.read_bytes() for p in (installed / "metadata.json", installed / "model" / "model.bin")}
    german = repack(testmodel.build_package("en", "de", CACHE), tmp_path / "de.argosmodel",
                    folder="translate-en_fr-1_0")
    line = one_error_line(install(german))
    assert line == (f"error: {german}: {installed} already holds en -> fr 1.0; to replace it, run "
                    "`pressflow models install --replace FILE`; nothing was installed")
    assert {p: p.read_bytes() for p in before} == before
    assert [(m.source, m.target) for m in models.installed_models()] == [("en", "fr")]

    replaced = install(german, "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout.startswith("installed en -> de (1.0)")
    assert [(m.source, m.target) for m in models.installed_models()] == [("en", "de")]
    assert folders(private_argos) == ["translate-en_fr-1_0"]


def test_a_second_package_for_an_installed_pair_is_refused_unless_replace(private_argos, english_french, tmp_path):
    assert install(english_french).exit_code == 0
    unofficial = repack(english_french, tmp_path / "unofficial.argosmodel", folder="translate-en_fr-zz",
                        metadata={"package_version": "0.1-unofficial"})
    line = one_error_line(install(unofficial))
    assert line == (f"error: {unofficial}: en -> fr is already installed in {private_argos / 'translate-en_fr-1_0'}; "
                    "to use this package instead, run `pressflow models install --replace FILE`; nothing was installed")
    assert [m.version for m in models.installed_models()] == ["1.0"]
    assert install(unofficial, "--replace").exit_code == 0
    assert folders(private_argos) == ["translate-en_fr-zz"]
    assert [m.version for m in models.find_route("en", "fr")] == ["0.1-unofficial"]


def test_two_packages_for_a_pair_one_serves_always_shown_and_warned(private_argos, english_french, tmp_path):
    """Put there by hand (not by `models install`): the higher version serves, whatever the
    folders' order; `models list` says which, and warns."""
    assert install(english_french).exit_code == 0
    unofficial = repack(english_french, tmp_path / "unofficial.argosmodel", folder="translate-en_fr-zz",
                        metadata={"package_version": "0.1-unofficial"})
    with zipfile.ZipFile(unofficial) as archive:
        archive.extractall(private_argos)
    [route] = models.find_route("en", "fr")
    assert (route.path.name, route.version) == ("translate-en_fr-1_0", "1.0")
    assert models.find_route("en", "fr", list(reversed(models.installed_models()))) == [route]
    listed = run("models", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[:2] == [
        f"en -> fr  1.0  {private_argos / 'translate-en_fr-1_0'}",
        f"en -> fr  0.1-unofficial  {private_argos / 'translate-en_fr-zz'}  (not used: translate-en_fr-1_0 serves this pair)"]
    assert listed.stderr == ("warning: 2 packages translate en -> fr; translate-en_fr-1_0 (1.0) serves it (the highest "
                             "version, then the first folder name); remove translate-en_fr-zz or reinstall with --replace\n")


# --- metadata and language codes are checked --------------------------------------------------


FORGED = "../../../etc\ninstalled en -> fr (1.0) in /etc"


@pytest.mark.parametrize("field, value, says", [
    ("from_code", FORGED, f"field 'from_code': {FORGED!r} is not a language code"),
    ("to_code", 12, "field 'to_code': Input should be a valid string"),
    ("to_code", DELETE, "field 'to_code': Field required"),
    ("package_version", "1.0\nforged", "field 'package_version': '1.0\\nforged' is not a package version"),
    ("type", "sbd", "field 'type': sbd is not a translation package"),
], ids=["forged-code", "number", "missing", "forged-version", "other-type"])
def test_metadata_fields_are_checked_in_one_line(private_argos, english_french, tmp_path, field, value, says):
    package = repack(english_french, tmp_path / "bad.argosmodel", metadata={field: value})
    line = one_error_line(install(package))
    assert line.startswith(f"error: {package}: metadata.json: {says}"), line
    assert folders(private_argos) == []


def test_a_forged_code_in_an_installed_folder_is_one_unused_line_in_the_list(private_argos, english_french, tmp_path):
    package = repack(english_french, tmp_path / "bad.argosmodel", metadata={"from_code": FORGED})
    with zipfile.ZipFile(package) as archive:
        archive.extractall(private_argos)
    listed = run("models", "list")
    assert listed.exit_code == 0
    assert listed.stdout.splitlines()[0] == (f"not used: {private_argos / 'translate-en_fr-1_0'}: metadata.json: "
                                             f"field 'from_code': {FORGED!r} is not a language code (like en, pt or zh_Hant)")
    assert not any(line.startswith("installed") for line in listed.output.splitlines())


# --- size: a limit, the free space, a disk that fills up --------------------------------------


def test_a_zip_bomb_is_refused_before_anything_is_written(private_argos, english_french, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_MODEL_MAX_MB", "8")
    bomb = repack(english_french, tmp_path / "bomb.argosmodel",
                  add={"translate-en_fr-1_0/model/padding.bin": bytes(64 << 20)})
    assert bomb.stat().st_size - english_french.stat().st_size < 1 << 20  # 64 MiB of zeros zip to little
    line = one_error_line(install(bomb))
    assert line == (f"error: {bomb}: unpacks to 66 MiB, more than the 8 MiB a package may (PRESSFLOW_MODEL_MAX_MB); "
                    "nothing was installed")
    assert folders(private_argos) == []


def test_a_package_larger_than_the_free_space_is_refused(private_argos, english_french, monkeypatch):
    monkeypatch.setattr(models, "_free_bytes", lambda folder: 100 << 20)
    line = one_error_line(install(english_french))
    assert re.fullmatch(rf"error: {re.escape(str(english_french))}: unpacks to \d MiB, and {re.escape(str(private_argos))} "
                        r"has 100 MiB free \(256 MiB must stay free\); nothing was installed", line), line
    assert folders(private_argos) == []


def test_a_disk_that_fills_up_while_unpacking_leaves_nothing_installed(private_argos, english_french):
    """A real failed write (the file size limit of the process: EFBIG, as ENOSPC would be)."""
    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (512 << 10, 512 << 10))

    env = {**os.environ, "ARGOS_PACKAGES_DIR": str(private_argos)}
    result = subprocess.run([sys.executable, "-m", "pressflow.cli", "models", "install", str(english_french)],
                            env=env, preexec_fn=small_files, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"error: {english_french}: unpacking failed (File too large); nothing was installed\n"
    assert folders(private_argos) == []
    assert models.installed_models() == []


def test_a_staging_folder_left_by_a_killed_install_is_not_listed_and_is_cleared(private_argos, english_french):
    leftover = private_argos / ".pressflow-staging-killed" / "translate-en_fr-1_0"
    leftover.mkdir(parents=True)
    assert run("models", "list").stdout.splitlines() == ["no translation models installed"] or \
        "not used" not in run("models", "list").stdout
    assert install(english_french).exit_code == 0
    assert not leftover.parent.exists()
    assert folders(private_argos) == ["translate-en_fr-1_0"]


def test_a_zip_whose_directory_understates_a_size_is_refused_and_leaves_nothing(private_argos, english_french,
                                                                                   tmp_path):
    """The sizes checked are the directory's: a member holding more than it declares is cut at
    the declared size by zipfile and fails its CRC check; nothing stays installed."""
    import struct

    package = repack(english_french, tmp_path / "liar.argosmodel", add={"translate-en_fr-1_0/model/x.bin": bytes(8 << 20)})
    data = bytearray(package.read_bytes())
    entry = data.find(b"PK\x01\x02")
    while entry != -1:  # each central directory entry: the uncompressed size at +24, the name at +46
        name_length = struct.unpack_from("<H", data, entry + 28)[0]
        if bytes(data[entry + 46:entry + 46 + name_length]) == b"translate-en_fr-1_0/model/x.bin":
            struct.pack_into("<I", data, entry + 24, 1000)
        entry = data.find(b"PK\x01\x02", entry + 1)
    package.write_bytes(bytes(data))
    line = one_error_line(install(package))
    assert line.startswith(f"error: {package}: not a readable package (BadZipFile: Bad CRC-32"), line
    assert line.endswith("; nothing was installed")
    assert folders(private_argos) == [] and not list(private_argos.glob(".pressflow-staging-*"))
