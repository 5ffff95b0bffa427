"""Where each translated sentence sits in a draft's text, across every revision: one alignment.

The translation stage records each sentence it translated (`meta["segments"]`), and the first
revision is exactly those sentences joined by untranslated glue (Markdown marks, spaces, line
breaks). Every later text (a CLI edit, a web edit, an XLIFF import) is aligned by one rule,
`align`, line by line (a sentence never spans lines):

1. lines the edit left as they were keep their sentences;
2. each run of changed lines is followed by its glue with a diff: wherever the edit left the
   glue in place, the sentences between it are known exactly;
3. failing that (the reviewer removed the space between two Chinese sentences), the run is split
   with the target language's own sentence rules and taken when it has as many sentences as it
   had before;
4. else there is no layout: the page falls back to whole-text review and nothing is learned.

Lines are matched with rapidfuzz's bit-parallel LCS (C++); characters are compared (difflib)
only inside changed lines, within a fixed budget, and only changed lines are split again, so an
edit costs what it changed. The layout found is stored with the revision (`meta["layout"]`), so
showing a draft never aligns anything.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from rapidfuzz.distance import Indel

from .segment import iter_document

# Characters compared pairwise (len(a) * len(b), summed over changed blocks) before step 1
# stops comparing characters: ~0.5 s of difflib on the slowest shapes bench/edits.py tries
# (many small changed lines cost more per pair than a few big ones).
DIFF_BUDGET = 1_000_000


@dataclass(frozen=True)
class Layout:
    """`glue[0] + seg[0] + glue[1] + seg[1] + ... + seg[n-1] + glue[n]` is the text."""

    glue: tuple[str, ...]
    segments: tuple[str, ...]

    def text(self) -> str:
        return "".join(g + s for g, s in zip(self.glue, self.segments)) + self.glue[-1]

    def with_segments(self, segments: list[str]) -> "Layout":
        if len(segments) != len(self.segments):
            raise ValueError("segment count changed")
        return Layout(self.glue, tuple(segments))

    def spans(self) -> list[list[int]]:
        """[start, end] of each segment in `text()`: what the store keeps."""
        spans, position = [], 0
        for glue, segment in zip(self.glue, self.segments):
            position += len(glue)
            spans.append([position, position + len(segment)])
            position += len(segment)
        return spans

    @classmethod
    def from_spans(cls, text: str, spans: list[list[int]]) -> "Layout":
        glue, segments, position = [], [], 0
        for start, end in spans:
            glue.append(text[position:start])
            segments.append(text[start:end])
            position = end
        glue.append(text[position:])
        return cls(tuple(glue), tuple(segments))


def first_layout(text: str, segments: list[dict]) -> Layout | None:
    """The layout of the prepared text, by finding each segment's text in order."""
    if not segments:
        return None
    glue, found, position = [], [], 0
    for segment in segments:
        start = text.find(segment["text"], position)
        if start < 0:
            return None  # e.g. a post whose shorter variant was chosen: no segment-level view
        glue.append(text[position:start])
        found.append(segment["text"])
        position = start + len(segment["text"])
    glue.append(text[position:])
    return Layout(tuple(glue), tuple(found))


def align(layout: Layout | None, new_text: str, lang: str, count: int | None = None) -> Layout | None:
    """The layout of `new_text`, an edit of `layout.text()` in language `lang` (the one rule).

    Line by line: unchanged lines keep their sentences; each run of changed lines is followed by
    its glue, else split with `lang`'s sentence rules into as many sentences as it had. Only
    changed lines are ever compared or split, so an edit costs what it changed.
    """
    if layout is None:
        return resplit(new_text, lang, count) if count else None
    if new_text == layout.text():
        return layout
    old_text, budget = layout.text(), Budget(DIFF_BUDGET)
    old_lines, new_lines = old_text.splitlines(keepends=True), new_text.splitlines(keepends=True)
    old_at, new_at = _offsets(old_lines, 0), _offsets(new_lines, 0)
    spans = layout.spans()
    line_of = [bisect_right(old_at, start) - 1 for start, _ in spans]  # a segment never spans lines
    new_spans: list[list[int]] = []
    for equal, a0, a1, b0, b1 in _line_blocks(old_lines, new_lines):
        inside = [i for i, line in enumerate(line_of) if a0 <= line < a1]
        if not inside:
            continue
        base, into = old_at[a0], new_at[b0]
        if equal:
            new_spans += [[spans[i][0] - base + into, spans[i][1] - base + into] for i in inside]
            continue
        old_block = Layout.from_spans(old_text[base:old_at[a1]], [[spans[i][0] - base, spans[i][1] - base]
                                                                   for i in inside])
        new_block = new_text[into:new_at[b1]]
        found = follow(old_block, new_block, budget) or resplit(new_block, lang, len(inside))
        if found is None:
            return None
        new_spans += [[start + into, end + into] for start, end in found.spans()]
    if len(new_spans) != len(spans) or any(a[1] > b[0] for a, b in zip(new_spans, new_spans[1:])):
        return None
    return Layout.from_spans(new_text, new_spans)


class Budget:
    """Character pairs difflib may still compare during one alignment."""

    def __init__(self, pairs: int):
        self.left = pairs

    def take(self, pairs: int) -> bool:
        if pairs > self.left:
            return False
        self.left -= pairs
        return True


def resplit(text: str, lang: str, count: int) -> Layout | None:
    """`text` split with `lang`'s sentence rules, if that gives exactly `count` sentences."""
    if sum(1 for line in text.splitlines() if line.strip()) > count:
        return None  # every line holds a sentence at least: too many lines, too many sentences
    glue, segments, pending = [], [], ""
    for piece in iter_document(text, lang):
        if piece.translate:
            if len(segments) == count:
                return None  # one sentence too many: no need to split the rest
            glue.append(pending)
            segments.append(piece.text)
            pending = ""
        else:
            pending += piece.text
    if len(segments) != count:
        return None
    glue.append(pending)
    return Layout(tuple(glue), tuple(segments))


def _glue_spans(layout: Layout) -> list[tuple[int, int]]:
    spans, position = [], 0
    for glue, segment in zip(layout.glue, layout.segments):
        spans.append((position, position + len(glue)))
        position += len(glue) + len(segment)
    spans.append((position, position + len(layout.glue[-1])))
    return spans


def _common_prefix(a: str, b: str) -> int:
    """Length of the common prefix, by halving (slice comparisons run in C)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: str, b: str, limit: int) -> int:
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle:] == b[len(b) - middle:]:
            low = middle
        else:
            high = middle - 1
    return low


def equal_blocks(old: str, new: str, budget: Budget | None = None) -> list[tuple[int, int, int]]:
    """(old start, new start, length) of stretches an edit left unchanged, in order.

    Near linear: the common ends are trimmed, the middles are matched line by line (rapidfuzz,
    bit-parallel LCS), and only changed lines are compared character by character, while the
    budget lasts; a changed block past it counts as rewritten.
    """
    budget = budget or Budget(DIFF_BUDGET)
    head = _common_prefix(old, new)
    tail = _common_suffix(old, new, min(len(old), len(new)) - head)
    blocks = [(0, 0, head)] if head else []
    old_lines = old[head:len(old) - tail].splitlines(keepends=True)
    new_lines = new[head:len(new) - tail].splitlines(keepends=True)
    old_at, new_at = _offsets(old_lines, head), _offsets(new_lines, head)
    for equal, a0, a1, b0, b1 in _line_blocks(old_lines, new_lines):
        a_start, a_end, b_start, b_end = old_at[a0], old_at[a1], new_at[b0], new_at[b1]
        if equal:
            blocks.append((a_start, b_start, a_end - a_start))
        elif a_end > a_start and b_end > b_start and budget.take((a_end - a_start) * (b_end - b_start)):
            matcher = SequenceMatcher(None, old[a_start:a_end], new[b_start:b_end], autojunk=False)
            blocks += [(a_start + a, b_start + b, size) for a, b, size in matcher.get_matching_blocks() if size]
    if tail:
        blocks.append((len(old) - tail, len(new) - tail, tail))
    return _merged(blocks)


def _line_blocks(old_lines: list[str], new_lines: list[str]):
    """(equal?, a0, a1, b0, b1) runs of lines: unchanged runs, and the changed runs between them
    (an LCS diff reports a changed line as a deletion and an insertion: they are one run here)."""
    changed = None
    for tag, a0, a1, b0, b1 in Indel.opcodes(old_lines, new_lines):
        if tag == "equal":
            if changed:
                yield (False, *changed)
                changed = None
            yield True, a0, a1, b0, b1
        else:
            changed = (changed[0], a1, changed[2], b1) if changed else (a0, a1, b0, b1)
    if changed:
        yield (False, *changed)


def _offsets(lines: list[str], start: int) -> list[int]:
    offsets = [start]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    return offsets


def _merged(blocks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Adjacent equal stretches as one, so a glue span across their border still maps."""
    merged: list[tuple[int, int, int]] = []
    for a, b, size in blocks:
        if merged and merged[-1][0] + merged[-1][2] == a and merged[-1][1] + merged[-1][2] == b:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + size)
        else:
            merged.append((a, b, size))
    return merged


def _map_span(blocks, start: int, end: int, old_len: int, new_len: int) -> tuple[int, int] | None:
    """Where an unchanged stretch [start, end) of the old text went in the new one."""
    if start == end:  # empty glue: only the ends of the text or of an unchanged stretch are sure
        if start == 0:
            return 0, 0
        if start == old_len:
            return new_len, new_len
    for a, b, size in blocks:
        if a <= start and end <= a + size:
            return b + start - a, b + end - a
    return None


def follow(layout: Layout, new_text: str, budget: Budget | None = None) -> Layout | None:
    """The layout of `new_text`, an edit of `layout.text()`, or None if its glue was changed."""
    old_text = layout.text()
    if new_text == old_text:
        return layout
    blocks = equal_blocks(old_text, new_text, budget)
    mapped = [_map_span(blocks, start, end, len(old_text), len(new_text)) for start, end in _glue_spans(layout)]
    if any(m is None for m in mapped) or mapped[0][0] != 0 or mapped[-1][1] != len(new_text):
        return None
    segments = []
    for (_, end), (next_start, _) in zip(mapped, mapped[1:]):
        if next_start < end:
            return None
        segments.append(new_text[end:next_start])
    return Layout(tuple(new_text[s:e] for s, e in mapped), tuple(segments))


def stored(layout: Layout | None, revision: int) -> dict[str, Any]:
    """What `meta["layout"]` keeps for a revision (spans None: no sentence layout)."""
    return {"revision": revision, "spans": layout.spans() if layout is not None else None}


def current_layout(draft: Any) -> Layout | None:
    """The layout of a draft's current text: the one stored with its revision, else (drafts
    saved before layouts were stored) followed through its revisions once more."""
    kept = (draft.meta or {}).get("layout")
    if kept and kept.get("revision") == draft.revision:
        return Layout.from_spans(draft.text, kept["spans"]) if kept["spans"] is not None else None
    segments = draft.meta.get("segments") or []
    revisions = list(draft.revisions)
    first_text = revisions[0].text if revisions else draft.text
    layout = first_layout(first_text, segments)
    for revision in revisions[1:]:
        layout = align(layout, revision.text, draft.lang, len(segments))
    if layout is not None and layout.text() != draft.text:
        layout = align(layout, draft.text, draft.lang, len(segments))
    return layout


def with_placeholders(segment: dict, text: str) -> str:
    """A reviewer's sentence with the segment's protected values turned back into placeholders,
    so the memory entry fits every release that uses the sentence."""
    for index, value in enumerate(segment.get("values") or []):
        text = text.replace(value, f"⟦{index}⟧", 1)
    return text


def changed_segments(segments: list[dict], before: Layout | None, after: Layout | None) -> dict[str, str]:
    """{protected source segment: reviewer's translation} for the segments an edit changed."""
    if before is None or after is None or not len(before.segments) == len(after.segments) == len(segments):
        return {}
    learned = {}
    for segment, old, new in zip(segments, before.segments, after.segments):
        if new.strip() and new.strip() != old.strip():
            learned[segment["key"]] = with_placeholders(segment, new.strip())
    return learned
