"""Packages without a SentencePiece model: the engine tokenizes with what argostranslate opens
for them (BPE with Moses tokenization, as older Argos packages ship)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from pressflow.core.errors import ModelLoadError
from pressflow.translate import testmodel
from pressflow.translate.engine import ArgosTokenizer, ModelCache, SentencePieceTokenizer
from pressflow.translate.models import Model
from pressflow.translate.stage import StageStats, translate_documents

MODEL_CACHE = Path(__file__).resolve().parents[1] / "build" / "test-models"


def unpacked(tmp_path) -> Model:
    package = testmodel.build_package("en", "es", MODEL_CACHE)
    with zipfile.ZipFile(package) as archive:
        archive.extractall(tmp_path)
    [top] = [p for p in tmp_path.iterdir() if p.name.startswith("translate-en_es")]
    return Model("en", "es", top, json.loads((top / "metadata.json").read_text())["package_version"])


def test_a_bpe_package_translates_through_argostranslates_tokenizer(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "8")
    model = unpacked(tmp_path)
    (model.path / "sentencepiece.model").unlink()
    # A BPE codes file in subword-nmt's format, as argostranslate's BPETokenizer reads it.
    (model.path / "bpe.model").write_text("#version: 0.2\nt h\nth e</w>\no p\n", encoding="utf-8")
    cache = ModelCache(1)

    [translation] = translate_documents(["The office opened. Write to anso@cashq.ac.cn today."], "en", "es",
                                        models=[model], cache=cache, stats=StageStats())

    loaded = cache.get(model)
    assert isinstance(loaded.tokenizer, ArgosTokenizer)
    assert loaded.tokenizer.encode(["the office"]) == [["the", "o@@", "f@@", "f@@", "i@@", "c@@", "e"]]
    assert loaded.sentences == 2  # both sentences went through the model
    assert "anso@cashq.ac.cn" in translation.text and len(translation.segments) == 2


def test_sentencepiece_is_preferred_and_a_package_with_neither_is_a_clear_error(tmp_path):
    model = unpacked(tmp_path)
    assert isinstance(ModelCache(1).get(model).tokenizer, SentencePieceTokenizer)
    (model.path / "sentencepiece.model").unlink()
    with pytest.raises(ModelLoadError, match="neither sentencepiece.model nor bpe.model"):
        ModelCache(1).get(model)
