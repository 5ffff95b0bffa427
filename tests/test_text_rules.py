"""text_rules: what text and names may contain, checked where records and names enter."""

from __future__ import annotations

import re

import pytest

from pressflow.core.text_rules import TextRuleError, check_name, check_text, looks_alike, problem, skeleton, visible


@pytest.mark.parametrize("text, words", [
    ("a\ufffeb", "U+FFFE"), ("a\uffff", "U+FFFF"), ("a\ufdd0", "U+FDD0"), ("a\U0001fffe", "U+1FFFE"),
    ("a\u202eb", "RIGHT-TO-LEFT OVERRIDE"), ("a\u2066b\u2069", "LEFT-TO-RIGHT ISOLATE"),
    ("a\u202ab", "LEFT-TO-RIGHT EMBEDDING"), ("ab\u200bcd", "ZERO WIDTH SPACE"), ("a\u2060b", "WORD JOINER"),
    ("a\ufeffb", "ZERO WIDTH NO-BREAK SPACE"), ("ali\u200dce", "ZERO WIDTH JOINER"), ("\u200cab", "NON-JOINER"),
    ("a\x07b", "control"), ("a\x85b", "control"), ("a\u2028b", "control"), ("a\ue000b", "private-use"),
    ("a\U000e0041b", "tag character"), ("a\u3164b", "HANGUL FILLER"),
])
def test_what_no_text_may_hold_is_refused_with_the_character_named(text, words):
    with pytest.raises(TextRuleError, match=re.escape(words)):
        check_text(text)


@pytest.mark.parametrize("text", [
    "می\u200cخواهم",  # Persian: the non-joiner between two letters of one word
    "क्\u200dष",  # Devanagari: the joiner after a virama
    "👨\u200d👩\u200d👧",  # an emoji ZWJ sequence
    "❤\ufe0f\u200d🔥",  # VS16 ends the first emoji
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",  # the flag of Scotland
    "שלום\u200f!", "العربية\u061c123", "co\u00adoperate", "tab\tin a line", "é, ß, 李明, Ελλάδα",
])
def test_legitimate_text_passes(text):
    assert check_text(text, one_line=True) == text


def test_line_breaks_only_where_the_field_is_several_lines():
    assert check_text("one\ntwo\r\n") == "one\ntwo\r\n"
    assert "line break" in problem("https://x.org/a.jpg\r\nSet-Cookie: a=1", one_line=True)


def test_visible_shows_invisible_characters_as_question_marks():
    assert visible("Budget \u202eapproved\u202c\ufffe") == "Budget ?approved??"


@pytest.mark.parametrize("name, words", [
    ("ali\nce", "line break"), ("alice\r\nreviewer bob approved", "line break"), ("ali\u200bce", "ZERO WIDTH"),
    ("ali\u200dce", "ZERO WIDTH JOINER"), ("\u0430lice", "mixes Cyrillic and Latin"), ("auto-approve", "writes itself"),
    ("pressflow", "writes itself"), ("Auto-Approve", "writes itself"), ("pr\u0435ssflow", "mixes"),
    ("", "empty"), ("x" * 101, "at most 100"), ("a\u202eb", "RIGHT-TO-LEFT OVERRIDE"),
])
def test_names_refused(name, words):
    with pytest.raises(TextRuleError, match=re.escape(words)):
        check_name(name, "reviewer name")


def test_look_alikes_of_an_existing_name_are_refused_the_name_itself_is_not():
    taken = ["alice", "bob"]
    assert check_name("alice", taken=taken) == "alice"
    for look_alike in ("ALICE", "a1ice", "aIice", "\u0430\u217cice"):
        with pytest.raises(TextRuleError, match="looks like the existing name 'alice'|mixes"):
            check_name(look_alike, taken=taken)
    assert check_name("\uff41lice", taken=taken) == "alice"  # fullwidth: NFKC makes it the name itself
    # A whole-script look-alike (every letter Cyrillic) is not mixed, but still looks like 'ape'.
    with pytest.raises(TextRuleError, match="looks like"):
        check_name("\u0430\u0440\u0435", taken=["ape"])


@pytest.mark.parametrize("name", ["José", "李明", "山田たろう", "김민준", "Ελένη", "Мария", "o.brien@agency", "a_b-c"])
def test_names_in_one_script_pass(name):
    assert check_name(name) == name


def test_the_system_may_write_its_own_names():
    assert check_name("auto-approve", allow_system=True) == "auto-approve"


def test_skeleton_joins_confusables():
    assert skeleton("\u0430lice") == skeleton("alice") == skeleton("aIice")
    assert looks_alike("ALICE", "alice")
    assert skeleton("alice") != skeleton("alive")
