"""Rendering: an Event (and later an approved text) into press releases, posts and pages.

Templates live in `templates/` and are rendered in Jinja2's sandbox, because staff edit them;
undefined variables are errors (StrictUndefined) and HTML/XML templates autoescape, so user text
never becomes markup.

Templates mark text that must not be translated (dates, names, URLs) with the `keep` filter.
The marks travel with the rendered text into the translation stage, which protects what they
enclose, and are removed before anything is stored or shown (`strip_keep`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import nh3
from babel import Locale
from babel.dates import format_date
from jinja2 import FileSystemLoader, StrictUndefined, TemplateError as JinjaTemplateError
from jinja2.sandbox import SandboxedEnvironment
from markdown_it import MarkdownIt
from markupsafe import Markup

from ..core.config import Settings
from ..core.errors import TemplateError
from ..core.site import Site
from ..platforms import PLATFORMS
from ..records import Event
from ..translate.marks import KEEP_CLOSE, KEEP_OPEN, escape_block_marks, keep, strip_keep  # noqa: F401 - the templates' marks

RELEASE = "release"
CHANNELS = (RELEASE, *PLATFORMS)


@lru_cache(maxsize=256)
def babel_locale(lang: str) -> Locale:
    """The Babel locale for a language tag, English when Babel has no data for it (parsed once
    a process: every page asks, and parsing costs more than the formatting it is for)."""
    try:
        return Locale.parse(lang, sep="-")
    except Exception:
        return Locale("en")


# One date style per language, wherever a date shows (dateline, page, index, outbound files,
# embargo line): a bare `en` is international English, day before month as releases write it in
# their text ("30 August 2021"), not CLDR's default, US English ("August 30, 2021").
DATE_LOCALES = {"en": "en-001"}


@lru_cache(maxsize=4096)  # a page, its index entry and its outbound copy show the same date
def localized_date(value: dt.date, lang: str) -> str:
    """A date as readers of `lang` write it, e.g. '30 August 2021', '30 de agosto de 2021'."""
    return format_date(value, format="long", locale=babel_locale(DATE_LOCALES.get(lang, lang)))


@dataclass(frozen=True)
class Rendered:
    """One rendered draft before translation: for posts, the full text and its shorter fallback."""

    channel: str
    lang: str
    variants: tuple[str, ...]  # with keep marks; the first that fits its platform wins


def _autoescape(name: str | None) -> bool:
    return bool(name) and name.removesuffix(".j2").endswith((".html", ".xml"))


class Renderer:
    """Renders the templates of one templates folder."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(str(settings.templates_dir)),
            undefined=StrictUndefined,
            autoescape=_autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # one environment per run: no stat of every template on every render
        )
        self.env.filters["keep"] = keep
        self.env.filters["date"] = localized_date
        self.env.filters["dateline"] = self.dateline
        self.env.filters["prose"] = prose
        self.env.filters["quoted"] = quoted

    def _render(self, name: str, **context: Any) -> str:
        try:
            site = {"organization": self.settings.organization, "organization_name": self.settings.organization_name,
                    "logo_url": self.settings.logo_url, "contact_email": self.settings.contact_email}
            return self.env.get_template(name).render(**site, **context)
        except JinjaTemplateError as exc:
            where = f"{getattr(exc, 'filename', None) or name}"
            if getattr(exc, "lineno", None):
                where += f", line {exc.lineno}"
            raise TemplateError(f"template {where}: {exc.message or exc}") from None

    def dateline(self, event: Event, lang: str) -> str:
        """'Beijing, 30 August 2021', '北京，2021年8月30日', 'بكين، 30 أغسطس 2021': the city in the
        reader's words (see places.py) and the date in the language's one style."""
        from .places import city_name, separator

        city = city_name(event.location, lang, glossary_file=self.settings.glossary_file,
                         places_file=self.settings.places_file)
        date = localized_date(event.date, lang)
        return f"{city}{separator(lang)}{date}" if city else date

    def page_url(self, lang: str, slug: str) -> str:
        """The release's page, where posts link (the layout is `core.site`'s)."""
        return Site(self.settings).page_url(lang, slug)

    def release(self, event: Event, lang: str) -> Rendered:
        text = self._render("release.md.j2", event=event, lang=lang)
        return Rendered(RELEASE, lang, (_tidy(text),))

    def post(self, event: Event, lang: str, channel: str) -> Rendered:
        url = self.page_url(lang, event.slug)
        variants = tuple(
            _tidy(self._render(f"posts/{channel}.txt.j2", event=event, lang=lang, url=url, short=short))
            for short in (False, True)
        )
        return Rendered(channel, lang, variants)

    def drafts(self, event: Event, lang: str) -> list[Rendered]:
        """Every draft of a release in one language: the press release and one post per platform."""
        return [self.release(event, lang)] + [self.post(event, lang, channel) for channel in PLATFORMS]

    def html(self, name: str, **context: Any) -> str:
        return self._render(name, **context)


def prose(text: str) -> str:
    """A record's paragraph as Markdown text. Records are text, never markup (a body paragraph
    "# 1 in Asia" is not a heading), so a line Markdown would take for a heading, a quote, an
    underline or a rule starts with a backslash, which Markdown shows as the character itself
    and translation keeps as it keeps a line's other marks. Lists stay lists."""
    return escape_block_marks(text)


def quoted(text: str) -> str:
    """A quote's text inside a block quote: its lines after the first carry the quote mark, so a
    quote of two paragraphs stays one quote."""
    first, *rest = text.split("\n")  # the first line follows the opening quotation mark
    return "\n".join([first, *(f"> {prose(line)}" if line.strip() else ">" for line in rest)])


def _tidy(text: str) -> str:
    """Collapse the blank lines that template conditionals leave behind."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def choose_post(channel: str, variants: tuple[str, ...]) -> tuple[str, str]:
    """The post that uses the platform's room: the full one (title, summary, link, hashtags)
    when it fits; else the full one with its text cut at a word ("…"), keeping the link and the
    hashtags whole, when that keeps more of the text than the short one (title and link) says;
    else the short one; else the short one cut to fit. Counted as each platform counts.

    Returns the text and which variant it is ('full', 'trimmed' or 'short').
    """
    platform = PLATFORMS[channel]
    full, short = variants[0], variants[-1]
    if platform.fits(full):
        return full, "full"
    cut = trim_to_fit(channel, full)
    fallback = (short, "short") if len(variants) > 1 and platform.fits(short) else (trim_to_fit(channel, short), "trimmed")
    # On a tie the short one wins: its title is whole, with no ellipsis.
    return (cut, "trimmed") if _words_before_link(cut) > _words_before_link(fallback[0]) else fallback


def _words_before_link(text: str) -> int:
    match = re.search(r"https?://\S+", text)
    return len((text[: match.start()] if match else text).replace("…", " ").split())


def trim_to_fit(channel: str, text: str) -> str:
    """Shorten the words before the first URL (with '…') until the platform accepts the post."""
    platform = PLATFORMS[channel]
    match = re.search(r"https?://\S+", text)
    head, tail = (text[: match.start()], text[match.start():]) if match else (text, "")
    words = head.split()

    def candidate(count: int) -> str:
        # Measured with the final newline: X and Bluesky count it too.
        return (" ".join(words[:count]) + "… " + tail).strip() + "\n"

    # The most words that fit, by bisection: length only grows with words, and counting a post
    # (twitter-text) is slow enough that trying every length one by one shows on long texts.
    low, high = 0, len(words)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if platform.fits(candidate(middle)) else (low, middle - 1)
    if low:
        return candidate(low)
    # Not even one word fits before the link: cut characters until the platform accepts it.
    rest = (tail or head).strip()[: platform.limit]
    while rest and not platform.fits(rest + "\n"):
        rest = rest[:-1]
    return rest + "\n"


# Raw HTML in records is shown as text: Markdown's HTML passthrough is off, and the result is
# sanitized again, because feeds carry it into readers we do not control.
# Addresses in the text (web and e-mail) become links: linkify-it finds them, markdown-it makes
# the links, so no user text is ever taken as markup.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": True, "typographer": False}).enable("linkify")
_markdown_without_links = MarkdownIt("commonmark", {"html": False, "typographer": False})
# Every address linkify-it finds holds one of these: '//' (a scheme), '@' (e-mail) or a dot
# between a letter or digit and a letter (a host and its top-level domain). Its own test costs
# 0.7 ms a release, so text without any of them, most text, skips it. The pattern starts with
# the dot, so the regex engine looks for dots alone and checks the character before each.
_DOT_BETWEEN_LETTERS = re.compile(r"\.(?<=[^\W_]\.)[^\W\d_]")


def may_hold_address(text: str) -> bool:
    return "//" in text or "@" in text or _DOT_BETWEEN_LETTERS.search(text) is not None


def markdown_to_html(text: str) -> Markup:
    """Press-release Markdown to safe HTML."""
    markdown = _markdown if may_hold_address(text) else _markdown_without_links
    return Markup(nh3.clean(markdown.render(text)))


_ESCAPED_START = re.compile(r"^((?:> ?)* {0,3})\\(#|>|[=-])")


def markdown_to_text(text: str) -> str:
    """Press-release Markdown to plain text for outlets that want text only."""
    lines = []
    for line in text.splitlines():
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            title = heading.group(2)
            lines.append(title.upper() if len(heading.group(1)) == 1 else title)
            lines.append(("=" if len(heading.group(1)) == 1 else "-") * len(title))
        else:
            lines.append(_ESCAPED_START.sub(r"\1\2", line))  # what `prose` escaped is text again
    return "\n".join(lines).strip() + "\n"
