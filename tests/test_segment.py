"""Sentence segmentation of the seed's hard cases: titles, initials, abbreviated dates, quotes."""

from __future__ import annotations

import pytest

from pressflow.translate.segment import split_document, split_sentences


def sentences(text: str) -> list[str]:
    return [p.text for p in split_document(text) if p.translate]


@pytest.mark.parametrize("text, expected", [
    ("Prof. BAI Chunli, President of ANSO, opened the forum. Over 500 people watched.",
     ["Prof. BAI Chunli, President of ANSO, opened the forum.", "Over 500 people watched."]),
    ("The U.N. Secretary-General sent a message. It was read aloud.",
     ["The U.N. Secretary-General sent a message.", "It was read aloud."]),
    ("The exhibition opened on 30 Aug. 2021 in Beijing. It ran for a month.",
     ["The exhibition opened on 30 Aug. 2021 in Beijing.", "It ran for a month."]),
    ("Dr. Lily Eurwilaichitr, Executive Director of NSTDA, spoke next. She thanked CAS.",
     ["Dr. Lily Eurwilaichitr, Executive Director of NSTDA, spoke next.", "She thanked CAS."]),
    ('He said: "We are ready. We start today." Then he left.',
     ['He said: "We are ready. We start today."', "Then he left."]),
    ('"Science has no borders," said Prof. BAI Chunli. It was 30 Aug. in Beijing.',
     ['"Science has no borders," said Prof. BAI Chunli.', "It was 30 Aug. in Beijing."]),
])
def test_titles_initials_dates_and_quotes_do_not_split(text, expected):
    assert sentences(text) == expected


def test_document_pieces_join_back_to_the_document():
    document = ("# ANSO opens an office in Tashkent\n\n> \"We are ready,\" said Prof. BAI Chunli. Indeed.\n\n"
                "- First point. Second point.\n1. Numbered item.\n\n  \nLast line without newline")
    pieces = split_document(document)
    assert "".join(p.text for p in pieces) == document
    translated = [p.text for p in pieces if p.translate]
    # Markdown syntax stays outside the sentences the model sees.
    assert translated[0] == "ANSO opens an office in Tashkent"
    assert translated[1] == '"We are ready," said Prof. BAI Chunli.'
    assert "- " not in "".join(translated) and "> " not in "".join(translated)


def test_whitespace_between_sentences_is_kept_outside_them():
    pieces = split_sentences("One sentence here.   Another one follows.")
    assert [p.text for p in pieces] == ["One sentence here.", "   ", "Another one follows."]
    assert [p.translate for p in pieces] == [True, False, True]


def test_a_language_without_rules_falls_back_to_english_rules():
    # The right split, not just the English one: that comparison alone passes a splitter that never splits.
    pieces = split_document("Prof. BAI Chunli spoke. Then the U.N. envoy spoke.", "xx")
    assert [p.text for p in pieces if p.translate] == ["Prof. BAI Chunli spoke.", "Then the U.N. envoy spoke."]
