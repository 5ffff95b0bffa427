"""Place names in the reader's language: the city of a dateline and of a page.

A city reads as its readers write it ("القاهرة، مصر", "北京，中国"), never as the record's author
did ("Cairo ,مصر" on an Arabic page). The name comes from, in order:

1. the record itself (`location.city: {en: Cairo, ar: القاهرة}`);
2. the glossary's `translations` for the language (a city may be a term there);
3. the place registry (`data/places.yaml`, or the file PRESSFLOW_PLACES names);
4. CLDR's names of its time-zone cities (Babel ships them: Cairo, Shanghai, Tashkent, ...);
5. the name as the record writes it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from babel import Locale

from ..records.languages import text_direction

DEFAULT_PLACES = Path(__file__).resolve().parents[1] / "data" / "places.yaml"
DEFAULT_GLOSSARY = Path(__file__).resolve().parents[1] / "data" / "glossary.yaml"
# The comma between a city and its country, as each script writes it.
_SEPARATORS = {"zh": "，", "ja": "、", "ar": "، ", "fa": "، ", "ur": "، ", "ps": "، "}


@lru_cache(maxsize=8)
def _yaml(path: str) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def registry(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The place registry (`Settings.places_file`, else the bundled one): {name as written: {lang: name}}."""
    chosen = path or DEFAULT_PLACES
    return {str(k): {str(lang): str(v) for lang, v in (names or {}).items()}
            for k, names in _yaml(str(chosen)).items() if isinstance(names, dict)}


@lru_cache(maxsize=64)
def _cldr_cities(lang: str) -> dict[str, str]:
    """CLDR's time-zone cities in `lang`, by their English name ('Cairo' -> 'القاهرة')."""
    try:
        locale = Locale.parse(lang, sep="-")
    except Exception:
        return {}
    english = Locale("en").time_zones  # CLDR leaves out an English name that the zone's id spells
    return {english.get(zone, {}).get("city") or zone.rsplit("/", 1)[-1].replace("_", " "): names["city"]
            for zone, names in locale.time_zones.items() if "city" in names}


def _base(lang: str) -> str:
    return lang.split("-")[0].split("_")[0]


def city_name(location, lang: str, *, glossary_file: Path | None = None, places_file: Path | None = None) -> str | None:
    """`location`'s city as readers of `lang` write it; None when the record names no city."""
    if location is None or location.city is None:
        return None
    if isinstance(location.city, dict):
        for tag in (lang, _base(lang)):
            if tag in location.city:
                return location.city[tag]
    written = location.city_as_written()
    glossary = _yaml(str(glossary_file or DEFAULT_GLOSSARY)).get("translations") or {}
    for tag in (lang, _base(lang)):
        if isinstance(glossary.get(tag), dict) and written in glossary[tag]:
            return str(glossary[tag][written])
    names = registry(places_file).get(written, {})
    for tag in (lang, _base(lang)):
        if tag in names:
            return names[tag]
    return _cldr_cities(_base(lang)).get(written, written)


def country_name(location, lang: str) -> str | None:
    from . import babel_locale

    if location is None or not location.country:
        return None
    return babel_locale(lang).territories.get(location.country.upper(), location.country)


def place_line(location, lang: str, *, glossary_file: Path | None = None, places_file: Path | None = None,
               with_country: bool = True) -> str | None:
    """'القاهرة، مصر', 'Pekín, China', '北京，中国': the city and country in `lang`'s words and commas."""
    parts = [city_name(location, lang, glossary_file=glossary_file, places_file=places_file),
             country_name(location, lang) if with_country else None]
    parts = [p for p in parts if p]
    return separator(lang).join(parts) or None


def separator(lang: str) -> str:
    """The comma of `lang` between a place and what follows it."""
    return _SEPARATORS.get(_base(lang), "، " if text_direction(lang) == "rtl" else ", ")
