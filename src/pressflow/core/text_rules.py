"""What text and names may contain: one rule, checked where records and names enter.

Text is published into XML (Atom, RSS, sitemaps), HTML, HTTP-adjacent places (image URLs in
`src`, `og:image`) and plain social posts; names end up in the audit trail (`review show`, the
review page, TMX `creationid`). So, everywhere:

- **Refused in all text**: C0/C1 controls (a tab and, in multi-line fields, line breaks are
  fine), U+2028/U+2029, surrogates, unassigned code points, private-use characters (the
  templates use two of them as do-not-translate marks), and *noncharacters* (U+FFFE, U+FFFF,
  U+FDD0..U+FDEF, the last two of every plane): XML 1.0 cannot hold most of them, and a feed
  writer fails on them long after the record was accepted.
- **Refused in all text: bidi embeddings, overrides and isolates** (U+202A..U+202E,
  U+2066..U+2069). They reorder what a reader sees without changing what the text says
  ("Trojan Source"); pages and feeds already set the text direction per language, so a record
  never needs them. The bidi *marks* (LRM U+200E, RLM U+200F, ALM U+061C) stay allowed: they
  only settle neutral characters such as punctuation next to Arabic or Hebrew words, cannot
  reorder letters, and right-to-left authors type them.
- **Zero-width and invisible characters**: ZWSP, word joiner, BOM, invisible operators,
  deprecated format characters, interlinear annotations and Hangul fillers are refused: they
  are never legitimate in a press release. The zero-width joiner and non-joiner (U+200D,
  U+200C) are legitimate inside Arabic, Persian, Indic and emoji text, so they are allowed
  only *between* two non-ASCII letters, marks or symbols (a joining context) and refused
  next to ASCII ("ali\u200dce") or at either end. Emoji tag characters (U+E0020..U+E007F)
  are allowed only in a flag sequence after U+1F3F4.
- **Line fields** (titles, names, tags, URLs) also refuse line breaks.

Names (reviewer accounts, `--reviewer`, TMX `creationid`, the shared-token sign-in) follow one
stricter rule, `check_name`: NFKC-normalised, no controls or invisible characters at all, no
mixed scripts (Cyrillic "а" among Latin letters), not a look-alike of an existing name (the
Unicode confusables data, via confusable_homoglyphs), and not a name the system writes itself
(`SYSTEM_NAMES`).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Iterator

from .errors import PressflowError

# Names pressflow writes into the audit trail itself: nobody may sign in or import as them.
SYSTEM_NAMES = frozenset({"auto-approve", "pressflow", "tmx import"})
NAME_LIMIT = 100  # db.NAME_LIMIT: the width of the store's name columns

_BIDI_CONTROLS = {
    0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING", 0x202C: "POP DIRECTIONAL FORMATTING",
    0x202D: "LEFT-TO-RIGHT OVERRIDE", 0x202E: "RIGHT-TO-LEFT OVERRIDE", 0x2066: "LEFT-TO-RIGHT ISOLATE",
    0x2067: "RIGHT-TO-LEFT ISOLATE", 0x2068: "FIRST STRONG ISOLATE", 0x2069: "POP DIRECTIONAL ISOLATE",
}
_BIDI_MARKS = {0x200E, 0x200F, 0x061C}
_JOINERS = {0x200C, 0x200D}
_TAG_BASE = 0x1F3F4  # WAVING BLACK FLAG: England, Scotland, Wales are tag sequences after it
# Invisible characters that are not Cf (so the category test alone misses them).
_INVISIBLE_OTHER = {0x115F, 0x1160, 0x3164, 0xFFA0, 0x180E}


class TextRuleError(PressflowError, ValueError):
    """A text or a name holds something it may not; the message says what and where."""


def is_noncharacter(code: int) -> bool:
    return 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE


def describe(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`: a character named so a reader can find it."""
    code = ord(char)
    name = _BIDI_CONTROLS.get(code) or unicodedata.name(char, "")
    if not name:
        kinds = {"Cc": "a control character", "Cs": "a surrogate", "Co": "a private-use character",
                 "Cn": "an unassigned code point"}
        name = "a noncharacter" if is_noncharacter(code) else kinds.get(unicodedata.category(char), "a character")
    return f"U+{code:04X} ({name})" if name[0].islower() else f"U+{code:04X} {name}"


def visible(text: str) -> str:
    """`text` with every control, invisible or unassigned character shown as '?': safe to quote
    inside a one-line message (a record's title in an error must not reorder the line)."""
    return "".join("?" if (unicodedata.category(c)[0] == "C" and c not in "\t\r\n") or unicodedata.category(c) in ("Zl", "Zp")
                   or is_noncharacter(ord(c)) else c for c in text)


def _joining_context(char: str | None) -> bool:
    """Whether a zero-width (non-)joiner may stand next to `char`: a non-ASCII letter, mark or symbol."""
    if char is None or ord(char) < 0x80:
        return False
    return unicodedata.category(char)[0] in "LMS" or ord(char) == 0xFE0F  # VS16 ends an emoji


def problem(text: str, *, one_line: bool = False) -> str | None:
    """What is wrong with `text` (the first problem, worded for its author), or None."""
    return next((found for _index, found in problems(text, one_line=one_line)), None)


def problems(text: str, *, one_line: bool = False) -> Iterator[tuple[int, str]]:
    """Every character of `text` the rule refuses: its index and what is wrong, in text order."""
    for index, char in enumerate(text):
        if found := _problem_at(text, index, char, one_line):
            yield index, found


def _problem_at(text: str, index: int, char: str, one_line: bool) -> str | None:
    """What is wrong with `text`'s character at `index` (`char`), or None."""
    code, category = ord(char), unicodedata.category(char)
    where = f" at character {index + 1}"
    if char in "\r\n" and one_line:
        return f"contains control characters (a line break{where}); this field is one line"
    if char in "\t\r\n":
        return None
    if category == "Cc" or category in ("Zl", "Zp"):
        return f"contains control characters ({describe(char)}{where}); delete it"
    if is_noncharacter(code):
        return (f"contains {describe(char)}{where}, which XML feeds cannot carry; "
                "delete it (it is often left by a copy from another program)")
    if category == "Cs":
        return f"contains a lone surrogate{where}; save the file as proper UTF-8"
    if category == "Co":
        return f"contains a private-use character ({describe(char)}{where}); delete it"
    if category == "Cn":
        return f"contains an unassigned code point ({describe(char)}{where}); delete it"
    if code in _BIDI_CONTROLS:
        return (f"contains an invisible bidi control ({describe(char)}{where}) that reorders how the text "
                "reads; delete it (pages and feeds set each language's direction themselves)")
    if code in _JOINERS:
        before = text[index - 1] if index else None
        after = text[index + 1] if index + 1 < len(text) else None
        if _joining_context(before) and _joining_context(after):
            return None
        return (f"contains an invisible {describe(char)}{where} outside a joining script or emoji; "
                "delete it")
    if 0xE0020 <= code <= 0xE007F:
        start = index
        while start and 0xE0020 <= ord(text[start - 1]) <= 0xE007F:
            start -= 1
        if start and ord(text[start - 1]) == _TAG_BASE:
            return None
        return f"contains an invisible tag character ({describe(char)}{where}); delete it"
    if (category == "Cf" and code not in _BIDI_MARKS and code != 0x00AD) or code in _INVISIBLE_OTHER:
        return f"contains an invisible character ({describe(char)}{where}); delete it"
    return None


def check_text(text: str, *, one_line: bool = False) -> str:
    """`text` unchanged if `problem` finds nothing, else a TextRuleError (also a ValueError,
    so a pydantic validator reports it under the field's name)."""
    if found := problem(text, one_line=one_line):
        raise TextRuleError(found)
    return text


# --- names ---------------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """What makes `name` unusable as a name in the audit trail, whoever wrote it (the system's
    own names included): empty, too long, or holding anything invisible or a line break."""
    if not name.strip():
        return "is empty"
    if len(name) > NAME_LIMIT:
        return f"is {len(name)} characters long; at most {NAME_LIMIT}"
    for index, char in enumerate(name):
        category = unicodedata.category(char)
        if category[0] in "CZ" and char != " ":
            what = "a line break" if char in "\r\n\u2028\u2029" else describe(char)
            return f"contains {what} at character {index + 1}; a name is one line of visible characters"
        if is_noncharacter(ord(char)) or ord(char) in _INVISIBLE_OTHER:
            return f"contains {describe(char)} at character {index + 1}"
    if name != name.strip() or "  " in name:
        return "has spaces at its ends or two in a row"
    return None


def scripts(name: str) -> set[str]:
    """The scripts of `name`'s letters (Common and Inherited, e.g. digits, '.', accents, left out)."""
    from confusable_homoglyphs import categories

    return {alias for alias in categories.unique_aliases(name) if alias not in ("COMMON", "INHERITED")}


# Scripts that are written together: Japanese (kanji and kana), Korean (hanja and hangul),
# Chinese with bopomofo (as in UTS #39's "highly restrictive" level). Anything else mixed
# (Latin with Cyrillic or Greek, ...) is how look-alike names are made.
_WRITTEN_TOGETHER = ({"HAN", "HIRAGANA", "KATAKANA"}, {"HAN", "HANGUL"}, {"HAN", "BOPOMOFO"})


def mixed_script(name: str) -> bool:
    found = scripts(name)
    return len(found) > 1 and not any(found <= allowed for allowed in _WRITTEN_TOGETHER)


@functools.cache
def _representatives() -> dict[str, str]:
    """Each confusable character -> one representative of everything it can be confused with
    (the Unicode confusables data as confusable_homoglyphs ships it, joined transitively)."""
    from confusable_homoglyphs.confusables import confusables_data

    parent: dict[str, str] = {}

    def find(char: str) -> str:
        while parent.get(char, char) != char:
            char = parent[char]
        return char

    for char, homoglyphs in confusables_data.items():
        for homoglyph in homoglyphs:
            glyph = homoglyph["c"].strip("\u200e\u200f")
            if len(char) == 1 and len(glyph) == 1:
                a, b = find(char), find(glyph)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {char: find(char) for char in parent}


def skeleton(name: str) -> str:
    """What `name` looks like (UTS #39's skeleton, approximately): NFKC, then each character
    replaced by its confusables' representative. Equal skeletons: look-alikes ("аlice", "alice")."""
    table = _representatives()
    text = unicodedata.normalize("NFKC", name)
    return unicodedata.normalize("NFKC", "".join(table.get(c, c) for c in text))


def looks_alike(a: str, b: str) -> bool:
    """Same skeleton as written ("aIice" and "alice") or once case is folded ("ALICE" and "alice")."""
    return skeleton(a) == skeleton(b) or skeleton(a.casefold()) == skeleton(b.casefold())


def check_name(name: str, what: str = "name", *, taken: Iterable[str] = (), allow_system: bool = False) -> str:
    """The name as it will be stored (NFKC, trimmed), or a TextRuleError saying why not.

    `taken`: names already in use (accounts); `name` may be one of them exactly (the same
    person again), not a different name that looks the same. System names are refused unless
    `allow_system` (the system writing its own)."""
    normal = unicodedata.normalize("NFKC", name).strip()
    shown = repr(name[:40]) if name_problem(name) else f"'{name[:40]}'"
    shown += "..." if len(name) > 40 else ""
    if found := name_problem(normal):
        raise TextRuleError(f"the {what} {shown} {found}")
    if mixed_script(normal):
        raise TextRuleError(f"the {what} {shown} mixes {' and '.join(sorted(s.title() for s in scripts(normal)))} "
                            "letters, which is how look-alike names are made; write it in one script")
    if not allow_system and any(looks_alike(normal, system) for system in SYSTEM_NAMES):
        raise TextRuleError(f"the {what} {shown} is (or looks like) a name pressflow writes itself; choose another")
    for other in taken:
        if other != normal and looks_alike(other, normal):
            raise TextRuleError(f"the {what} {shown} looks like the existing name '{other}'; "
                                "use that one, or a name that cannot be mistaken for it")
    return normal
