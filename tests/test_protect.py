"""Protection round trips: what goes in as a placeholder comes out exactly as it went in."""

from __future__ import annotations

import re

import pytest

from pressflow.render import keep
from pressflow.translate.protect import Glossary, Protector, name_forms, needs_model, restore

GLOSSARY = Glossary(keep=("ANSO", "UNESCO", "UNESCO MAB"),
                    translations={"es": {"Green Aral Sea Initiative": "Iniciativa Mar de Aral Verde"}})
SENTENCE = ("ANSO and UNESCO MAB met Prof. BAI Chunli at https://anso.org.cn/news/1, wrote to press@anso.org.cn, "
            "tagged @ANSO_org and #GreenTech, and planted 30 ha for 5,000 people with the Green Aral Sea Initiative.")


def protect(sentence: str, target: str = "es", terms: tuple[str, ...] = ("Prof. BAI Chunli",)):
    return Protector(GLOSSARY.with_terms(terms), target).protect(sentence)


def test_every_kind_of_protected_item_becomes_a_placeholder():
    protected = protect(SENTENCE)
    assert set(protected.values) == {
        "ANSO", "UNESCO MAB", "Prof. BAI Chunli", "https://anso.org.cn/news/1", "press@anso.org.cn",
        "@ANSO_org", "#GreenTech", "30 ha", "5,000 people", "Iniciativa Mar de Aral Verde"}
    assert "UNESCO" not in protected.text and "https://" not in protected.text
    assert re.findall(r"⟦(\d+)⟧", protected.text) == [str(i) for i in range(len(protected.values))]
    assert protected.original == SENTENCE


def test_forced_translation_only_for_its_language():
    french = protect(SENTENCE, "fr")  # no official French name: the model translates it
    assert "Green Aral Sea Initiative" in french.text and "Iniciativa Mar de Aral Verde" not in french.values
    assert "Iniciativa Mar de Aral Verde" in protect(SENTENCE, "es").values


def test_round_trip_with_placeholders_reordered_by_the_model():
    protected = protect("Visit https://example.org/a and ask Prof. BAI Chunli about #Science.")
    # a model moves placeholders around and spaces them oddly
    translated = "Pregunte a ⟦ 1 ⟧ sobre ⟦2⟧ y visite ⟦0⟧."
    text, dropped = restore(translated, protected.values)
    assert text == "Pregunte a Prof. BAI Chunli sobre #Science y visite https://example.org/a."
    assert dropped == []


def test_a_dropped_placeholder_is_put_back_and_reported():
    protected = protect("Write to press@anso.org.cn or follow @ANSO_org.")
    text, dropped = restore("Escriba a ⟦0⟧.", protected.values)
    assert dropped == ["@ANSO_org"]
    assert text.endswith("@ANSO_org") and "press@anso.org.cn" in text


def test_invented_repeated_and_half_placeholders_carry_nothing():
    text, dropped = restore("⟦0⟧ ⟦0⟧ ⟦7⟧ texto ⟧ fin ⟦", ("#Science",))
    assert text == "#Science texto fin" and dropped == []


def test_keep_spans_from_templates_are_protected_without_their_marks():
    protected = protect(f"The forum took place on {keep('11 June 2021')} online.")
    assert protected.values == ("11 June 2021",)


def test_sentence_of_placeholders_needs_no_model():
    assert not needs_model(protect("https://example.org/a #Science").text)
    assert needs_model(protect("Read https://example.org/a today.").text)


def test_bundled_glossary_loads_keep_terms_and_translations():
    glossary = Glossary.load()
    assert "ANSO" in glossary.keep and "UNESCO MAB" in glossary.keep
    assert glossary.translations["es"]["Green Aral Sea Initiative"] == "Iniciativa Mar de Aral Verde"
    # the longest term wins: "UNESCO MAB" is one item, not "UNESCO" plus text
    assert Protector(glossary, "es").protect("UNESCO MAB met.").values == ("UNESCO MAB",)


def test_a_name_is_kept_without_its_title_and_with_its_surname_written_plainly():
    protector = Protector(Glossary().with_names(["H.E. Prof. BAI Chunli"]), "es")
    protected = protector.protect("Academician BAI Chunli, Bai Chunli and H.E. Prof. BAI Chunli spoke.")
    assert protected.values == ("BAI Chunli", "Bai Chunli", "H.E. Prof. BAI Chunli")
    assert protected.text == "Academician ⟦0⟧, ⟦1⟧ and ⟦2⟧ spoke."  # the bare title is translated


@pytest.mark.parametrize("name, forms", [
    ("Prof. BAI Chunli", ["Prof. BAI Chunli", "BAI Chunli", "Bai Chunli"]),
    ("Academician ZHANG Suojiang", ["Academician ZHANG Suojiang", "ZHANG Suojiang", "Zhang Suojiang"]),
    ("Dr. Lily Eurwilaichitr", ["Dr. Lily Eurwilaichitr", "Lily Eurwilaichitr"]),
    ("Mrs. J. R. SMITH", ["Mrs. J. R. SMITH", "J. R. SMITH", "J. R. Smith"]),
    ("Prof. CHO Nam-Joon", ["Prof. CHO Nam-Joon", "CHO Nam-Joon", "Cho Nam-Joon"]),
    ("WANG Yongming", ["WANG Yongming", "Wang Yongming"]),
    ("Dr. Green", ["Dr. Green"]),  # "Green" alone is too common a word to keep everywhere
    ("Professor", ["Professor"]),
])
def test_name_forms(name, forms):
    assert name_forms(name) == forms


def test_only_titled_names_are_taken_from_a_list_mixing_people_and_organizations():
    glossary = Glossary().with_names(["UNESCO Beijing Office", "Ms. Ana Lima"], titled_only=True)
    assert glossary.keep == ("Ms. Ana Lima", "Ana Lima")
