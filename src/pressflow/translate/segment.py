"""Documents to translatable sentences, and back.

The press release is Markdown translated line by line: a line's Markdown syntax (heading marks,
quote marks, list bullets) is kept verbatim and only its text is split into sentences with
pysbd, a rule-based splitter that needs no download and knows titles and initials
("Prof. BAI Chunli", "U.N.", "30 Aug.").
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator

import pysbd

from .marks import KEEP_CLOSE, KEEP_OPEN, escape_block_marks

# Runs a sentence boundary must not cut: `keep` spans, URLs, e-mail addresses.
_UNSPLITTABLE = re.compile(rf"{KEEP_OPEN}.*?{KEEP_CLOSE}|\b(?:https?://|www\.)\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.S)
# A line's Markdown marks, kept verbatim: headings, quote marks, list bullets, and the escapes
# `render.prose` puts before record text that would otherwise read as structure ("\# 1 in Asia").
_LINE_PREFIX = re.compile(r"^(\s*(?:#{1,6}\s+|>\s?|[-*+]\s+|\d{1,3}[.)]\s+|\\(?:#{1,6}|>|[=-]+)\s*)*)")


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
    pieces: list[Piece] = []
    position = 0
    for start, end in line_spans(text, language):
        if start > position:
            pieces.append(Piece(text[position:start], False))
        pieces.append(Piece(text[start:end], True))
        position = end
    if position < len(text):
        rest = text[position:]
        pieces.append(Piece(rest, bool(rest.strip())))
    return pieces


# pysbd costs ~0.6-2.5 ms a line, and a release's lines come back once per target language and
# in every re-run, the boilerplate in every release: spans are kept here (bounded: 65,536 lines
# hold a 1,000-release run, ~30 MB at most), and the stage keeps them in the store across runs
# (`remember_spans`), so a re-run splits only the lines it has never seen.
_SPANS_KEPT = 65536
_spans: dict[tuple[str, str], tuple[tuple[int, int], ...]] = {}
_spans_lock = threading.Lock()


def line_spans(line: str, language: str = "en") -> tuple[tuple[int, int], ...]:
    """(start, end) of each sentence of one line of prose."""
    key = (line, language)
    spans = _spans.get(key)
    if spans is None:
        spans = tuple(_sentence_spans(line, language))
        _keep(key, spans)
    return spans


def _keep(key: tuple[str, str], spans: tuple[tuple[int, int], ...]) -> None:
    with _spans_lock:  # translation units on threads split lines too
        if len(_spans) >= _SPANS_KEPT:
            del _spans[next(iter(_spans))]  # the oldest
        _spans[key] = spans


def unsplit_lines(documents: list[str], language: str = "en") -> list[str]:
    """The distinct prose lines of `documents` whose spans are not known in this process."""
    lines = dict.fromkeys(content for document in documents for content in _prose_lines(document))
    return [line for line in lines if (line, language) not in _spans]


def remember_spans(spans: dict[str, tuple[tuple[int, int], ...]], language: str = "en") -> None:
    """Take spans found earlier (e.g. kept in the store by a previous run)."""
    for line, found in spans.items():
        _keep((line, language), tuple(tuple(span) for span in found))


def forget_spans() -> None:
    """Start afresh, as a new process would (benchmarks)."""
    _spans.clear()


def _prose_lines(document: str) -> Iterator[str]:
    for _, content, _ in _lines(document):
        if content.strip():
            yield content


def _lines(text: str) -> Iterator[tuple[str, str, str]]:
    """Each line as (Markdown prefix kept verbatim, its text, its line break)."""
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        prefix = _LINE_PREFIX.match(body).group(1)
        yield prefix, body[len(prefix):], line[len(body):]


def split_document(text: str, language: str = "en") -> list[Piece]:
    """A whole document into pieces whose concatenation is the document."""
    return list(iter_document(text, language))


def iter_document(text: str, language: str = "en") -> Iterator[Piece]:
    """`split_document`, a line at a time (a caller may stop early)."""
    for prefix, content, newline in _lines(text):
        if prefix:
            yield Piece(prefix, False)
        if content.strip():
            yield from split_sentences(content, language)
        elif content:
            yield Piece(content, False)
        if newline:
            yield Piece(newline, False)


# What a model's sentence may not carry into a document: line breaks (a sentence never spans
# lines, and a break would start a new block), and at its start a Markdown block mark (a sentence
# may begin a line, where '# ' would make it a heading, '> ' a quote, '- ' or '3. ' a list).
_BREAKS = re.compile(r"[ \t]*[\r\n\v\f\x85\u2028\u2029]+[ \t]*")


def as_sentence(text: str) -> str:
    """A model's output as one sentence of text: its line breaks made spaces, a block mark at
    its start escaped (Markdown shows it as the character)."""
    return escape_block_marks(_BREAKS.sub(" ", text).strip(), lists=True)


def join(pieces: list[str]) -> str:
    return "".join(pieces)
