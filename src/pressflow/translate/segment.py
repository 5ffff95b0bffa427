"""Documents to translatable sentences, and back.

The press release is Markdown translated line by line: a line's Markdown syntax (heading marks,
quote marks, list bullets) is kept verbatim and only its text is split into sentences with
pysbd, a rule-based splitter that needs no download and knows titles and initials
("Prof. BAI Chunli", "U.N.", "30 Aug.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import pysbd

from ..render import KEEP_CLOSE, KEEP_OPEN

# Runs a sentence boundary must not cut: `keep` spans, URLs, e-mail addresses.
_UNSPLITTABLE = re.compile(rf"{KEEP_OPEN}.*?{KEEP_CLOSE}|\b(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.S)
_LINE_PREFIX = re.compile(r"^(\s*(?:#{1,6}\s+|>\s?|[-*+]\s+|\d{1,3}[.)]\s+)*)")


@dataclass(frozen=True)
class Piece:
    """A run of a document: a sentence to translate, or text kept as it is."""

    text: str
    translate: bool


@lru_cache(maxsize=16)
def _segmenter(language: str) -> pysbd.Segmenter:
    try:
        return pysbd.Segmenter(language=language, clean=False, char_span=True)
    except ValueError:  # pysbd has no rules for this language: English rules are the safest
        return pysbd.Segmenter(language="en", clean=False, char_span=True)


def _sentence_spans(text: str, language: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence pysbd finds, merged where a boundary falls inside an
    item that must stay whole: pysbd ends a sentence at the '?' of a URL's query or at the
    'Prof.' of a kept name, and half a URL cannot be protected."""
    spans: list[tuple[int, int]] = []
    position = 0
    for span in _segmenter(language).segment(text):
        sentence = span.sent.strip()
        start = text.find(sentence, position)
        if start < 0:  # pysbd changed the text; fall back to the whole remainder
            break
        spans.append((start, start + len(sentence)))
        position = start + len(sentence)
    whole = [(m.start(), m.end()) for m in _UNSPLITTABLE.finditer(text)]
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and any(a < merged[-1][1] < b for a, b in whole):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def split_sentences(text: str, language: str = "en") -> list[Piece]:
    """One line of prose into sentences, keeping the whitespace between them."""
    return list(_split_line(text, language))


# A release's lines come back once per target language (prepare works language by language over
# every release) and the boilerplate in every release: pysbd costs ~0.6 ms a line, so split
# results are kept. 65,536 lines hold a 1,000-release run's passes (~30 MB at most).
@lru_cache(maxsize=65536)
def _split_line(text: str, language: str) -> tuple[Piece, ...]:
    pieces: list[Piece] = []
    position = 0
    for start, end in _sentence_spans(text, language):
        if start > position:
            pieces.append(Piece(text[position:start], False))
        pieces.append(Piece(text[start:end], True))
        position = end
    if position < len(text):
        rest = text[position:]
        pieces.append(Piece(rest, bool(rest.strip())))
    return tuple(pieces)


def split_document(text: str, language: str = "en") -> list[Piece]:
    """A whole document into pieces whose concatenation is the document."""
    pieces: list[Piece] = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        newline = line[len(body):]
        prefix = _LINE_PREFIX.match(body).group(1)
        if prefix:
            pieces.append(Piece(prefix, False))
        content = body[len(prefix):]
        if content.strip():
            pieces.extend(split_sentences(content, language))
        elif content:
            pieces.append(Piece(content, False))
        if newline:
            pieces.append(Piece(newline, False))
    return pieces


def join(pieces: list[str]) -> str:
    return "".join(pieces)
