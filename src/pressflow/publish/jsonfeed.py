"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) per language and for all languages:
`feeds/<lang>/feed.json`, `feeds/all/feed.json`. The same entries as the Atom and RSS feeds
(the newest PRESSFLOW_FEED_LIMIT, embargo and withdrawal alike), with the same tag-URI ids."""

from __future__ import annotations

import json

from ..languages import language_name
from .model import Changes, Entry
from .site import ALL_LANGUAGES
from .writer import Catalog, Writer

VERSION = "https://jsonfeed.org/version/1.1"


class JsonFeed(Writer):
    def language(self, lang: str, catalog: Catalog, changes: Changes) -> None:
        self.feed(catalog.newest(lang, self.settings.feed_limit), lang)

    def everything(self, catalog: Catalog, changes: Changes) -> None:
        self.feed(catalog.newest(None, self.settings.feed_limit), ALL_LANGUAGES)

    def feed(self, entries: list[Entry], name: str) -> None:
        mixed = name == ALL_LANGUAGES
        home = self.site.index_url(self.settings.source_language if mixed else name)
        label = "all languages" if mixed else language_name(name, name)
        feed = {
            "version": VERSION,
            "title": f"{self.settings.organization} — {label}",
            "home_page_url": home,
            "feed_url": self.site.feed_url(name, "json"),
            "description": f"{self.settings.organization} press releases "
                           f"({'all languages' if mixed else language_name(name, 'en')})",
            "authors": [{"name": self.settings.organization}],
            **({} if mixed else {"language": name}),  # the all-languages feed: each item says its own
            **({"hubs": [{"type": "WebSub", "url": self.settings.websub_hub}]} if self.settings.websub_hub else {}),
            "items": [self.item(entry) for entry in entries],
        }
        path = self.site.feed_path(name, "json")
        if self.output.staging.write(path, json.dumps(feed, ensure_ascii=False, indent=2) + "\n"):
            self.output.report.count(True)
            self.output.report.feeds_changed.append(self.site.feed_url(name, "json"))
        else:
            self.output.report.count(False)

    def item(self, entry: Entry) -> dict:
        item = {
            "id": self.site.entry_id(entry.slug, entry.lang),
            "url": self.site.page_url(entry.lang, entry.slug),
            "title": entry.title,
            "content_html": entry.content_html,
            "summary": entry.summary,
            "date_published": entry.published.isoformat(),
            "date_modified": entry.updated.isoformat(),
            "language": entry.lang,
        }
        if entry.image:
            item["image"] = entry.image.url
        if entry.tags:
            item["tags"] = list(entry.tags)
        return item
