"""Where each translated segment sits in a draft's current text, across every revision.

The translation stage records each sentence it translated (`meta["segments"]`), and the first
revision is exactly those sentences joined by untranslated glue (Markdown marks, spaces, line
breaks). Re-splitting later text into sentences is unreliable (a translation may hold several
sentences, and models sometimes emit stray full stops), so instead the glue of the first revision
is followed through each later revision with a character diff: wherever an edit left the glue
in place, the segments between it are known exactly. When an edit destroyed the glue, there is
no layout and the page falls back to whole-text review.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from .. import store


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


def _spans(layout: Layout) -> list[tuple[int, int]]:
    spans, position = [], 0
    for glue, segment in zip(layout.glue, layout.segments):
        spans.append((position, position + len(glue)))
        position += len(glue) + len(segment)
    spans.append((position, position + len(layout.glue[-1])))
    return spans


def _map_span(opcodes, start: int, end: int, old_len: int, new_len: int) -> tuple[int, int] | None:
    """Where an unchanged stretch [start, end) of the old text went in the new one."""
    if start == end:  # empty glue: only the ends of the text or of an unchanged stretch are sure
        if start == 0:
            return 0, 0
        if start == old_len:
            return new_len, new_len
    for tag, a0, a1, b0, b1 in opcodes:
        if tag == "equal" and a0 <= start and end <= a1:
            return b0 + start - a0, b0 + end - a0
    return None


def follow(layout: Layout, new_text: str) -> Layout | None:
    """The layout of `new_text`, an edit of `layout.text()`, or None if its glue was changed."""
    old_text = layout.text()
    if new_text == old_text:
        return layout
    opcodes = SequenceMatcher(None, old_text, new_text, autojunk=False).get_opcodes()
    mapped = [_map_span(opcodes, start, end, len(old_text), len(new_text)) for start, end in _spans(layout)]
    if any(m is None for m in mapped) or mapped[0][0] != 0 or mapped[-1][1] != len(new_text):
        return None
    segments = []
    for (_, end), (next_start, _) in zip(mapped, mapped[1:]):
        if next_start < end:
            return None
        segments.append(new_text[end:next_start])
    return Layout(tuple(new_text[s:e] for s, e in mapped), tuple(segments))


def current_layout(draft: store.Draft) -> Layout | None:
    """The layout of the draft's current text, followed through all its revisions."""
    revisions = list(draft.revisions)
    first_text = revisions[0].text if revisions else draft.text
    layout = first_layout(first_text, draft.meta.get("segments") or [])
    for revision in revisions[1:]:
        if layout is None:
            return None
        layout = follow(layout, revision.text)
    if layout is not None and layout.text() != draft.text:
        layout = follow(layout, draft.text)
    return layout


def with_placeholders(segment: dict, text: str) -> str:
    """A reviewer's sentence with the segment's protected values turned back into placeholders,
    so the memory entry fits every release that uses the sentence (as `review.learned_segments`)."""
    for index, value in enumerate(segment.get("values") or []):
        text = text.replace(value, f"⟦{index}⟧", 1)
    return text


def changed_segments(segments: list[dict], before: Layout | None, after: Layout | None) -> dict[str, str]:
    """{protected source segment: reviewer's translation} for the segments an edit changed."""
    if before is None or after is None or len(before.segments) != len(after.segments):
        return {}
    learned = {}
    for segment, old, new in zip(segments, before.segments, after.segments):
        if new.strip() and new.strip() != old.strip():
            learned[segment["key"]] = with_placeholders(segment, new.strip())
    return learned
