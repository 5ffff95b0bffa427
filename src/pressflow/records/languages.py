"""Member countries to the languages their readers need.

Defaults come from Babel's territory language data (CLDR), so a new member country needs no
code change; `data/countries.yaml` (or the user's copy) overrides it where practice differs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from babel import Locale
from babel.languages import get_official_languages

from ..core.errors import PressflowError

DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "data" / "countries.yaml"


class RegistryError(PressflowError):
    """The country/language registry file is unreadable or malformed."""


def _base_language(code: str) -> str:
    # Babel may answer 'uz_Cyrl' or 'mn_Mong'; models are named by the bare language.
    return code.replace("-", "_").split("_")[0].lower()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # PyYAML's message spans several lines with a caret drawing; errors here are one line.
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML: {problem}" + (f" (line {mark.line + 1}, column {mark.column + 1})" if mark else "")


@lru_cache(maxsize=8)
def load_overrides(path: Path | None = None) -> dict[str, tuple[str, ...]]:
    """Read the registry's overrides, checking every code so mistakes surface at once."""
    path = path or DEFAULT_REGISTRY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the country registry: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: cannot read the country registry: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: the country registry must be a mapping with an 'overrides' key")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise RegistryError(f"{path}: 'overrides' must map country codes to lists of languages")
    checked: dict[str, tuple[str, ...]] = {}
    for country, languages in overrides.items():
        if not isinstance(languages, list):
            raise RegistryError(f"{path}: country {country}: expected a list of languages")
        for tag in languages:
            try:
                Locale.parse(str(tag), sep="-")
            except Exception:
                raise RegistryError(f"{path}: country {country}: unknown language '{tag}'") from None
        checked[str(country).upper()] = tuple(str(t) for t in languages)
    return checked


def languages_for_country(country: str, registry: Path | None = None) -> tuple[str, ...]:
    """The languages readers in `country` need, most important first."""
    country = country.upper()
    overrides = load_overrides(registry)
    if country in overrides:
        return overrides[country]
    return tuple(dict.fromkeys(_base_language(c) for c in get_official_languages(country, de_facto=True)))


def target_languages(
    countries: list[str], explicit: list[str] | None = None, *, source: str = "en", registry: Path | None = None
) -> list[str]:
    """Target languages for a release: the explicit list if given, else its countries' languages.

    The source language is never a target; order is kept and duplicates are dropped.
    """
    if explicit is not None:
        wanted = list(explicit)
    else:
        wanted = [lang for country in countries for lang in languages_for_country(country, registry)]
    return [lang for lang in dict.fromkeys(wanted) if lang != source]


@lru_cache(maxsize=1024)  # every page's language bar names each language: parse CLDR once
def language_name(code: str, in_language: str = "en") -> str:
    """A language's display name, e.g. 'Spanish' or, in its own language, 'español'."""
    try:
        return Locale.parse(code, sep="-").get_display_name(in_language) or code
    except Exception:
        return code


@lru_cache(maxsize=256)
def text_direction(code: str) -> str:
    """'rtl' for right-to-left scripts, from CLDR's character order; 'ltr' otherwise."""
    try:
        return "rtl" if Locale.parse(code, sep="-").character_order == "right-to-left" else "ltr"
    except Exception:
        return "ltr"
