"""Tests of the translation stage with real (tiny, random-weight) Argos packages, en->es and en->zh.

The models' output is gibberish by design, so these tests check the pipeline around them:
protected items come through unchanged, placeholders never reach readers, identical sentences
are translated once, the translation memory saves the second run, a missing pair is named,
and a pair without a direct model goes through English.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pressflow.core.errors import ModelMissingError
from pressflow.render import KEEP_CLOSE, KEEP_OPEN, keep
from pressflow.memory.store import SqlMemory
from pressflow.translate import testmodel
from pressflow.translate.models import Model, installed_models
from pressflow.translate.protect import Glossary
from pressflow.translate.stage import HUMAN, StageStats, translate_documents

MODEL_CACHE = Path(__file__).resolve().parents[1] / "build" / "test-models"
TARGETS = ("es", "zh")

URL = "https://www.anso.org.cn/news/2021/exhibition.html?lang=en&id=7"
EMAIL = "press@anso.org.cn"
HASHTAG = "#COP15"
HANDLE = "@ANSO_org"
KEPT = "Beijing Botanical Garden"
PROTECTED_DOC = (
    f"# The exhibition opens at the {keep(KEPT)}\n"
    "\n"
    f"Read the programme at {URL} or write to {EMAIL} for tickets. "
    f"Follow {HANDLE} and {HASHTAG} for news from the garden.\n"
)
LEAKS = ("⟦", "⟧", KEEP_OPEN, KEEP_CLOSE)


def no_leaks(text: str) -> bool:
    return not any(mark in text for mark in LEAKS)


@pytest.fixture(scope="module")
def models(argos_models) -> dict[tuple[str, str], Model]:
    return {(m.source, m.target): m for m in installed_models()}


@pytest.fixture
def memory(tmp_path) -> SqlMemory:
    return SqlMemory(f"sqlite:///{tmp_path / 'memory.db'}")


# --- protection ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_protected_items_survive_unchanged(argos_models, target):
    stats = StageStats()
    [result] = translate_documents([PROTECTED_DOC], "en", target, stats=stats)
    assert stats.translated > 0
    for item in (URL, EMAIL, HASHTAG, HANDLE, KEPT):
        assert item in result.text, item
    assert no_leaks(result.text), result.text
    # The document's shape survives: the heading line, the blank line, the paragraph line.
    lines = result.text.split("\n")
    assert len(lines) == len(PROTECTED_DOC.split("\n"))
    assert lines[0].startswith("# ") and lines[1] == ""
    # The model saw placeholders, never the protected values themselves.
    for segment in result.segments:
        assert URL not in segment["key"] and EMAIL not in segment["key"] and KEEP_OPEN not in segment["key"]
        assert no_leaks(segment["text"])
    assert result.engines and not result.pivot


@pytest.mark.parametrize("target", TARGETS)
def test_placeholders_never_leak(argos_models, target):
    # Many placeholders per sentence give the random model every chance to mangle them.
    documents = [" ".join(f"Item {i}: see https://example.org/{i}/{j} #Tag{j}." for j in range(6)) for i in range(4)]
    results = translate_documents(documents, "en", target)
    for i, result in enumerate(results):
        assert no_leaks(result.text), result.text
        for j in range(6):
            assert f"https://example.org/{i}/{j}" in result.text and f"#Tag{j}" in result.text


@pytest.mark.parametrize("target", TARGETS)
def test_dropped_items_are_restored_and_flagged(argos_models, memory, target):
    # Whether the model keeps a placeholder is up to its random weights: a remembered translation
    # that keeps one placeholder and drops the other stands for a model that did so.
    sentence = f"Write to {EMAIL} or follow {HANDLE} today."
    memory.save("en", target, HUMAN, {"Write to ⟦0⟧ or follow ⟦1⟧ today.": "Escriba a ⟦0⟧ hoy."})
    [result] = translate_documents([sentence], "en", target, memory=memory)
    assert result.text == f"Escriba a {EMAIL} hoy. {HANDLE}"  # the dropped item put back, at the end
    # Put back at the end, the item also leaves the sentence without its full stop: both are said.
    assert result.qa == [{"kind": "protected_missing", "segment": 0, "items": [HANDLE]},
                         {"kind": "end_punctuation", "segment": 0,
                          "items": ["full stop in the source, none in the translation"]}]


def test_text_without_words_skips_the_model(argos_models):
    stats = StageStats()
    documents = [f"{URL}\n", "\n\n", f"{HASHTAG} {HANDLE}\n", "2021\n"]
    assert [r.text for r in translate_documents(documents, "en", "es", stats=stats)] == documents
    assert stats.translated == 0 and stats.unique == 0


def test_glossary_terms_get_their_official_translation(argos_models):
    glossary = Glossary(keep=("UNESCO",), translations={"es": {"Alliance of International Science Organizations":
                                                                "Alianza de Organizaciones Científicas Internacionales"}})
    [result] = translate_documents(["The Alliance of International Science Organizations thanks UNESCO."], "en", "es",
                                   glossary=glossary)
    assert "Alianza de Organizaciones Científicas Internacionales" in result.text
    assert "UNESCO" in result.text
    assert "Alliance of International Science Organizations" not in result.text


# --- dedup and memory ----------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_the_same_sentence_is_translated_once(argos_models, target):
    sentence = "The forum on green technology opened today."
    stats = StageStats()
    results = translate_documents([sentence, f"{sentence} {sentence}\n\n# {sentence}"], "en", target, stats=stats)
    assert stats.segments == 4
    assert stats.unique == 1
    assert stats.translated == 1
    assert results[1].text.count(results[0].text) == 3


def test_sentences_differing_only_in_protected_items_are_one_segment(argos_models):
    # Placeholders are numbered per sentence: the same sentence about another URL is the same work.
    stats = StageStats()
    results = translate_documents(["Read more at https://a.example.org/x today.",
                                   "Read more at https://b.example.org/y today."], "en", "es", stats=stats)
    assert stats.unique == 1 and stats.translated == 1
    assert "https://a.example.org/x" in results[0].text and "https://b.example.org/y" in results[1].text


@pytest.mark.parametrize("target", TARGETS)
def test_translation_memory_saves_the_second_run(argos_models, memory, target):
    documents = [PROTECTED_DOC, "Scientists from six countries met in Kunming."]
    first_stats, second_stats = StageStats(), StageStats()
    first = translate_documents(documents, "en", target, memory=memory, stats=first_stats)
    second = translate_documents(documents, "en", target, memory=memory, stats=second_stats)
    assert first_stats.translated == first_stats.unique > 0
    assert second_stats.translated == 0
    assert second_stats.from_memory == second_stats.unique == first_stats.unique
    assert [r.text for r in second] == [r.text for r in first]


def test_memory_is_per_target_language(argos_models, memory):
    translate_documents(["The summit closed."], "en", "es", memory=memory)
    stats = StageStats()
    translate_documents(["The summit closed."], "en", "zh", memory=memory, stats=stats)
    assert stats.translated == 1 and stats.from_memory == 0


def test_human_memory_wins_over_the_model(argos_models, memory):
    sentence = "The summit closed with a declaration."
    memory.save("en", "es", HUMAN, {sentence: "La cumbre concluyó con una declaración."})
    stats = StageStats()
    [result] = translate_documents([sentence], "en", "es", memory=memory, stats=stats)
    assert result.text == "La cumbre concluyó con una declaración."
    assert stats.translated == 0


# --- routes --------------------------------------------------------------------------------


def test_missing_pair_is_named(argos_models):
    with pytest.raises(ModelMissingError) as caught:
        translate_documents(["Hello."], "en", "pt")
    assert "en->pt" in str(caught.value)
    assert "pressflow models install en pt" in str(caught.value)
    assert (caught.value.source, caught.value.target) == ("en", "pt")


def test_missing_pair_fails_before_any_work(models, memory):
    stats = StageStats()
    with pytest.raises(ModelMissingError, match="es->zh"):
        translate_documents(["Hola."], "es", "zh", models=[models["en", "zh"]], memory=memory, stats=stats)
    assert stats == StageStats()


@pytest.fixture(scope="module")
def es_en(tmp_path_factory) -> Model:
    """A tiny es->en package, unpacked by hand (not installed: argostranslate's settings are
    read once per process, so the pivot test passes its models explicitly)."""
    archive = testmodel.build_package("es", "en", MODEL_CACHE)
    folder = tmp_path_factory.mktemp("es-en")
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(folder)
        top = zf.namelist()[0].split("/")[0]
    return Model("es", "en", folder / top, "1.0")


def test_pivot_through_english(models, es_en, memory):
    route = [es_en, models["en", "zh"]]
    stats = StageStats()
    documents = [f"La exposición abre en {URL} hoy.", "Los científicos se reunieron en Kunming."]
    results = translate_documents(documents, "es", "zh", models=route, memory=memory, stats=stats)
    for result in results:
        assert result.pivot
        assert result.engines == [es_en.engine_id, models["en", "zh"].engine_id]
        assert no_leaks(result.text)
    assert URL in results[0].text
    assert stats.unique == 2
    assert stats.translated == 4  # two sentences, two legs
    # Both legs are remembered: the second run needs no model at all.
    again = StageStats()
    assert [r.text for r in translate_documents(documents, "es", "zh", models=route, memory=memory,
                                                stats=again)] == [r.text for r in results]
    assert again.translated == 0


def test_direct_model_is_preferred_over_the_pivot(models, es_en):
    es_zh_direct = models["en", "zh"]  # stands in for a direct es->zh package
    direct = Model("es", "zh", es_zh_direct.path, es_zh_direct.version)
    [result] = translate_documents(["Hola."], "es", "zh", models=[es_en, models["en", "zh"], direct])
    assert not result.pivot and result.engines == [direct.engine_id]


# --- the parts, without a model --------------------------------------------------------------


def test_restore_drops_half_placeholders_and_keeps_values():
    from pressflow.translate.protect import restore

    text, dropped = restore("Hola ⟧ mundo ⟦3 y ⟦0⟧ ⟦ 1 ⟧⟧ fin ⟦", ("https://x.org/a", "#COP15"))
    assert text == "Hola mundo y https://x.org/a #COP15 fin"
    assert dropped == []
    text, dropped = restore("Solo ⟦1⟧ ⟦1⟧ ⟦7⟧", ("a@b.org", "#COP15"))
    assert text == "Solo #COP15 a@b.org" and dropped == ["a@b.org"]


@pytest.mark.parametrize("line, whole", [
    (f"Read it at {URL} or write to {EMAIL}. Then come.", URL),
    ("Visit www.example.org/a?b=c today. Then come.", "www.example.org/a?b=c"),
    (f"— {keep('Prof. BAI Chunli')}, President of ANSO. Then come.", keep("Prof. BAI Chunli")),
    (f"It opened on {keep('Aug. 30')} in Beijing. Then come.", keep("Aug. 30")),
])
def test_sentence_boundaries_never_cut_protected_items(line, whole):
    from pressflow.translate.segment import split_document

    pieces = split_document(line + "\n")
    assert "".join(p.text for p in pieces) == line + "\n"
    sentences = [p.text for p in pieces if p.translate]
    assert any(whole in s for s in sentences), sentences
    assert sentences[-1] == "Then come."


def test_a_question_ending_in_a_url_is_still_two_sentences():
    from pressflow.translate.segment import split_document

    sentences = [p.text for p in split_document("Have you seen https://x.org/a? Yes.") if p.translate]
    assert sentences == ["Have you seen https://x.org/a?", "Yes."]


def test_units_alternate_between_models_so_workers_do_not_queue_on_one():
    # Units of one model queue on its lock; neighbours (what two workers take at once) must
    # use different models, and no more models may be in turn than the cache holds.
    from pressflow.translate.stage import Unit, interleave

    sizes = {"es": 5, "fr": 3, "zh": 2, "ar": 1}
    work = [(lang, Unit(Model("en", lang, Path(f"/models/{lang}"), "1"), (f"{lang}{i}",) * 10, lang))
            for lang, count in sizes.items() for i in range(count)]
    ordered = interleave(work, lanes=2)
    assert sorted(ordered, key=str) == sorted(work, key=str)  # nothing lost or repeated
    langs = [lang for lang, _ in ordered]
    assert all(a != b for a, b in zip(langs, langs[1:])), langs
    # Each model's units stay in order, and each model runs in one lane only.
    for lang in sizes:
        mine = [unit.segments[0] for l, unit in ordered if l == lang]
        assert mine == [f"{lang}{i}" for i in range(sizes[lang])]
    # A model is in use from its first unit to its last: never more than two at once.
    spans = [(langs.index(lang), len(langs) - 1 - langs[::-1].index(lang)) for lang in sizes]
    assert max(sum(first <= i <= last for first, last in spans) for i in range(len(langs))) == 2
    assert interleave([], lanes=2) == []
