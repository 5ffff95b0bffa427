"""Sentence splits are kept in the store: a re-run (a new process) splits only lines it has not seen."""

from __future__ import annotations

import pytest

from pressflow.memory.store import SqlMemory
from pressflow.translate import segment
from pressflow.translate.stage import StageStats, translate_documents

DOCUMENTS = [
    "# Forum opens\n\nProf. BAI Chunli opened the forum in Lima on 30 Aug. 2021. Delegates met.",
    "ANSO is an international science organization. It was founded in 2018.",
]


@pytest.fixture
def pysbd_calls(monkeypatch):
    """Count the lines handed to pysbd (the slow part the store saves)."""
    calls: list[str] = []
    real = segment._sentence_spans

    def counting(text, language):
        calls.append(text)
        return real(text, language)

    monkeypatch.setattr(segment, "_sentence_spans", counting)
    segment.forget_spans()
    yield calls
    segment.forget_spans()


def test_a_new_process_splits_only_new_lines(argos_models, settings, pysbd_calls):
    memory = SqlMemory(settings.db_url)
    first = translate_documents(DOCUMENTS, "en", "es", memory=memory, stats=StageStats())
    assert len(pysbd_calls) == 3  # the heading, the forum line, the boilerplate line

    segment.forget_spans()  # as a new prepare process starts
    pysbd_calls.clear()
    changed = [*DOCUMENTS, "The office opened in Tashkent. It serves the Aral Sea region."]
    again = translate_documents(changed, "en", "es", memory=memory, stats=StageStats())
    assert pysbd_calls == ["The office opened in Tashkent. It serves the Aral Sea region."]
    # Spans from the store split exactly as pysbd did: same segments, same texts.
    assert [t.segments for t in again[:2]] == [t.segments for t in first]
    assert [s["source"] for s in again[0].segments] == [
        "Forum opens", "Prof. BAI Chunli opened the forum in Lima on 30 Aug. 2021.", "Delegates met."]


def test_spans_survive_the_store_round_trip(settings):
    memory = SqlMemory(settings.db_url)
    line = "Prof. BAI Chunli spoke. U.N. delegates met on 30 Aug. 2021."
    spans = segment.line_spans(line)
    memory.save_spans("en", {line: spans})
    memory.save_spans("en", {line: spans})  # kept once, no error
    assert memory.spans("en", [line, "unknown line"]) == {line: [list(s) for s in spans]}
    assert memory.spans("es", [line]) == {}
