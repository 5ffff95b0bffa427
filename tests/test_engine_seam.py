"""The stage talks to translation through the `Engine` protocol alone: a second engine (one that
upper-cases) plugs in with two methods and runs a whole prepare, and the stage's import stays
light (no renderer: no Jinja, markdown-it or nh3 on a translation worker)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass

from pressflow.core import db
from pressflow.drafts import store
from pressflow.memory.store import SqlMemory
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.core.errors import ModelMissingError
from pressflow.records import Event
from pressflow.render import RELEASE
from pressflow.translate.engine import ArgosEngine
from pressflow.translate.stage import translate_documents


@dataclass(frozen=True)
class Shout:
    """A leg of the upper-casing engine."""

    source: str
    target: str

    @property
    def engine_id(self) -> str:
        return f"upper:{self.source}-{self.target}"


class UpperEngine:
    """Translates into German by shouting: nothing of Argos, only the protocol's two methods."""

    def __init__(self):
        self.batches: list[list[str]] = []

    def route(self, source: str, target: str) -> list[Shout]:
        if target != "de":
            raise ModelMissingError(source, target)
        return [Shout(source, target)]

    def translate(self, leg, sentences, progress=None):
        self.batches.append(list(sentences))
        if progress:
            progress(len(sentences))
        return [sentence.upper() for sentence in sentences]


RECORD = {"id": "seed-bank", "title": "ANSO opens a seed bank in Kunming", "date": "2021-10-12",
          "summary": "Write to office@anso.org for a visit.", "languages": ["de"]}


def test_a_prepare_runs_with_another_engine_through_the_protocol(tmp_path):
    settings, engine = Settings(out_dir=tmp_path / "out"), UpperEngine()
    report = pipeline.prepare([(None, Event.model_validate(RECORD))], settings, engine=engine)
    assert report.releases["seed-bank"].languages == ["de", "en"] and not report.failed, report
    with db.session_scope(settings.db_url) as session:
        [draft] = store.list_drafts(session, lang="de", channel=RELEASE)
        text, engines = draft.text, draft.meta["engines"]
    assert "ANSO OPENS A SEED BANK IN KUNMING" in text  # the engine's output...
    assert "office@anso.org" in text and "OFFICE@ANSO.ORG" not in text  # ...with protected items put back
    assert engines == ["upper:en-de"]
    sent = [s for batch in engine.batches for s in batch]
    assert "⟦0⟧ opens a seed bank in Kunming" in sent  # the engine saw placeholders, not the items
    # The memory files the engine's output under its name: a second run asks the engine nothing.
    remembered = SqlMemory(settings.db_url).lookup("en", "de", "upper:en-de", sent)
    assert remembered == {s: s.upper() for s in sent}


def test_a_language_the_engine_has_no_route_for_is_skipped(tmp_path):
    settings = Settings(out_dir=tmp_path / "out")
    report = pipeline.prepare([(None, Event.model_validate({**RECORD, "languages": ["de", "fr"]}))], settings,
                              engine=UpperEngine())
    assert set(report.skipped["seed-bank"]) == {"fr"} and "de" in report.releases["seed-bank"].languages


def test_the_stage_runs_any_engine_and_argos_is_one_of_them(argos_models):
    [shouted] = translate_documents(["Visit https://anso.org.cn today."], "en", "de", engine=UpperEngine())
    assert shouted.text == "VISIT https://anso.org.cn TODAY." and shouted.engines == ["upper:en-de"]
    [argos] = translate_documents(["Visit https://anso.org.cn today."], "en", "es", engine=ArgosEngine())
    assert argos.engines[0].startswith("argos:en-es@") and "https://anso.org.cn" in argos.text
    # An engine rides inside units to task-runner workers: Argos pickles without its model cache.
    again = pickle.loads(pickle.dumps(ArgosEngine()))
    assert again.route("en", "es")[0].engine_id == argos.engines[0]


def test_importing_the_stage_loads_neither_the_renderer_nor_the_test_model_builder():
    heavy = ["jinja2", "markdown_it", "nh3", "pressflow.render", "pressflow.translate.testmodel"]
    code = ("import sys, pressflow.translate.stage; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
