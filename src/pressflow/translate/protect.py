"""Protection: text that must come out of translation exactly as it went in.

URLs, e-mail addresses, hashtags, @handles, numbers with units, template `keep` spans and
glossary terms are swapped for numbered placeholders (⟦0⟧, ⟦1⟧, ...) that a model copies
through, and swapped back afterwards. Placeholders are numbered per sentence, so the same
sentence about a different person is the same segment to the translation memory.

A model can still drop or duplicate a placeholder. Restoration never loses a protected item: a
dropped one is put back at the end of its sentence, and the draft carries a QA flag so a
reviewer looks at it before it is published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import yaml

from .marks import KEEP_CLOSE, KEEP_OPEN, PLACEHOLDER
from .marks import PLACEHOLDER_OR_PART as _PLACEHOLDER_OR_PART
from .marks import PLACEHOLDER_PATTERN as _PLACEHOLDER
DEFAULT_GLOSSARY = Path(__file__).resolve().parents[1] / "data" / "glossary.yaml"

_UNITS = r"(?:%|°C|km²|km|kg|mm|cm|m|t|MW|GW|kW|kWh|ha|billion|million|people|participants|scientists)"
_PATTERNS = [
    ("keep", rf"{KEEP_OPEN}.*?{KEEP_CLOSE}"),
    ("url", r"\bhttps?://[^\s<>\"“”]+[^\s<>\"“”.,;:!?)\]]"),
    ("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    ("handle", r"(?<![\w@])@\w{1,30}\b"),
    ("hashtag", r"(?<![\w#&])#\w+"),
    ("quantity", rf"\b\d[\d,.]*\s?{_UNITS}(?![\w])"),
    ("formula", r"\bCO2\b|\bH2O\b"),
]


@dataclass(frozen=True)
class Glossary:
    """Do-not-translate terms, and per-language official translations of terms."""

    keep: tuple[str, ...] = ()
    translations: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> "Glossary":
        data = yaml.safe_load((path or DEFAULT_GLOSSARY).read_text(encoding="utf-8")) or {}
        return cls(tuple(data.get("keep") or ()), {k: dict(v) for k, v in (data.get("translations") or {}).items()})

    def with_terms(self, terms: Iterable[str]) -> "Glossary":
        return Glossary(tuple(dict.fromkeys((*self.keep, *terms))), self.translations)

    def with_names(self, names: Iterable[str], *, titled_only: bool = False) -> "Glossary":
        """Keep people's names as written, also where the text drops their title or capitals.

        `titled_only` takes only the names with a title, for a list that mixes people with
        organizations (whose names are translated)."""
        return self.with_terms(form for name in names if not titled_only or without_title(name) != name
                               for form in name_forms(name))


# Titles a record puts before a person's name ("Prof. BAI Chunli") that running text may leave
# out or change ("Academician BAI Chunli"): such a title is translated, the bare name is kept.
_TITLE = re.compile(r"^(?:(?:Prof|Dr|Mr|Mrs|Ms|Mx|Hon|Amb|Rev)\.|H\.\s?E\.|Professor|Academician|Ambassador"
                    r"|Excellency|Sir|Dame|Madam|Miss)\s+")


def without_title(name: str) -> str:
    """The name without its leading titles: "H.E. Prof. BAI Chunli" -> "BAI Chunli"."""
    while (match := _TITLE.match(name)) and name[match.end():].strip():
        name = name[match.end():]
    return name.strip()


def name_forms(name: str) -> list[str]:
    """A name as the record writes it, without its titles, and with an upper-case surname
    written as an ordinary word ("BAI Chunli" -> "Bai Chunli"), as running text often has it."""
    bare = without_title(name)
    # One word alone ("Dr. Green" -> "Green") is too often an ordinary word to keep everywhere.
    if len(bare.split()) < 2:
        return [name]
    plain = " ".join(word.capitalize() if word.isalpha() and word.isupper() and len(word) > 1 else word
                     for word in bare.split())
    return list(dict.fromkeys((name, bare, plain)))


@dataclass(frozen=True)
class Protected:
    """A sentence with placeholders, and what each placeholder stands for in the target."""

    text: str
    values: tuple[str, ...]
    original: str = ""


def _term_pattern(terms: Iterable[str]) -> str | None:
    # Longest first, so "UNESCO MAB" wins over "UNESCO".
    words = sorted({t for t in terms if t.strip()}, key=len, reverse=True)
    if not words:
        return None
    return r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)"


class Protector:
    """Finds protected items for one target language."""

    def __init__(self, glossary: Glossary, target: str):
        self.forced = glossary.translations.get(target, {})
        parts = [p for _, p in _PATTERNS]
        for terms in (self.forced, glossary.keep):
            pattern = _term_pattern(terms)
            if pattern:
                parts.append(pattern)
        self.pattern = re.compile("|".join(f"(?:{p})" for p in parts), re.S)

    def _target_value(self, item: str) -> str:
        if item.startswith(KEEP_OPEN):
            return item[1:-1]
        return self.forced.get(item, item)

    def protect(self, sentence: str) -> Protected:
        values: list[str] = []

        def swap(match: re.Match) -> str:
            values.append(self._target_value(match.group(0)))
            return PLACEHOLDER.format(len(values) - 1)

        return Protected(self.pattern.sub(swap, sentence), tuple(values), sentence.replace(KEEP_OPEN, "").replace(KEEP_CLOSE, ""))


def needs_model(protected_text: str) -> bool:
    """Whether anything translatable is left once placeholders are taken out."""
    return bool(re.search(r"[^\W\d_]", _PLACEHOLDER.sub("", protected_text)))


def restore(translated: str, values: tuple[str, ...]) -> tuple[str, list[str]]:
    """Put protected items back; returns the text and the items the model had dropped."""
    used: set[int] = set()

    def swap(match: re.Match) -> str:
        if match.group(1) is None:
            return ""  # half a placeholder carries nothing
        index = int(match.group(1))
        if index >= len(values) or index in used:
            return ""  # an invented or repeated placeholder carries nothing
        used.add(index)
        return values[index]

    text = _PLACEHOLDER_OR_PART.sub(swap, translated)
    dropped = [value for i, value in enumerate(values) if i not in used]
    if dropped:
        text = text.rstrip() + " " + " ".join(dropped)
    return re.sub(r"[ \t]{2,}", " ", text).strip(), dropped
