"""`pressflow models build-test` is the documented way to dry-run translation offline: it builds
a genuine Argos package, installs it with argostranslate's installer, and the pipeline uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RECORD = """\
title: Office opens in Tashkent
date: 2021-09-12
summary: The office opened in Tashkent. Contact anso@cashq.ac.cn or visit http://www.anso.org.cn/.
languages: [fr]
"""


def pressflow(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pressflow.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_build_test_installs_a_package_that_prepare_uses(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "ARGOS_PACKAGES_DIR": str(home / "argos"), "XDG_DATA_HOME": str(home / "data"),
           "XDG_CACHE_HOME": str(home / "cache"), "XDG_CONFIG_HOME": str(home / "config"),
           "PRESSFLOW_MAX_DECODING_LENGTH": "8", "PRESSFLOW_OUT": str(tmp_path / "out")}
    (home / "argos").mkdir(parents=True)
    (home / "cache" / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True)

    built = pressflow("models", "build-test", "en:fr", "--work-dir", str(ROOT / "build" / "test-models"),
                      env=env, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    assert "installed en -> fr" in built.stdout
    assert [p.name for p in (home / "argos").iterdir()] == ["translate-en_fr-1_0"]

    listed = pressflow("models", "list", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "en -> fr" in listed.stdout

    (tmp_path / "office.yaml").write_text(RECORD)
    prepared = pressflow("prepare", "office.yaml", env=env, cwd=tmp_path)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    shown = pressflow("review", "list", "--lang", "fr", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    channels = {line.split()[3] for line in shown.stdout.splitlines()}
    assert channels == {"release", "x", "mastodon", "bluesky", "linkedin"}


def test_a_pair_without_colon_is_one_clear_line(tmp_path):
    done = pressflow("models", "build-test", "enfr", env={**os.environ}, cwd=tmp_path)
    assert done.returncode == 1
    assert "'enfr' is not a pair; write SOURCE:TARGET" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
