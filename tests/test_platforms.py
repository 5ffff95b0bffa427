"""Tests of `pressflow.platforms` and post selection: each platform counts length its own way.

X weighs characters (CJK counts 2) and counts every URL as 23 (twitter-text); Mastodon counts a
URL as 23; Bluesky counts grapheme clusters; LinkedIn counts characters. A post uses its full
text when that fits, the short variant when not, and is trimmed with '…' as a last resort.
"""

from __future__ import annotations

import pytest

from pressflow.platforms import PLATFORMS, URL_WEIGHT, post_length
from pressflow.render import Renderer, choose_post, strip_keep, trim_to_fit

LONG_URL = "https://www.anso.org.cn/news/2021/08/30/the-beauty-of-life-on-earth-exhibition-opens.html"
FAMILY = "\U0001F468\u200D\U0001F469\u200D\U0001F467\u200D\U0001F466"  # one emoji: a family of four


def test_limits():
    assert {name: p.limit for name, p in PLATFORMS.items()} == {"x": 280, "mastodon": 500, "bluesky": 300,
                                                                "linkedin": 3000}


# --- X -------------------------------------------------------------------------------------


def test_x_counts_a_url_as_23():
    assert URL_WEIGHT == 23
    assert post_length("x", LONG_URL) == 23
    assert post_length("x", f"See {LONG_URL} now") == len("See ") + 23 + len(" now")


def test_x_counts_cjk_as_two():
    assert post_length("x", "中" * 140) == 280
    assert PLATFORMS["x"].fits("中" * 140)
    assert not PLATFORMS["x"].fits("中" * 141)
    assert post_length("x", "生物多样性 biodiversity") == 5 * 2 + 1 + len("biodiversity")


def test_x_latin_text_counts_characters():
    assert PLATFORMS["x"].fits("a" * 280)
    assert not PLATFORMS["x"].fits("a" * 281)


# --- Mastodon ------------------------------------------------------------------------------


def test_mastodon_counts_a_url_as_23():
    text = f"Read more: {LONG_URL}"
    assert len(text) > len("Read more: ") + 23
    assert post_length("mastodon", text) == len("Read more: ") + 23


def test_mastodon_counts_every_url():
    text = f"{LONG_URL} and http://example.org/{'x' * 60}"
    assert post_length("mastodon", text) == 23 + len(" and ") + 23


def test_mastodon_counts_cjk_as_one():
    assert post_length("mastodon", "中" * 500) == 500
    assert not PLATFORMS["mastodon"].fits("中" * 501)


# --- Bluesky -------------------------------------------------------------------------------


def test_bluesky_counts_graphemes():
    assert len(FAMILY) == 7
    assert post_length("bluesky", FAMILY) == 1
    assert post_length("bluesky", "e\u0301") == 1  # e + combining acute accent
    assert post_length("bluesky", "中" * 10) == 10
    assert PLATFORMS["bluesky"].fits(FAMILY * 300)
    assert not PLATFORMS["bluesky"].fits(FAMILY * 301)


def test_bluesky_counts_urls_in_full():
    assert post_length("bluesky", LONG_URL) == len(LONG_URL)


# --- LinkedIn ------------------------------------------------------------------------------


def test_linkedin_counts_characters():
    assert post_length("linkedin", "a" * 3000) == 3000
    assert PLATFORMS["linkedin"].fits("a" * 3000)
    assert not PLATFORMS["linkedin"].fits("a" * 3001)
    assert post_length("linkedin", LONG_URL) == len(LONG_URL)


# --- choosing and trimming -----------------------------------------------------------------


def test_full_post_is_used_when_it_fits():
    full, short = f"A full post {LONG_URL}\n", f"Short {LONG_URL}\n"
    assert choose_post("x", (full, short)) == (full, "full")


def test_the_full_post_is_cut_to_fit_when_it_keeps_more_than_the_short_one():
    full = "word " * 60 + LONG_URL + " #ANSO\n"  # 300 + 23 weighted
    short = f"Short {LONG_URL}\n"
    assert not PLATFORMS["x"].fits(full)
    text, variant = choose_post("x", (full, short))
    assert variant == "trimmed" and PLATFORMS["x"].fits(text) and PLATFORMS["x"].count(text) > 270
    assert text.endswith(f"… {LONG_URL} #ANSO\n")  # the link and hashtags stay whole


def test_short_post_is_used_when_cutting_the_full_one_keeps_less():
    full = "x" * 400 + " words " + LONG_URL + "\n"  # one giant word: cutting keeps nothing whole
    short = f"Short title {LONG_URL}\n"
    assert choose_post("x", (full, short)) == (short, "short")


@pytest.mark.parametrize("channel", list(PLATFORMS))
def test_trimmed_with_ellipsis_when_even_the_short_one_is_too_long(channel):
    limit = PLATFORMS[channel].limit
    words = " ".join(f"word{i}" for i in range(limit))  # far too long on every platform
    short = f"{words} {LONG_URL} #ANSO\n"
    text, variant = choose_post(channel, (short + " more", short))
    assert variant == "trimmed"
    assert PLATFORMS[channel].fits(text)
    assert "… " + LONG_URL + " #ANSO" in text  # the link and hashtags after it survive whole
    assert text.startswith("word0 word1 ")
    # Whole words only: what precedes the ellipsis is a prefix of the original words.
    assert words.startswith(text.split("…")[0])


def test_trimming_cjk_for_x_respects_weights():
    text = trim_to_fit("x", "中文" * 200 + " " + "中文" * 10 + f" {LONG_URL}")
    assert PLATFORMS["x"].fits(text)
    assert LONG_URL in text


def test_trimming_keeps_as_many_words_as_fit():
    head = " ".join(["abcd"] * 100)  # 499 characters
    text = trim_to_fit("x", f"{head} {LONG_URL}")
    assert PLATFORMS["x"].fits(text)
    assert not PLATFORMS["x"].fits(text.replace("… ", " abcd… ", 1))  # one more word would not fit


def test_post_without_url_is_trimmed_too():
    text = trim_to_fit("bluesky", "word " * 200)
    assert PLATFORMS["bluesky"].fits(text)
    assert text.rstrip().endswith("…")


# --- the bundled examples --------------------------------------------------------------------


def test_every_english_post_of_the_examples_fits(events, settings):
    renderer = Renderer(settings)
    variants_used = set()
    for _, event in events:
        for channel, platform in PLATFORMS.items():
            rendered = renderer.post(event, "en", channel)
            text, variant = choose_post(channel, tuple(strip_keep(v) for v in rendered.variants))
            assert platform.fits(text), (event.slug, channel, platform.count(text))
            assert renderer.page_url("en", event.slug) in text, (event.slug, channel)
            variants_used.add(variant)
    assert "full" in variants_used


@pytest.mark.parametrize("channel", list(PLATFORMS))
def test_one_giant_word_is_cut_to_fit(channel):
    text = trim_to_fit(channel, "x" * 5000)
    assert PLATFORMS[channel].fits(text)
    assert text.strip() and set(text.strip()) == {"x"}
