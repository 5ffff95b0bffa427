"""Languages translated side by side (each stored as soon as it is done) store exactly what
languages translated one at a time store: the same sentences, the same drafts."""

from __future__ import annotations

from conftest import decoding_capped
from pressflow.core import db
from pressflow.core.config import Settings
from pressflow.drafts import store
from pressflow.prepare import pipeline
from pressflow.records import validate_record
from pressflow.translate.segment import forget_spans


def record():
    body = [f"Paragraph {i}: scientists from {i} member countries met in Beijing. They planned {i} joint "
            f"projects on water, e.g. in Dr. Li's lab. The delegates agreed to meet again." for i in range(60)]
    return validate_record({"id": "lanes-forum", "title": "Lanes forum", "date": "2021-06-04", "body": body,
                            "languages": ["es", "zh", "ar"], "summary": "Scientists met in Beijing."})


def drafts(settings: Settings) -> dict[tuple[str, str], str]:
    with db.session_scope(settings.db_url) as session:
        return {(d.lang, d.channel): d.text for d in store.list_drafts(session, slug="lanes-forum")}


def test_languages_side_by_side_store_what_one_language_at_a_time_stores(argos_models, tmp_path):
    one_at_a_time = pipeline.Steps()
    one_at_a_time.lanes = 1
    alone, side_by_side = Settings(out_dir=tmp_path / "alone"), Settings(out_dir=tmp_path / "lanes")
    with decoding_capped():
        forget_spans()  # each run splits its sentences itself (fresh stores keep none either)
        first = pipeline.prepare([(None, record())], alone, steps=one_at_a_time)
        forget_spans()
        second = pipeline.prepare([(None, record())], side_by_side)
    assert pipeline.Steps().lanes == 2
    assert first.stats == second.stats and first.stats.translated > 0
    assert first.drafts_added == second.drafts_added == 4 * 5
    assert drafts(alone) == drafts(side_by_side)
