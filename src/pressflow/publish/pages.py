"""The web pages: one per release and language, and each language's index."""

from __future__ import annotations

import datetime as dt
import json
import re
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote, urljoin

import yaml
from babel.core import get_global
from markupsafe import Markup

from ..core.site import ALL_LANGUAGES, INDEX_PAGE_SIZE, SUBSCRIBE_PAGE, index_href, index_name
from ..records.languages import language_name, text_direction
from ..render import babel_locale, localized_date
from ..render.places import place_line
from .model import Changes, Entry, Image, Item
from .writer import Catalog, Writer, without_title

LABELS = Path(__file__).resolve().parents[1] / "data" / "site-labels.yaml"


@lru_cache(maxsize=1)
def _all_labels() -> dict[str, dict[str, str]]:
    return yaml.safe_load(LABELS.read_text(encoding="utf-8"))


def labels(lang: str) -> dict[str, str]:
    """The words of the site's frame in `lang` (English where a language has none)."""
    known = _all_labels()
    return {**known["en"], **known.get(lang, known.get(lang.split("-")[0], {}))}


def script_json(data: dict) -> Markup:
    """JSON for a <script type="application/ld+json"> element: '<', '>' and '&' escaped as JSON
    escapes, so no text in it (a title reading "</script>") can end the element early."""
    text = json.dumps(data, ensure_ascii=False, separators=(", ", ": "))  # one line: json's C encoder
    return Markup(text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


RELATED_COUNT = 3  # related releases under a page
END_MARK = "###"  # the press release's end mark, as newsrooms and wire services write it


class Pages(Writer):
    def release_files(self, item: Item, siblings: list[Item], image: Image | None) -> dict[Path, str]:
        files = {self.site.page_path(item.lang, item.slug): self.page(item, siblings, image)}
        self.output.remember(item)
        return files

    def frame(self, lang: str, languages: dict[str, str], home: str, subscribe: str | None = None) -> dict:
        """What the masthead, language bar and footer need (see base.html.j2)."""
        return {
            "lang": lang, "dir": text_direction(lang), "t": labels(lang), "home": home,
            "feed_url": self.site.feed_url(lang, "atom"), "rss_url": self.site.feed_url(lang, "rss"),
            "all_feed_url": self.site.feed_url(ALL_LANGUAGES, "atom"),
            "subscribe_url": subscribe or self.site.subscribe_url(lang),
            "languages": [{"lang": other, "name": language_name(other, other), "url": url}
                          for other, url in sorted(languages.items())],
        }

    def page(self, item: Item, siblings: list[Item], image: Image | None, *, image_src: str | None = None,
             standalone: bool = False, release_line: str | None = None) -> str:
        """A release's page in one language, linking to its published translations (`siblings`).

        `standalone`: the outbound copy (outbox/<slug>/<lang>/press-release.html), whose links
        are absolute and whose image (`image_src`) sits beside it, so it works wherever it is copied.
        """
        if standalone:
            languages, home = {item.lang: self.site.page_url(item.lang, item.slug)}, self.site.index_url(item.lang)
            subscribe, link = None, lambda lang, slug: self.site.page_url(lang, slug)  # noqa: E731
        else:
            languages, home = {s.lang: f"../{s.lang}/{s.slug}.html" for s in siblings}, "index.html"
            subscribe, link = SUBSCRIBE_PAGE, lambda lang, slug: f"../{lang}/{slug}.html"  # noqa: E731
            if image is not None:  # relative for a local copy: the page shows it when opened from disk
                image_src = f"../media/{image.path.name}" if image.path else image.url
        url = self.site.page_url(item.lang, item.slug)
        t = labels(item.lang)
        subheadline = getattr(item.document, "subheadline", None)
        source = self.settings.source_language
        original = next((s for s in siblings if s.lang == source), None)
        translated = None
        if item.lang != source:  # said in the page's words, where a reader sees it: in the text itself
            name = language_name(source, item.lang)
            translated = {"text": t["translated"].replace("{language}", name),
                          "original": t["original"].replace("{language}", name),
                          "original_lang": source,
                          "original_url": link(source, item.slug) if original is not None or standalone else None}
        credit = _image_credit(item)
        return self.renderer.html(
            "page.html.j2", **self.frame(item.lang, languages, home, subscribe), current="page",
            title=item.title, summary=item.summary, url=url, subheadline=subheadline,
            image_caption=item.image_caption if image is not None else None,
            image_credit=credit if image is not None else None,
            preview_url=image.preview_url if image else None, preview_type=image.preview_type if image else None,
            preview_size=image.social_size if image else None,
            share=share_links(url, item.title, t), related=self.related(item, link), translated=translated,
            end_mark=END_MARK, release_line=release_line, standalone=standalone,
            # hreflang links, as the sitemap gives them: none for a page in one language
            hreflang_links=self.site.alternates({s.lang: self.site.page_url(s.lang, s.slug) for s in siblings}),
            og_locale=og_locale(item.lang),
            og_alternate_locales=[og_locale(s.lang) for s in siblings if s.lang != item.lang],
            image_url=image.url if image else None, image_type=image.type if image else None,
            image_src=image_src, image_alt=item.image_alt or "",
            published=item.published.isoformat(), modified=item.updated.isoformat(), date_iso=item.date.isoformat(),
            date_text=localized_date(item.date, item.lang), place=self.place(item),
            body_html=_without_title(item.html, subheadline is not None), tags=item.tags,
            json_ld=script_json(self.structured_data(item, url, image)),
        )

    def place(self, item: Item) -> str | None:
        """Where the event was, as the page's dateline shows it: the city and the country's name
        in the page's language and its comma (places.py)."""
        return place_line(getattr(item.event, "location", None), item.lang,
                          glossary_file=self.settings.glossary_file, places_file=self.settings.places_file)

    def related(self, item: Item, link) -> list[dict]:
        """Up to RELATED_COUNT releases of the page's language published before it that share a
        tag with it, most tags in common first, then the newest. Only earlier ones: a page's list
        does not depend on what was published after it, so a new release rewrites no older page."""
        tags = {tag.casefold() for tag in item.tags}
        if not tags:
            return []
        published = _utc(item.published)
        found = []
        for slug, (title, other_tags, when, date) in self.output.related_pool(item.lang).items():
            shared = len(tags & {tag.casefold() for tag in other_tags})
            if shared and slug != item.slug and _utc(when) < published:
                found.append((-shared, -_utc(when).timestamp(), slug, title, date))
        return [{"title": title, "url": link(item.lang, slug), "date_iso": date.isoformat(),
                 "date_text": localized_date(date, item.lang)}
                for _, _, slug, title, date in sorted(found)[:RELATED_COUNT]]

    def subscribe_page(self, lang: str) -> None:
        """`site/<lang>/subscribe.html`: what a feed is, the three formats and the addresses to
        copy, in the language's words; the navigation's "Feeds" link opens it."""
        languages = {other: f"../{other}/{SUBSCRIBE_PAGE}" for other in self._languages} or {lang: SUBSCRIBE_PAGE}
        t = labels(lang)
        name = language_name(lang, lang)
        feeds = [{"kind": kind, "label": label, "about": t[f"{kind}_about"], "type": mime,
                  "url": self.site.feed_url(lang, kind), "all_url": self.site.feed_url(ALL_LANGUAGES, kind)}
                 for kind, label, mime in (("atom", "Atom", "application/atom+xml"),
                                           ("rss", "RSS 2.0", "application/rss+xml"),
                                           ("json", "JSON Feed", "application/feed+json"))]
        html = self.renderer.html(
            "subscribe.html.j2", **self.frame(lang, languages, "index.html", SUBSCRIBE_PAGE), current="subscribe",
            url=self.site.subscribe_url(lang), feeds=feeds, language_name=name,
            this_language=t["this_language"].replace("{language}", name),
            alternates=self.site.alternates({other: self.site.subscribe_url(other) for other in self._languages}),
            json_feed_url=self.site.feed_url(lang, "json"),
        )
        self.write(self.site.subscribe_path(lang), html)

    def structured_data(self, item: Item, url: str, image: Image | None) -> dict:
        """schema.org NewsArticle, as search engines and news aggregators read press releases."""
        publisher = {"@type": "Organization", "name": self.settings.organization_name,
                     "alternateName": self.settings.organization, "url": self.site.url("")}
        if self.settings.logo_url:
            publisher["logo"] = {"@type": "ImageObject", "url": urljoin(self.site.url(""), self.settings.logo_url)}
        data = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": item.title,
                "description": item.summary, "url": url, "mainEntityOfPage": url, "inLanguage": item.lang,
                "datePublished": item.published.isoformat(), "dateModified": item.updated.isoformat(),
                "publisher": publisher, "author": publisher}
        if image is not None:
            data["image"] = {"@type": "ImageObject", "url": image.url, "description": item.image_alt or ""}
            if item.image_caption:
                data["image"]["caption"] = item.image_caption
            if credit := _image_credit(item):
                data["image"]["creditText"] = credit
        if item.tags:
            data["keywords"] = list(item.tags)
        event = item.event
        about = {"@type": "Event", "name": item.title, "startDate": item.date.isoformat()}
        location = getattr(event, "location", None)
        if location is not None:
            address = {"@type": "PostalAddress"}
            if location.city:
                address["addressLocality"] = location.city_as_written(self.settings.source_language)
            if location.country:
                address["addressCountry"] = location.country
            about["location"] = {"@type": "Place", "name": location.venue or address.get("addressLocality")
                                 or location.country or "",
                                 "address": address}
        organizers = list(getattr(event, "organizers", None) or [])
        if organizers:
            about["organizer"] = [{"@type": "Organization", "name": name} for name in organizers]
        data["about"] = about
        return data

    def language(self, lang: str, catalog: Catalog, changes: Changes) -> None:
        """The language's index pages: `index.html`, the newest releases, and archive pages of
        INDEX_PAGE_SIZE releases each in order of publication, `index-2.html` the first ones
        ever published. An archive page's releases never move to another page, so its URL stays
        good and a new release rewrites the front page only (and, every INDEX_PAGE_SIZE
        releases, the archive page it completes)."""
        size, total = INDEX_PAGE_SIZE, catalog.count(lang)
        self._languages = catalog.languages()  # the language bar of every index page
        full = total // size  # archive pages: only full ones
        before = changes.counts_before.get(lang, 0) // size
        for block in sorted(self._blocks_to_write(lang, changes, full, before)):
            self._index_page(lang, catalog.oldest(lang, (block - 1) * size, size)[::-1], block, full, total)
        # The front page's translations are the other languages' front pages, as the sitemap lists them.
        alternates = self.site.alternates({other: self.site.index_url(other) for other in catalog.languages()})
        self._index_page(lang, catalog.newest(lang, size), None, full, total, alternates if total else [])
        self.subscribe_page(lang)
        for block in range(full + 1, before + 1):  # fewer releases than before (withdrawn): pages gone
            self.output.staging.remove(self.site.index_path(lang, block + 1))

    @staticmethod
    def _blocks_to_write(lang: str, changes: Changes, full: int, before: int) -> set[int]:
        if changes.everything:
            return set(range(1, full + 1))
        blocks = {position // INDEX_PAGE_SIZE + 1 for position in changes.positions.get(lang, ())}
        if lang in changes.removed_from:  # later releases moved up one place
            blocks |= set(range(changes.removed_from[lang] // INDEX_PAGE_SIZE + 1, full + 1))
        if full > before and before:  # the last full page's "newer" link now points at a new page
            blocks.add(before)
        return {block for block in blocks if 1 <= block <= full}

    def _index_page(self, lang: str, entries: list[Entry], block: int | None, full: int, total: int,
                    alternates: list[dict] = ()) -> None:
        """One index page: the front page (`block` None) or archive page `block` (1 = oldest)."""
        number = 1 if block is None else block + 1  # its file: index.html, index-2.html, ...
        newer = None if block is None else (1 if block == full else block + 2)
        older = (full + 1 if full else None) if block is None else (block if block > 1 else None)
        href = lambda n: index_name(n) if n else None  # noqa: E731 - three uses, one line each
        absolute = lambda n: self.site.index_url(lang, n) if n else None  # noqa: E731
        items = [self._index_item(e, lang) for e in entries]
        page = {"number": number, "count": full + 1, "size": INDEX_PAGE_SIZE, "total": total, "items": items,
                "front": block is None, "newer_url": href(newer), "older_url": href(older),
                "prev_url": href(newer), "next_url": href(older),
                "prev_absolute_url": absolute(newer), "next_absolute_url": absolute(older)}
        languages = {other: f"../{other}/index.html" for other in self._languages} or {lang: "index.html"}
        html = self.renderer.html(
            "index.html.j2", **self.frame(lang, languages, "index.html", SUBSCRIBE_PAGE),
            current="index" if block is None else "archive", language_name=language_name(lang, lang),
            url=self.site.index_url(lang, number), page=page, releases=items, alternates=list(alternates),
            json_feed_url=self.site.feed_url(lang, "json"),
        )
        self.write(self.site.index_path(lang, number), html)

    def _index_item(self, entry: Entry, lang: str) -> dict:
        href = index_href(entry.slug)
        image = None
        if entry.image:  # a local copy by a relative address (the page works from disk), a web image as it is
            media = self.site.media_url("")
            src = f"../media/{entry.image.url.removeprefix(media)}" if entry.image.url.startswith(media) else entry.image.url
            image = {"url": entry.image.url, "src": src, "alt": entry.image.alt}
        return {"title": entry.title, "url": href, "file": href, "absolute_url": self.site.page_url(lang, entry.slug),
                "summary": entry.summary, "date_iso": entry.date.isoformat(),
                "date_text": localized_date(entry.date, lang), "image": image}

    def withdraw(self, slug: str) -> list[Path]:
        return [self.site.page_path(lang, slug) for lang in self.site.site_languages()]


def _image_credit(item: Item) -> str | None:
    image = getattr(item.document, "image", None)
    return image.credit if image is not None else None


def _without_title(html: Markup, subheadline: bool = False) -> Markup:
    """The release's HTML without its title (the first <h1>) and, when it has one, its
    subheadline (the <h2> right after): the page shows both itself, above the image. The HTML
    is markdown-it's, sanitized, so its headings are well formed."""
    text = without_title(html)
    return Markup(_FIRST_H2.sub("", text, count=1) if subheadline else text)


_FIRST_H2 = re.compile(r"\A\s*<h2>.*?</h2>\n?", re.S)


def _utc(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.timezone.utc) if when.tzinfo is None else when


def share_links(url: str, title: str, t: dict[str, str]) -> list[dict[str, str]]:
    """Plain links to each network's own share page: no script of theirs, no tracking on ours."""
    u, text = quote(url, safe=""), quote(title, safe="")
    return [{"name": "X", "url": f"https://x.com/intent/post?text={text}&url={u}"},
            {"name": "Facebook", "url": f"https://www.facebook.com/sharer/sharer.php?u={u}"},
            {"name": "LinkedIn", "url": f"https://www.linkedin.com/sharing/share-offsite/?url={u}"},
            {"name": "Bluesky", "url": f"https://bsky.app/intent/compose?text={quote(title + ' ' + url, safe='')}"},
            {"name": t["share_email"], "url": f"mailto:?subject={text}&body={u}"}]


def og_locale(lang: str) -> str:
    """Open Graph wants language_TERRITORY (e.g. es_ES); CLDR's likely territory fills it in."""
    locale = babel_locale(lang)
    territory = locale.territory or _likely_territory(locale.language)
    return f"{locale.language}_{territory}" if territory else locale.language


def _likely_territory(language: str) -> str | None:
    likely = get_global("likely_subtags").get(language, "")  # e.g. 'es' -> 'es_Latn_ES'
    last = likely.split("_")[-1] if "_" in likely else ""
    return last if last.isupper() or last.isdigit() else None
