"""Prepare works through releases in chunks: same drafts, same model work, bounded memory."""

from __future__ import annotations

from pressflow.core import db
from pressflow.drafts import store
from pressflow.prepare import pipeline


def drafts_of(settings) -> set[tuple[str, str, str]]:
    with db.session_scope(settings.db_url) as session:
        return {(d.release_slug, d.lang, d.channel) for d in store.list_drafts(session)}


def test_chunked_prepare_matches_one_pass(argos_models, events, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESSFLOW_MAX_DECODING_LENGTH", "8")
    from pressflow.core.config import Settings

    whole = Settings(out_dir=tmp_path / "whole", chunk_releases=200)
    chunked = Settings(out_dir=tmp_path / "chunked", chunk_releases=1)
    assert len(list(pipeline.chunks([object()] * 4, chunked))) == 4

    one_pass = pipeline.prepare(events, whole)
    by_release = pipeline.prepare(events, chunked)

    assert drafts_of(chunked) == drafts_of(whole)
    assert any(lang == "es" for _, lang, _ in drafts_of(chunked))
    assert by_release.releases.keys() == one_pass.releases.keys()
    # A sentence met in an earlier chunk comes from the memory: the model does the same work.
    assert by_release.stats.translated == one_pass.stats.translated
    assert by_release.stats.from_memory > one_pass.stats.from_memory
