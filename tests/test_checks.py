"""The QA checks, one by one, on machine-like and human-like sentences: each has a name, a label
and an explanation, flags what it is for, and keeps quiet on sentences that are right (in the
target language's own punctuation and digits)."""

from __future__ import annotations

import pytest

from pressflow.translate import checks
from pressflow.translate.checks import CHECKS, Sentence, check_sentence, describe, ending, over_limit
from pressflow.translate.protect import Glossary, Protector


def kinds(source: str, target: str, lang: str = "es", **extra) -> dict[str, list]:
    flags = check_sentence(Sentence(source, target, "en", lang, **extra))
    return {flag["kind"]: flag.get("items", []) for flag in flags}


def test_every_check_has_a_name_label_and_explanation():
    assert {"protected_missing", "identical_to_source", "glossary_term_missing", "numbers_differ", "urls_differ",
            "emails_differ", "end_punctuation", "unbalanced_brackets", "doubled_word", "double_space",
            "length_ratio", "over_limit"} <= set(CHECKS)
    for name, registered in CHECKS.items():
        assert registered.name == name and registered.label and len(registered.explanation) > 40


def test_a_good_translation_passes_every_check():
    source = "The forum opened on 12 June 2021 in Tashkent (Uzbekistan), see https://anso.org.cn."
    target = "El foro se abrió el 12 de junio de 2021 en Taskent (Uzbekistán), véase https://anso.org.cn."
    assert kinds(source, target, values=("https://anso.org.cn",)) == {}


def test_numbers_that_differ_are_named_whatever_their_script_or_separators():
    assert kinds("It holds 2,000 seeds from 2021.", "Tiene 2.000 semillas de 2022.")["numbers_differ"] == ["2021", "2022"]
    assert kinds("It holds 2,000 seeds.", "Tiene 2 000 semillas.") == {}
    assert kinds("In 2021, 12 partners.", "في ٢٠٢١، ١٢ شريكا.", "ar") == {}
    assert "numbers_differ" in kinds("In 2021 we met.", "En 2020 nos reunimos.")


def test_urls_and_email_addresses_must_be_the_same():
    found = kinds("Visit https://anso.org.cn/a now.", "Visite https://anso.org/a ahora.")
    assert found["urls_differ"] == ["https://anso.org.cn/a", "https://anso.org/a"]
    found = kinds("Write to press@anso.org.cn today.", "Escriba a prensa@anso.org.cn hoy.")
    assert found["emails_differ"] == ["prensa@anso.org.cn", "press@anso.org.cn"]


@pytest.mark.parametrize("source, target, lang", [
    ("It opened.", "它开放了。", "zh"), ("Who may use it?", "谁可以使用它？", "zh"), ("It opened.", "開きました。", "ja"),
    ("Who may use it?", "من يمكنه استخدامه؟", "ar"), ("Yes!", "¡Sí!", "es"), ("He said: “Yes.”", "Dijo: «Sí.»", "es"),
    ("Who is it?", "Ποιος είναι;", "el"), ("It opened.", "เปิดแล้ว", "th"), ("Read on…", "Sigue leyendo...", "es"),
])
def test_ending_punctuation_counts_each_languages_forms_as_the_same(source, target, lang):
    assert "end_punctuation" not in kinds(source, target, lang)


def test_ending_punctuation_that_differs_is_flagged():
    assert kinds("Who may use it?", "谁可以使用它。", "zh")["end_punctuation"] == [
        "question mark in the source, full stop in the translation"]
    assert "end_punctuation" in kinds("It opened.", "Se abrió", "es")
    assert ending("قال، ", "ar") == "comma" and ending("Done.”", "en") == "full stop"


def test_unbalanced_brackets_and_quotes():
    assert kinds("The forum (in Tashkent) opened.", "El foro (en Taskent se abrió.")["unbalanced_brackets"] == ["("]
    assert kinds("He said “yes” today.", "Dijo “sí hoy.")["unbalanced_brackets"] == ["“"]
    assert kinds('He said "yes" today.', 'Dijo "sí hoy.')["unbalanced_brackets"] == ['"']
    assert kinds("The alliance’s office opened.", "L’office de l’alliance a ouvert.", "fr") == {}
    assert kinds("它（在昆明）开放了。", "它（在昆明）开放了。", "zh").get("unbalanced_brackets") is None
    # A quote that runs over several sentences in the source is not the translation's fault.
    assert "unbalanced_brackets" not in kinds("“It is open. Come.", "“Está abierto. Ven.")


def test_doubled_words_and_spaces():
    assert kinds("The office opened in the city.", "La oficina se abrió en la la ciudad.")["doubled_word"] == ["la"]
    assert "doubled_word" not in kinds("It is very very big.", "Es muy muy grande.")  # as the source has it
    assert "double_space" in kinds("The office opened.", "La oficina  se abrió.")
    assert "double_space" not in kinds("The office opened.", "La oficina se abrió.")


def test_length_ratio_has_bounds_per_language_pair():
    source = "The alliance opened its new regional office in Tashkent this week."
    assert "length_ratio" in kinds(source, "Oficina.")
    assert "length_ratio" not in kinds(source, "本周，联盟在塔什干开设了新的区域办事处。", "zh")  # short, as Chinese is
    assert "length_ratio" in kinds(source, source[:20] + " " + source * 3)
    assert "length_ratio" not in kinds("Short one.", "Uno.")  # too short to judge
    assert checks.length_bounds("en", "zh-Hant") == checks.length_bounds("fr", "zh")


def test_identical_to_source_ignores_names_and_numbers():
    assert "identical_to_source" in kinds("The office opened today.", "The office opened today.")
    assert "identical_to_source" not in kinds("ANSO 2021", "ANSO 2021", key="⟦0⟧ ⟦1⟧")


def test_protected_items_and_glossary_on_human_text():
    glossary = Glossary(translations={"es": {"Green Aral Sea Initiative": "Iniciativa Mar de Aral Verde"}})
    protected = Protector(glossary.with_terms(["ANSO"]), "es").protect("ANSO backs the Green Aral Sea Initiative.")
    assert protected.values == ("ANSO", "Iniciativa Mar de Aral Verde")  # the forced wording is put back
    good = Sentence(protected.original, "ANSO apoya la Iniciativa Mar de Aral Verde.", "en", "es",
                    values=protected.values, forced=glossary.translations["es"], key=protected.text)
    assert check_sentence(good) == []
    wrong = Sentence(protected.original, "La alianza apoya la Iniciativa Verde del Mar de Aral.", "en", "es",
                     values=protected.values, forced=glossary.translations["es"], key=protected.text)
    found = {f["kind"]: f.get("items") for f in check_sentence(wrong)}
    assert found["protected_missing"] == ["ANSO", "Iniciativa Mar de Aral Verde"]
    assert found["glossary_term_missing"] == ["Iniciativa Mar de Aral Verde"]
    assert describe({"kind": "glossary_term_missing", "items": ["x"]}) == "Glossary term not followed: x"


def test_the_bundled_glossary_forces_translations_per_language():
    glossary = Glossary.load()
    for lang in ("es", "fr", "zh", "ar", "ru"):
        assert glossary.translations[lang], lang
    protected = Protector(glossary, "zh").protect("The Alliance of International Science Organizations met.")
    assert protected.values == (glossary.translations["zh"]["Alliance of International Science Organizations"],)


def test_a_post_over_its_platforms_limit():
    assert over_limit("x", "a" * 281) == [{"kind": "over_limit", "length": 281, "limit": 280}]
    assert over_limit("x", "中" * 141)[0]["length"] == 282  # X counts CJK characters double
    assert over_limit("x", "a" * 280) == [] and over_limit("release", "a" * 10_000) == []
    assert describe(over_limit("x", "a" * 281)[0]) == "Over the platform's length limit: 281 of 280"
