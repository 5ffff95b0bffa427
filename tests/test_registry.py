"""Tests of `pressflow.records.languages`: member countries to target languages.

Defaults come from Babel's CLDR data, the bundled overrides file corrects them where practice
differs, and a user's registry file replaces the bundled one. A broken registry file must be
reported once, naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pressflow.records.languages import (
    DEFAULT_REGISTRY,
    RegistryError,
    language_name,
    languages_for_country,
    load_overrides,
    target_languages,
    text_direction,
)


def registry_file(tmp_path: Path, text: str, name: str = "countries.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def empty_registry(tmp_path) -> Path:
    """A registry without overrides: every country gets Babel's defaults."""
    return registry_file(tmp_path, "overrides: {}\n", "empty.yaml")


# --- Babel defaults and the bundled overrides --------------------------------------------------


@pytest.mark.parametrize("country, expected", [("BR", ("pt",)), ("CN", ("zh",)), ("UY", ("es",)), ("TH", ("th",))])
def test_babel_defaults(country, expected, empty_registry):
    assert languages_for_country(country, empty_registry) == expected


def test_babel_default_for_pakistan_lists_urdu_then_english(empty_registry):
    # CLDR lists English second for PK: the registry keeps it, target_languages drops the source.
    assert languages_for_country("PK", empty_registry)[0] == "ur"
    assert target_languages(["PK"], registry=empty_registry) == ["ur"]


def test_country_codes_are_case_insensitive(empty_registry):
    assert languages_for_country("br", empty_registry) == ("pt",)


def test_script_variants_become_bare_languages(empty_registry):
    # Babel answers e.g. 'uz_Latn' style codes for some territories; models use bare codes.
    for country in ("UZ", "RS", "MN"):
        assert all("_" not in code and "-" not in code for code in languages_for_country(country, empty_registry))


def test_bundled_overrides():
    assert DEFAULT_REGISTRY.is_file()
    assert languages_for_country("KZ") == ("kk", "ru")
    assert languages_for_country("PK") == ("ur",)
    assert languages_for_country("ES") == ("es",)  # regional languages of Spain are not targets by default


def test_override_wins_over_babel(empty_registry):
    # CLDR puts Russian first for Kazakhstan; the bundled registry puts the state language first.
    assert languages_for_country("KZ", empty_registry) == ("ru", "kk")
    assert languages_for_country("KZ") == ("kk", "ru")
    assert languages_for_country("TJ", empty_registry) == ("tg",)
    assert languages_for_country("TJ") == ("tg", "ru")


# --- a user's registry file --------------------------------------------------------------------


def test_user_registry_replaces_bundled_one(tmp_path):
    path = registry_file(tmp_path, "overrides:\n  BR: [pt, es]\n  kz: [ru]\n  CN: []\n")
    assert languages_for_country("BR", path) == ("pt", "es")
    assert languages_for_country("KZ", path) == ("ru",)  # keys are upper-cased
    assert languages_for_country("CN", path) == ()  # [] means: nothing beyond English
    assert target_languages(["CN", "BR", "KZ"], registry=path) == ["pt", "es", "ru"]


def test_empty_registry_file_means_babel_defaults(tmp_path):
    path = registry_file(tmp_path, "")
    assert languages_for_country("BR", path) == ("pt",)


# --- target languages of a release -------------------------------------------------------------


def test_targets_follow_countries_in_order_without_duplicates():
    assert target_languages(["KZ", "UZ", "CN"]) == ["kk", "ru", "uz", "zh"]


def test_explicit_languages_override_countries():
    assert target_languages(["BR", "CN"], ["fr", "ar"]) == ["fr", "ar"]
    assert target_languages(["BR", "CN"], []) == []  # an explicit empty list means: English only


def test_source_language_is_never_a_target():
    assert target_languages([], ["en", "es", "en"]) == ["es"]
    assert target_languages(["GB", "US", "IN"]) == ["hi"]
    assert target_languages(["ES", "BR"], source="es") == ["pt"]


def test_no_countries_no_targets():
    assert target_languages([]) == []


# --- malformed registry files ------------------------------------------------------------------


@pytest.mark.parametrize("text, fragment", [
    ("overrides: [KZ, UZ]\n", "'overrides' must map"),
    ("overrides:\n  KZ: ru\n", "country KZ: expected a list"),
    ("overrides:\n  KZ: [kk, qqq]\n", "unknown language 'qqq'"),
    ("overrides:\n  KZ: [kk\n", "cannot read"),
    ("- KZ\n- UZ\n", "must be a mapping"),
    ("just some text\n", "must be a mapping"),
], ids=["overrides-list", "languages-not-list", "unknown-language", "bad-yaml", "top-level-list", "top-level-text"])
def test_malformed_registry_names_the_file(tmp_path, text, fragment):
    path = registry_file(tmp_path, text, "broken-registry.yaml")
    with pytest.raises(RegistryError) as caught:
        target_languages(["KZ"], registry=path)
    message = str(caught.value)
    assert str(path) in message
    assert fragment in message
    assert "\n" not in message.strip()


def test_missing_registry_file_names_the_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(RegistryError, match="nowhere.yaml"):
        load_overrides(path)


def test_explicit_languages_do_not_need_the_registry(tmp_path):
    # A release with explicit languages publishes even when the registry is broken.
    path = registry_file(tmp_path, "overrides: [oops]\n")
    assert target_languages(["KZ"], ["es"], registry=path) == ["es"]


# --- names and directions ----------------------------------------------------------------------


@pytest.mark.parametrize("code, direction", [("ar", "rtl"), ("he", "rtl"), ("fa", "rtl"), ("ur", "rtl"),
                                             ("en", "ltr"), ("zh", "ltr"), ("ru", "ltr"), ("not-a-language", "ltr")])
def test_text_direction(code, direction):
    assert text_direction(code) == direction


def test_language_names():
    assert language_name("es") == "Spanish"
    assert language_name("es", "es") == "español"
    assert language_name("zh", "zh") == "中文"
    assert language_name("qqq") == "qqq"
