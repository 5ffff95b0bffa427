"""The marks the templates and the translation stage agree on.

Templates wrap text that must come out of translation as it went in between KEEP_OPEN and
KEEP_CLOSE (`render.keep`); the stage swaps each protected item for a numbered placeholder.
Both live here, in the light translation package, so a worker that only translates (a Dask
worker, say) never imports the renderer and its Jinja, markdown-it and nh3.
"""

from __future__ import annotations

import re

KEEP_OPEN, KEEP_CLOSE = "\ue000", "\ue001"  # private-use characters: never in user text
PLACEHOLDER = "⟦{}⟧"
PLACEHOLDER_PATTERN = re.compile(r"⟦\s*(\d+)\s*⟧")
# A whole placeholder, or half of one ("⟧", "⟦3") as a model may emit: readers must never see one.
PLACEHOLDER_OR_PART = re.compile(r"⟦\s*(\d+)\s*⟧|⟦\s*\d*|⟧")


def keep(value: object) -> str:
    """Mark `value` as text the translation stage must leave as it is."""
    return f"{KEEP_OPEN}{value}{KEEP_CLOSE}"


def strip_keep(text: str) -> str:
    """Remove `keep` marks, leaving their content.

    Every mark goes, paired or not: a nested `keep` or a mark inside record text would
    otherwise reach readers as an invisible private-use character.
    """
    return text.replace(KEEP_OPEN, "").replace(KEEP_CLOSE, "")


# Markdown's block marks at the start of a line: a heading, a block quote, a setext underline or
# a thematic break; and list items ('- ', '* ', '+ ', '3. ', '3) ').
_BLOCK_MARK = re.compile(r"^( {0,3})(#{1,6}(?=[ \t]|$)|>|(?:=+|-+)[ \t]*$)", re.M)
_LIST_MARK = re.compile(r"^( {0,3})(?:([-*+])|(\d{1,9})([.)]))(?=[ \t]|$)", re.M)


def escape_block_marks(text: str, *, lists: bool = False) -> str:
    """`text` with each line's Markdown block mark escaped (a backslash, which Markdown shows
    as the character itself), list items too when `lists`: text that must stay text."""
    text = _BLOCK_MARK.sub(r"\1\\\2", text)
    if not lists:
        return text
    return _LIST_MARK.sub(lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"),
                          text)
