"""Quality checks a reviewer can trust: one small function per check, each with a name and an
explanation, in one registry (`CHECKS`).

They run on every sentence the model translated and again on every edit (CLI, review page,
XLIFF import), on machine and human text alike: a flag says what is wrong with the text as it
stands now. Their meaning follows Weblate's checks (https://docs.weblate.org/en/latest/user/checks.html):
"same" (unchanged translation), "end_stop"/"end_question"/... (mismatched ending punctuation),
"duplicate" (consecutive doubled words), "double_space", "max-length", "glossary"
(does not follow the glossary), with placeholders for the items pressflow protects.

A check gets a `Sentence` and returns None when the text passes, or the items that fail it
(possibly none to name). A flag is stored as {"kind": name, "items": [...]} (plus "segment",
the sentence's index, when it belongs to one sentence).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..core import text_rules
from .marks import PLACEHOLDER_PATTERN


@dataclass(frozen=True)
class Sentence:
    """One source sentence and its translation as they stand, with what protection knows."""

    source: str  # as written in the source-language draft
    target: str  # as the draft has it now (protected items written out)
    source_lang: str
    target_lang: str
    values: tuple[str, ...] = ()  # protected items (in their target form) the translation must hold
    misplaced: tuple[str, ...] = ()  # items a model dropped, put back at the sentence's end
    forced: Mapping[str, str] = field(default_factory=dict)  # glossary: source term -> required wording
    key: str = ""  # the source with placeholders (⟦n⟧): what is left to translate


@dataclass(frozen=True)
class Check:
    name: str
    label: str  # a few words, for a badge or a filter
    explanation: str  # what it means and what to do, for the page and `review show`
    run: Callable[[Sentence], list[str] | None]


CHECKS: dict[str, Check] = {}


def check(name: str, label: str, explanation: str):
    """Register a check function under `name`."""
    def register(function: Callable[[Sentence], list[str] | None]) -> Callable[[Sentence], list[str] | None]:
        CHECKS[name] = Check(name, label, explanation, function)
        return function
    return register


# --- protected items and glossary -------------------------------------------------------------


@check("protected_missing", "Protected item missing",
       "A name, number, link or other item that must come through translation unchanged is missing "
       "from the translation, or the model dropped it and it was put back at the end of the sentence. "
       "Put it where it belongs.")
def protected_missing(s: Sentence) -> list[str] | None:
    missing = list(s.misplaced) + [v for v in s.values if v not in s.target and v not in s.misplaced]
    return missing or None


@check("glossary_term_missing", "Glossary term not followed",
       "The glossary says how this term is written in this language, and the translation writes it "
       "otherwise (or leaves it out). Use the glossary's wording.")
def glossary_term_missing(s: Sentence) -> list[str] | None:
    """The glossary (data/glossary.yaml, or PRESSFLOW_GLOSSARY) holds terms kept as written and,
    per language, forced translations, which the stage writes in place of the term: this flags a
    text (a model's or an edit) that does not use the forced wording where the source has the term."""
    wrong = [official for term, official in s.forced.items()
             if official in s.misplaced or (_has_term(s.source, term) and official not in s.target)]
    return wrong or None


def _has_term(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text) is not None


@check("identical_to_source", "Same as the source",
       "The translation is the source sentence unchanged: it was probably left untranslated. "
       "Sentences made only of names, numbers and links are not flagged.")
def identical_to_source(s: Sentence) -> list[str] | None:
    leftover = PLACEHOLDER_PATTERN.sub("", s.key) if s.key else s.source
    if s.source_lang == s.target_lang or not re.search(r"[^\W\d_]{2,}", leftover):
        return None
    return [] if s.target.strip() == s.source.strip() else None


# --- numbers, links, addresses ---------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:[.,\u00a0\u202f ]\d{3})*(?:[.,]\d+)?")
_URL = re.compile(r"\bhttps?://[^\s<>\"“”]+[^\s<>\"“”.,;:!?)\]。，、）]|\bwww\.[^\s<>\"“”]+[^\s<>\"“”.,;:!?)\]。，、）]")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")


def _ascii_digits(text: str) -> str:
    # Arabic-Indic, Devanagari, full-width... digits are the same numbers.
    return "".join(str(unicodedata.digit(c)) if c.isdigit() and not c.isascii() else c for c in text)


def _numbers(text: str) -> Counter:
    text = _EMAIL.sub(" ", _URL.sub(" ", _ascii_digits(text)))  # digits inside links are the links' business
    return Counter(re.sub(r"\D", "", n) for n in _NUMBER.findall(text))


def _differ(source: Counter, target: Counter) -> list[str] | None:
    if source == target:
        return None
    return sorted((source - target) + (target - source))


@check("numbers_differ", "Numbers differ",
       "The translation does not have the same numbers as the source (dates, amounts, counts). "
       "Digits in another script and other thousands separators count as the same number.")
def numbers_differ(s: Sentence) -> list[str] | None:
    return _differ(_numbers(s.source), _numbers(s.target))


@check("urls_differ", "Links differ",
       "A web address in the source is missing from the translation, or the translation has one the "
       "source does not. Links must stay exactly as they are.")
def urls_differ(s: Sentence) -> list[str] | None:
    return _differ(Counter(_URL.findall(s.source)), Counter(_URL.findall(s.target)))


@check("emails_differ", "E-mail addresses differ",
       "An e-mail address in the source is missing from the translation, or differs from it.")
def emails_differ(s: Sentence) -> list[str] | None:
    return _differ(Counter(_EMAIL.findall(s.source)), Counter(_EMAIL.findall(s.target)))


# --- punctuation and spacing -----------------------------------------------------------------

# Each kind of sentence end, in the forms languages write it: a Chinese 。 ends a sentence as a
# "." does, an Arabic ؟ asks as a "?" does, a Greek ";" is its question mark.
_ENDINGS = {
    "full stop": ".。｡．।۔։።",
    "question mark": "?？؟\u037e՞፧",  # \u037e: the Greek question mark
    "exclamation mark": "!！՜",
    "colon": ":：",
    "ellipsis": "…",
    "comma": ",，、،",
    "semicolon": ";；؛",
}
_CLOSERS = "\"'”’»」』）)]】›"
# Languages whose sentences may end without any mark (Thai, Lao, Khmer separate them with space).
_NO_END_MARK = {"th", "lo", "km"}


def ending(text: str, lang: str) -> str | None:
    """The kind of punctuation `text` ends with (closing quotes and brackets skipped), or None."""
    text = text.rstrip().rstrip(_CLOSERS).rstrip()
    if text.endswith(("...", "…")):
        return "ellipsis"
    if not text:
        return None
    last = text[-1]
    if last == ";":
        return "question mark" if lang.split("-")[0] == "el" else "semicolon"
    return next((kind for kind, marks in _ENDINGS.items() if last in marks), None)


@check("end_punctuation", "Ending punctuation differs",
       "The source and the translation do not end with the same kind of punctuation (full stop, "
       "question mark, exclamation mark, colon, ellipsis), counting each language's own forms as "
       "the same: 。 is a full stop, ؟ a question mark, ، a comma.")
def end_punctuation(s: Sentence) -> list[str] | None:
    """Each language's own forms count as the same kind (Greek ; is a question mark); Thai, Lao
    and Khmer may end a sentence without a mark."""
    source, target = ending(s.source, s.source_lang), ending(s.target, s.target_lang)
    if source == target or (s.target_lang.split("-")[0] in _NO_END_MARK and target is None):
        return None
    return [f"{source or 'none'} in the source, {target or 'none'} in the translation"]


_PAIRS = {"(": ")", "[": "]", "{": "}", "（": "）", "【": "】", "「": "」", "『": "』", "«": "»", "“": "”", "‘": "’",
          "《": "》", "〈": "〉"}
_CLOSING = {close: open_ for open_, close in _PAIRS.items()}
_STRAIGHT = ('"',)


def unbalanced(text: str) -> list[str]:
    """The brackets and quotes of `text` that are not closed or not opened."""
    stack, wrong = [], []
    for char in text:
        if char in _PAIRS:
            stack.append(char)
        elif char in _CLOSING:
            if stack and stack[-1] == _CLOSING[char]:
                stack.pop()
            elif char == "’":
                continue  # an apostrophe ("alliance’s") is no closing quote
            else:
                wrong.append(char)
    wrong += stack
    wrong += [q for q in _STRAIGHT if text.count(q) % 2]
    return wrong


@check("unbalanced_brackets", "Unbalanced brackets or quotes",
       "A bracket or quotation mark in the translation is opened and never closed, or closed and "
       "never opened, while the source's are balanced.")
def unbalanced_brackets(s: Sentence) -> list[str] | None:
    if unbalanced(s.source):
        return None  # the source itself is unbalanced (a quote running over sentences)
    return unbalanced(s.target) or None


_WORD_PAIR = re.compile(r"(?<!\w)([^\W\d_]{2,})\s+\1(?!\w)", re.I)


@check("doubled_word", "Doubled word",
       "The same word appears twice in a row (\"the the\") more often than in the source: usually a slip.")
def doubled_word(s: Sentence) -> list[str] | None:
    # Words differ between languages, so a doubling the source has ("very very") may stand in
    # the translation under another word: only doublings beyond the source's count are flagged.
    doubled = [m.group(1) for m in _WORD_PAIR.finditer(s.target)]
    return doubled if len(doubled) > len(_WORD_PAIR.findall(s.source)) else None


@check("double_space", "Double space",
       "The translation has two or more spaces in a row where the source has none.")
def double_space(s: Sentence) -> list[str] | None:
    return [] if "  " in s.target and "  " not in s.source else None


# --- invisible characters ----------------------------------------------------------------------


@check("invisible_characters", "Invisible or reordering characters",
       "The text holds characters a reader cannot see: a bidi override, embedding or isolate, which "
       "reorders how the text reads without changing what it says (\"Trojan Source\"), or a zero-width "
       "or other invisible character where no script needs one. Delete them: pages and feeds set each "
       "language's direction themselves. Such a draft cannot be approved. The zero-width joiner inside "
       "an emoji or a Persian, Arabic or Indic word is fine.")
def invisible_characters(s: Sentence) -> list[str] | None:
    return hidden_characters(s.target) or None


def hidden_characters(text: str) -> list[str]:
    """The characters of `text` the text rule refuses (`text_rules`: the records' rule), each
    named once with how often it occurs: ["U+202E RIGHT-TO-LEFT OVERRIDE x3"]."""
    found = Counter(text_rules.describe(text[index]) for index, _problem in text_rules.problems(text))
    return [name if count == 1 else f"{name} x{count}" for name, count in found.items()]


def invisible_in_draft(text: str, flags: list[dict]) -> list[dict]:
    """The flag for a whole draft's text when no sentence's flag already names its invisible
    characters (they sit between sentences, or the draft's sentences were not checked)."""
    if any(flag.get("kind") == "invisible_characters" for flag in flags):
        return []
    items = hidden_characters(text)
    return [{"kind": "invisible_characters", "items": items}] if items else []


# --- length ------------------------------------------------------------------------------------

# Bounds on len(translation) / len(source), by (source, target) language, then by target
# language alone ("*" stands for any source). Chinese and Japanese write an English sentence in
# about a third of its characters; most alphabetic languages within 0.8-1.4 of it.
LENGTH_RATIO_BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("*", "zh"): (0.12, 1.0), ("*", "ja"): (0.15, 1.2), ("*", "ko"): (0.15, 1.2), ("*", "yue"): (0.12, 1.0),
    ("zh", "*"): (1.0, 8.0), ("ja", "*"): (0.8, 6.0), ("ko", "*"): (0.8, 6.0),
}
DEFAULT_LENGTH_RATIO = (0.4, 2.5)
# Shorter sentences vary too much in length to judge ("OK" -> "D'accord").
MIN_LENGTH_CHECKED = 30


def length_bounds(source_lang: str, target_lang: str) -> tuple[float, float]:
    source, target = source_lang.split("-")[0], target_lang.split("-")[0]
    for key in ((source, target), ("*", target), (source, "*")):
        if key in LENGTH_RATIO_BOUNDS:
            return LENGTH_RATIO_BOUNDS[key]
    return DEFAULT_LENGTH_RATIO


@check("length_ratio", "Much longer or shorter than the source",
       "The translation is far longer or far shorter than a translation of this sentence usually is "
       "in this language (bounds per language pair): a part may be missing, repeated or invented.")
def length_ratio(s: Sentence) -> list[str] | None:
    """len(translation) / len(source) must lie within LENGTH_RATIO_BOUNDS for the pair (e.g.
    0.12-1.0 into Chinese), else DEFAULT_LENGTH_RATIO (0.4-2.5); sentences under
    MIN_LENGTH_CHECKED (30) characters are not judged."""
    if len(s.source.strip()) < MIN_LENGTH_CHECKED:
        return None
    low, high = length_bounds(s.source_lang, s.target_lang)
    ratio = len(s.target.strip()) / len(s.source.strip())
    return None if low <= ratio <= high else [f"{ratio:.2f} times the source (expected {low}-{high})"]


# --- a whole draft -----------------------------------------------------------------------------

OVER_LIMIT = Check("over_limit", "Over the platform's length limit",
                   "The post is longer than its platform accepts, counted as the platform counts "
                   "(links, wide characters). Shorten it before it is published.", lambda s: None)
CHECKS[OVER_LIMIT.name] = OVER_LIMIT


def check_sentence(sentence: Sentence) -> list[dict]:
    """Every sentence check's flag for this sentence, in registry order."""
    flags = []
    for name, registered in CHECKS.items():
        items = registered.run(sentence)
        if items is not None:
            flags.append({"kind": name, "items": items} if items else {"kind": name})
    return flags


def over_limit(channel: str, text: str) -> list[dict]:
    """The flag of a post over its platform's limit, as the platform counts (none for a release)."""
    from ..platforms import PLATFORMS  # only drafts need it, not the translation workers

    platform = PLATFORMS.get(channel)
    if platform is None or platform.fits(text):
        return []
    return [{"kind": OVER_LIMIT.name, "length": platform.count(text), "limit": platform.limit}]


def describe(flag: dict) -> str:
    """One line for a flag: its label and what it found."""
    registered = CHECKS.get(flag.get("kind", ""))
    label = registered.label if registered else str(flag.get("kind", "check")).replace("_", " ").capitalize()
    if flag.get("kind") == OVER_LIMIT.name:  # the label alone where no draft's numbers are given (a filter's option)
        return f"{label}: {flag['length']} of {flag['limit']}" if "length" in flag and "limit" in flag else label
    detail = flag.get("items") or flag.get("terms") or flag.get("term")
    if detail:
        return f"{label}: {', '.join(map(str, detail)) if isinstance(detail, list) else detail}"
    return label


def explanation(kind: str) -> str:
    registered = CHECKS.get(kind)
    return registered.explanation if registered else ""
