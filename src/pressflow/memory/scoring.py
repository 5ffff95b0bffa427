"""Fuzzy translation-memory matching: how similar two sentences are, and how a match is reused.

The memory keeps sentences as the stage protects them: URLs, names, quantities... are numbered
placeholders (⟦0⟧, ⟦1⟧). Fuzzy matching also treats every other number as a placeholder
(⟦#⟧), so "held in 2021" and "held in 2022" are the same sentence (100%), and a suggestion gets
the new sentence's numbers and protected items put back, not the old ones.

The score is Weblate's: normalized Damerau-Levenshtein similarity x 100 (rapidfuzz), of the
sentences' folded forms (lower case, numbers as ⟦#⟧), and suggestions start at 75%. Finding candidates among 100,000 entries is the database's job (a
trigram index, see `memory.fuzzy`); this module only scores and adapts them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass

from rapidfuzz.distance import OSA, DamerauLevenshtein

from ..translate.protect import restore

THRESHOLD = 75  # percent, as Weblate's default for suggestions
SHOWN = 3  # suggestions per sentence
NUMBER_MARK = "⟦#⟧"
_PLACEHOLDER_OR_NUMBER = re.compile(r"(⟦\s*\d+\s*⟧)|(\d+(?:[.,:]\d+)*)")
_GRAM_WORD = re.compile(r"[^\W_]{3,}")


def fuzzy_form(key: str) -> str:
    """A protected sentence as fuzzy matching compares it: bare numbers become ⟦#⟧."""
    return _PLACEHOLDER_OR_NUMBER.sub(lambda m: m.group(1) or NUMBER_MARK, " ".join(key.split()))


def numbers(key: str) -> list[str]:
    """The bare numbers of a protected sentence, in order (placeholder indexes are not numbers)."""
    return [m.group(2) for m in _PLACEHOLDER_OR_NUMBER.finditer(key) if m.group(2)]


def grams(folded: str) -> list[str]:
    """The distinct trigrams inside words of a folded fuzzy form: what both databases' trigram
    indexes can look up (pg_trgm ignores trigrams that span a space or a mark)."""
    found: dict[str, None] = {}
    for word in _GRAM_WORD.findall(folded):
        for i in range(len(word) - 2):
            found[word[i:i + 3]] = None
    return list(found)


def fold(key: str) -> str:
    """What the candidate index holds: the fuzzy form, lower-cased (trigram lookups ignore case)."""
    return fuzzy_form(key).casefold()


def score(a: str, b: str) -> int:
    """Similarity of two fuzzy forms in percent (0 when certainly below THRESHOLD).

    OSA (restricted Damerau-Levenshtein) is bit-parallel and never scores below Damerau-Levenshtein
    (its distance is never smaller), so it rejects most candidates cheaply; rapidfuzz's exact
    Damerau-Levenshtein (O(n*m), ~0.1 ms a pair) is computed only for the rest.
    """
    if OSA.normalized_similarity(a, b, score_cutoff=(THRESHOLD - 5) / 100) == 0:
        return 0
    return int(DamerauLevenshtein.normalized_similarity(a, b) * 100 + 1e-9)


def adapt(entry_source: str, entry_text: str, key: str) -> str:
    """A memory entry's translation (with placeholders) fitted to a new protected sentence: the
    new sentence's numbers where the entry had its own, when both have as many."""
    old, new = numbers(entry_source), numbers(key)
    text = entry_text
    if old and len(old) == len(new) and old != new:
        unused = list(range(len(old)))

        def swap(match: re.Match) -> str:
            number = match.group(2)
            slot = next((j for j in unused if number is not None and old[j] == number), None)
            if slot is None:
                return match.group(0)
            unused.remove(slot)
            return new[slot]

        text = _PLACEHOLDER_OR_NUMBER.sub(swap, text)
    return text


def fill(text: str, values: list[str] | tuple[str, ...]) -> str:
    """A suggestion with the sentence's protected items in its placeholders (one the entry lacks
    is put at the end, as the stage does: a protected item is never lost)."""
    return restore(text, tuple(values))[0]


@dataclass(frozen=True)
class Suggestion:
    """One memory entry offered for a sentence."""

    score: int
    origin: str  # "human" or "machine"
    who: str  # the reviewer, or the engine
    date: str  # YYYY-MM-DD
    text: str  # fitted to the sentence: its numbers and protected items

    def line(self) -> str:
        return f"suggestion {self.score}% ({self.origin}, {self.who}, {self.date}): {self.text}"

    def as_dict(self) -> dict:
        return asdict(self)


def ranked(candidates: list[tuple[Suggestion, dt.datetime]], limit: int = SHOWN) -> list[Suggestion]:
    """Reviewers' entries first, then by score, then the newest; one suggestion per text."""
    ordered = sorted(candidates, key=lambda c: (c[0].origin != "human", -c[0].score, -c[1].timestamp()))
    shown: dict[str, Suggestion] = {}
    for suggestion, _ in ordered:
        shown.setdefault(suggestion.text, suggestion)
    return list(shown.values())[:limit]
