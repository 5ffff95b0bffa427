"""JSON Feed 1.1 (https://www.jsonfeed.org/version/1.1/) per language and for all languages:
`feeds/<lang>/feed.json`, `feeds/all/feed.json`. The same entries as the Atom and RSS feeds
(the newest PRESSFLOW_FEED_LIMIT, embargo and withdrawal alike), with the same tag-URI ids."""

from __future__ import annotations

from .model import Entry
from ..core.site import ALL_LANGUAGES
from .writer import FeedWriter, indented_json

VERSION = "https://jsonfeed.org/version/1.1"


class JsonFeed(FeedWriter):
    def write_feeds(self, entries: list[Entry], name: str) -> None:
        mixed = name == ALL_LANGUAGES
        feed = {
            "version": VERSION,
            "title": self.title(name),
            "home_page_url": self.site.index_url(self.settings.source_language if mixed else name),
            "feed_url": self.site.feed_url(name, "json"),
            "description": self.description(name),
            "authors": [{"name": self.settings.organization}],
            **({} if mixed else {"language": name}),  # the all-languages feed: each item says its own
            **({"hubs": [{"type": "WebSub", "url": self.settings.websub_hub}]} if self.settings.websub_hub else {}),
            "items": [self.item(entry) for entry in entries],
        }
        self.write_feed(name, "json", indented_json(feed))

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
