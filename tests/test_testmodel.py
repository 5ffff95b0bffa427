"""The random-weight Argos test package is a genuine, installable, runnable package.

argostranslate.settings reads ARGOS_PACKAGES_DIR (and ARGOS_CHUNK_TYPE) once, at
import time, and another test may already have imported it in this process, so
everything that goes through argostranslate runs in a fresh subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from pressflow.translate import testmodel
from pressflow.translate.testmodel import build_package

SENTENCES = [
    "Prof. BAI Chunli opened the exhibition.",
    "See ⟦0⟧ and ⟦12⟧, or write to press@example.org #COP15.",
    "The ceremony was held on 30 August 2021 in Kunming.",
]

# Installs the package into an isolated ARGOS_PACKAGES_DIR, lists the installed
# packages and translates through argostranslate's own translate().
ARGOS_SCRIPT = """
import json, sys
from pressflow.translate.testmodel import install_package
install_package(sys.argv[1])
import argostranslate.package, argostranslate.translate
pkgs = [dict(from_code=p.from_code, to_code=p.to_code, path=str(p.package_path))
        for p in argostranslate.package.get_installed_packages()]
out = argostranslate.translate.translate("Prof. BAI Chunli opened the exhibition.", "en", "es")
print(json.dumps({"packages": pkgs, "translation": out}))
"""


def _offline_argos_env(root: Path) -> dict[str, str]:
    """Env for a hermetic argostranslate: own dirs, spaCy sentence splitting, no downloads."""
    env = dict(os.environ)
    src_dir = str(Path(testmodel.__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src_dir, env.get("PYTHONPATH")]))
    env["ARGOS_PACKAGES_DIR"] = str(root / "packages")
    # The default chunker (MiniSBD) downloads a model for a package without one.
    env["ARGOS_CHUNK_TYPE"] = "SPACY"
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        env[var] = str(root / var.lower())
    # With SPACY, importing argostranslate.sbd tries to download xx_sent_ud_sm
    # unless this cache folder exists; our package bundles spacy/, so skip that.
    (root / "xdg_cache_home" / "argos-translate" / "spacy" / "senter" / "model").mkdir(parents=True)
    return env


@pytest.fixture(scope="module")
def argos_run(tmp_path_factory) -> dict:
    """Build en->es tiny, install and translate with argostranslate in a subprocess."""
    root = tmp_path_factory.mktemp("argos")
    path = build_package("en", "es", root / "build")
    proc = subprocess.run(
        [sys.executable, "-c", ARGOS_SCRIPT, str(path)],
        env=_offline_argos_env(root), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _extract(path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(path) as zf:
        zf.extractall(dest)
        top = zf.namelist()[0].split("/")[0]
    return dest / top


def _translate(pkg_dir: Path, sentences: list[str], **kw) -> list[list[str]]:
    """Our engine's way: CTranslate2 + SentencePiece loaded from the package dir."""
    import ctranslate2
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor(model_file=str(pkg_dir / "sentencepiece.model"))
    translator = ctranslate2.Translator(str(pkg_dir / "model"))
    results = translator.translate_batch(sp.encode(sentences, out_type=str), **kw)
    return [r.hypotheses[0] for r in results]


@pytest.mark.slow
def test_argos_installs_and_lists_package(argos_run):
    pairs = [(p["from_code"], p["to_code"]) for p in argos_run["packages"]]
    assert pairs == [("en", "es")]
    pkg_dir = Path(argos_run["packages"][0]["path"])
    for name in ("metadata.json", "README.md", "sentencepiece.model", "model/model.bin", "spacy"):
        assert (pkg_dir / name).exists(), name
    metadata = json.loads((pkg_dir / "metadata.json").read_text())
    assert (metadata["from_name"], metadata["to_name"], metadata["type"]) == ("English", "Spanish", "translate")


@pytest.mark.slow
def test_argos_translate_runs_offline(argos_run):
    assert isinstance(argos_run["translation"], str)


@pytest.mark.slow
def test_ctranslate2_and_sentencepiece_from_installed_package(argos_run):
    import sentencepiece

    pkg_dir = Path(argos_run["packages"][0]["path"])
    hyps = _translate(pkg_dir, SENTENCES, max_decoding_length=20)
    sp = sentencepiece.SentencePieceProcessor(model_file=str(pkg_dir / "sentencepiece.model"))
    outputs = [sp.decode(tokens) for tokens in hyps]
    assert len(outputs) == 3 and all(isinstance(o, str) for o in outputs)
    assert all(0 < len(tokens) <= 20 for tokens in hyps)


def test_tokenizer_keeps_placeholders_and_symbols(tmp_path):
    import sentencepiece

    pkg_dir = _extract(build_package("en", "es", tmp_path), tmp_path / "x")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(pkg_dir / "sentencepiece.model"))
    text = "See ⟦0⟧ and ⟦12⟧ at press@example.org #COP15 — Über 北京"
    assert sp.decode(sp.encode(text)) == text  # byte fallback: nothing becomes <unk>
    pieces = sp.encode("⟦0⟧", out_type=str)
    assert "⟦" in pieces and "⟧" in pieces
    assert [sp.id_to_piece(i) for i in range(4)] == ["<unk>", "<s>", "</s>", "<blank>"]


def test_build_is_reused(tmp_path):
    first = build_package("en", "es", tmp_path)
    mtime = first.stat().st_mtime_ns
    second = build_package("en", "es", tmp_path)
    assert second == first and second.stat().st_mtime_ns == mtime
    # A different parameter rebuilds in place.
    third = build_package("en", "es", tmp_path, seed=1)
    assert third == first and third.stat().st_mtime_ns != mtime


def test_suppress_eos_decodes_full_length(tmp_path):
    pkg_dir = _extract(build_package("en", "es", tmp_path, suppress_eos=True), tmp_path / "x")
    for beam in (1, 4):
        hyps = _translate(pkg_dir, SENTENCES, max_decoding_length=15, beam_size=beam)
        assert [len(tokens) for tokens in hyps] == [15, 15, 15]


@pytest.mark.parametrize("suppress", [False, True])
def test_suppress_eos_is_what_stops_eos(tmp_path, suppress):
    """Random weights rarely pick </s> anyway, so check its log-prob directly."""
    import ctranslate2
    import sentencepiece

    pkg_dir = _extract(build_package("en", "es", tmp_path, suppress_eos=suppress), tmp_path / "x")
    sp = sentencepiece.SentencePieceProcessor(model_file=str(pkg_dir / "sentencepiece.model"))
    translator = ctranslate2.Translator(str(pkg_dir / "model"))
    [result] = translator.score_batch([sp.encode(SENTENCES[0], out_type=str)], [["▁the"]])
    assert result.tokens[-1] == "</s>"
    assert (result.log_probs[-1] < -1000) is suppress
