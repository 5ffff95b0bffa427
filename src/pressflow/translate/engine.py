"""Batched translation with an Argos package's own model and tokenizer.

argostranslate calls CTranslate2 once per paragraph. Here every sentence a run needs for a
language pair arrives at once: sorted by length so batches waste no padding, and sent to one
`ctranslate2.Translator` per model, loaded once and kept in a small bounded cache.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import ctranslate2
import sentencepiece

from ..core.config import engine_settings
from ..core.errors import ModelLoadError
from .models import Model, find_route

BEAM_SIZE = 4  # argostranslate's default
LENGTH_PENALTY = 0.2  # as argostranslate calls CTranslate2
# Sentences per CTranslate2 call. 16 and 32 measure within 5% of each other on the 2-core machine
# bench/translate.py ran on (beam 4, Transformer base), 64 is slower; PRESSFLOW_BATCH_SIZE tunes
# it for another machine.
BATCH_SIZE = engine_settings().batch_size
# An upper bound on decoded tokens per sentence (default 512). Benchmarks lower it: random-weight
# test models rarely emit </s>, so every sentence would otherwise decode to the limit.
# Read on every call, so a test or benchmark can set it after this module was imported.
def decoding_cap() -> int:
    return engine_settings().max_decoding_length


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff]")


class SentencePieceTokenizer:
    """The package's SentencePiece model, encoding a whole batch in one call."""

    def __init__(self, path: Path):
        self.processor = sentencepiece.SentencePieceProcessor(model_file=str(path))

    def encode(self, sentences: list[str]) -> list[list[str]]:
        return self.processor.encode(sentences, out_type=str)

    def decode(self, pieces: list[str]) -> str:
        return self.processor.decode(pieces)


class ArgosTokenizer:
    """Whatever other tokenizer argostranslate opens for the package (BPE with Moses
    tokenization in older packages), used exactly as argostranslate uses it."""

    def __init__(self, model: Model):
        from argostranslate.package import Package  # cheap: no stanza, no torch

        self.tokenizer = getattr(Package(model.path), "tokenizer", None)
        if self.tokenizer is None:
            raise ModelLoadError(f"{model.path}: the package has neither sentencepiece.model nor bpe.model")

    def encode(self, sentences: list[str]) -> list[list[str]]:
        return [self.tokenizer.encode(sentence) for sentence in sentences]

    def decode(self, pieces: list[str]) -> str:
        return self.tokenizer.decode(pieces)


def open_tokenizer(model: Model) -> SentencePieceTokenizer | ArgosTokenizer:
    path = model.path / "sentencepiece.model"
    return SentencePieceTokenizer(path) if path.exists() else ArgosTokenizer(model)


class LoadedModel:
    """A model's CTranslate2 translator and SentencePiece tokenizer, loaded once."""

    def __init__(self, model: Model):
        self.model = model
        threads = engine_settings().threads
        self.translator = ctranslate2.Translator(
            str(model.path / "model"), device="cpu", compute_type="auto", inter_threads=1, intra_threads=threads
        )
        self.tokenizer = open_tokenizer(model)
        self.lock = threading.Lock()  # one batch at a time per model: CTranslate2 already uses every core
        self.calls = 0  # translate_batch calls and sentences sent: tests check what the memory saved
        self.sentences = 0

    def translate(self, sentences: list[str], *, batch_size: int | None = None, beam_size: int = BEAM_SIZE,
                  max_decoding_length: int | None = None, progress: Callable[[int], None] | None = None) -> list[str]:
        """Translate sentences in length-sorted batches; results come back in input order."""
        if not sentences:
            return []
        batch_size = batch_size or BATCH_SIZE  # read now: a benchmark sets the best size it found
        tokens = self.tokenizer.encode(sentences)
        order = sorted(range(len(sentences)), key=lambda i: len(tokens[i]))
        results: list[str] = [""] * len(sentences)
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = [tokens[i] for i in chunk]
            limit = max_decoding_length or min(decoding_cap(), 2 * max(len(t) for t in batch) + 10)
            prefix = [[self.model.target_prefix]] * len(batch) if self.model.target_prefix else None
            with self.lock:
                outputs = self.translator.translate_batch(
                    batch, target_prefix=prefix, beam_size=beam_size, max_batch_size=batch_size,
                    length_penalty=LENGTH_PENALTY, replace_unknowns=True, max_decoding_length=limit,
                )
                self.calls += 1
                self.sentences += len(batch)
            for i, output in zip(chunk, outputs):
                results[i] = self._decode(output.hypotheses[0])
            if progress:
                progress(len(chunk))
        return results

    def _decode(self, pieces: list[str]) -> str:
        # Byte-fallback pieces can decode to control characters, which no feed or page may carry.
        text = _CONTROL.sub("", self.tokenizer.decode(pieces))
        if self.model.target_prefix and text.startswith(self.model.target_prefix):
            text = text[len(self.model.target_prefix):]
        return text.strip()


class ModelCache:
    """At most `size` models in memory: peak memory follows the largest model, not the run."""

    def __init__(self, size: int = 2):
        self.size = size
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0
        self.evictions = 0

    def get(self, model: Model) -> LoadedModel:
        key = str(model.path)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            while len(self._loaded) >= self.size:
                self._loaded.popitem(last=False)  # least recently used; CTranslate2 frees it with the object
                self.evictions += 1
            loaded = LoadedModel(model)
            self.loads += 1
            self._loaded[key] = loaded
            return loaded

    def loaded(self) -> list[LoadedModel]:
        """The models in memory now, least recently used first."""
        with self._lock:
            return list(self._loaded.values())

    def clear(self) -> None:
        with self._lock:
            self._loaded.clear()


# One cache per process: flows, tasks and the CLI share loaded models.
MODELS = ModelCache(engine_settings().model_cache)


class ArgosEngine:
    """The default `stage.Engine`: installed Argos Translate packages, run by CTranslate2.

    Routes are direct or through English (`models.find_route`); each model is loaded once per
    process into a bounded cache. It pickles without its cache (a worker uses its own process's).
    """

    def __init__(self, models: list[Model] | None = None, cache: ModelCache | None = None):
        self.models = models  # None: the packages installed now
        self.cache = cache or MODELS

    def route(self, source: str, target: str) -> list[Model]:
        return find_route(source, target, self.models)

    def translate(self, leg: Model, sentences: list[str],
                  progress: Callable[[int], None] | None = None) -> list[str]:
        try:
            loaded = self.cache.get(leg)
        except Exception as exc:
            raise ModelLoadError(f"cannot open the {leg.engine_id} model at {leg.path}: {exc}") from exc
        return loaded.translate(sentences, progress=progress)

    def __getstate__(self) -> dict:
        return {"models": self.models}

    def __setstate__(self, state: dict) -> None:
        self.models, self.cache = state["models"], MODELS
