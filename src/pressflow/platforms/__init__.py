"""Social platforms and how each one counts a post's length.

Counting follows each platform's own rule, not `len()`: X weighs characters (CJK counts double)
and counts every URL as 23 (twitter-text, X's published counting library); Mastodon counts a
URL as 23 characters; Bluesky counts grapheme clusters; LinkedIn counts characters.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import regex


@lru_cache(maxsize=1)
def _twitter_text():
    """twitter-text, imported when a post is first counted: its import (pkg_resources and huge
    compiled patterns) takes about a second, which commands that count nothing (`review list`)
    should not pay."""
    with warnings.catch_warnings():
        # twitter-text-parser imports pkg_resources, which warns about its own deprecation.
        warnings.simplefilter("ignore")
        from twitter_text import parse_tweet
        from twitter_text.extract_urls import extract_urls_with_indices
    return parse_tweet, extract_urls_with_indices


URL_WEIGHT = 23
# Counting is slow (twitter-text is pure-Python regular expressions) and a post is counted
# several times on its way (choosing a variant, trimming, the over-limit check): remember counts.
_counted = lru_cache(maxsize=8192)


@_counted
def _x_length(text: str) -> int:
    parse_tweet, _ = _twitter_text()
    return parse_tweet(text).weightedLength


@_counted
def _mastodon_length(text: str) -> int:
    _, extract_urls_with_indices = _twitter_text()
    urls = extract_urls_with_indices(text, extract_urls_without_protocol=False)
    url_chars = sum(end - start for start, end in (u["indices"] for u in urls))
    return len(text) - url_chars + URL_WEIGHT * len(urls)


@_counted
def _grapheme_length(text: str) -> int:
    return len(regex.findall(r"\X", text))


@dataclass(frozen=True)
class Platform:
    """A social channel: its template name, its length limit and how it counts."""

    name: str
    title: str
    limit: int
    count: Callable[[str], int]

    def fits(self, text: str) -> bool:
        return self.count(text) <= self.limit


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("x", "X", 280, _x_length),
        Platform("mastodon", "Mastodon", 500, _mastodon_length),
        Platform("bluesky", "Bluesky", 300, _grapheme_length),
        Platform("linkedin", "LinkedIn", 3000, len),
    )
}


def post_length(channel: str, text: str) -> int:
    """The length of `text` as `channel` counts it."""
    return PLATFORMS[channel].count(text)
