"""RSS 2.0 and Atom feeds per language and for all languages together (`feeds/all/`)."""

from __future__ import annotations

import datetime as dt
import html

from feedgen.feed import FeedGenerator
from lxml import etree

from .model import Entry
from ..core.site import ALL_LANGUAGES
from .writer import FeedWriter

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM = "{http://www.w3.org/2005/Atom}"
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class Feeds(FeedWriter):
    def write_feeds(self, entries: list[Entry], name: str) -> None:
        feed = self.feed(entries, name)
        atom = self._finish_atom(feed.atom_str(pretty=True), entries, mixed=name == ALL_LANGUAGES)
        self.write_feed(name, "atom", self._with_hub(atom, "atom"))
        # feedgen makes the last link given the RSS channel's <link>: that must be the site (the
        # index page), not the feed itself, so the self link goes first.
        feed.link(href=self.site.feed_url(name, "rss"), rel="self", replace=True)
        feed.link(href=self.site.index_url(self.settings.source_language if name == ALL_LANGUAGES else name),
                  rel="alternate")
        self.write_feed(name, "rss", self._with_hub(self._finish_rss(feed.rss_str(pretty=True), entries), "rss"))

    def _with_hub(self, feed: bytes, kind: str) -> bytes:
        """The feed naming the WebSub hub, when one is configured: Atom `<link rel="hub">`, RSS
        `<atom:link rel="hub">` in the channel (WebSub's discovery, section 4)."""
        hub = self.settings.websub_hub
        if not hub:
            return feed
        root = etree.fromstring(feed)
        parent = root if kind == "atom" else root.find("channel")
        link = etree.Element(f"{ATOM}link", attrib={"rel": "hub", "href": hub}, nsmap=None if kind == "atom" else {"atom": ATOM[1:-1]})
        first_item = parent.find(f"{ATOM}entry" if kind == "atom" else "item")
        link.tail = "\n  " if kind == "atom" else "\n    "
        if first_item is not None:
            first_item.addprevious(link)
        else:
            parent.append(link)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def feed(self, entries: list[Entry], name: str) -> FeedGenerator:
        mixed = name == ALL_LANGUAGES
        source = self.settings.source_language
        fg = FeedGenerator()
        fg.load_extension("dc")  # dc:language on each item of the all-languages RSS feed
        fg.id(self.site.feed_id(name))
        fg.title(self.title(name))
        fg.description(self.description(name))
        fg.link(href=self.site.index_url(source if mixed else name), rel="alternate")
        fg.link(href=self.site.feed_url(name, "atom"), rel="self")
        # The all-languages feed has no one language ("mul": multiple); each entry carries its own.
        fg.language("mul" if mixed else name)
        # Derived from the entries, never "now": an unchanged feed stays byte-identical.
        fg.updated(max((e.updated for e in entries), default=EPOCH))
        fg.generator("pressflow")
        for entry in entries:
            self._entry(fg.add_entry(order="append"), entry, mixed)
        return fg

    def _entry(self, fe, entry: Entry, mixed: bool) -> None:
        entry_id = self.site.entry_id(entry.slug, entry.lang)
        fe.id(entry_id)
        fe.guid(entry_id, permalink=False)
        fe.title(entry.title)
        # Atom requires an author on every entry (RFC 4287, 4.1.2): the organization publishes it.
        fe.author(name=self.settings.organization, uri=self.site.url(""))
        fe.link(href=self.site.page_url(entry.lang, entry.slug), rel="alternate", hreflang=entry.lang)
        fe.summary(entry.summary)
        # Escaped HTML rather than CDATA: valid Atom, and safe when the text itself contains "]]>".
        fe.content(entry.content_html, type="html")
        fe.published(entry.published)
        fe.updated(entry.updated)
        for tag in entry.tags:
            fe.category(term=tag, label=tag)
        if entry.image and entry.image.enclosure:
            fe.enclosure(entry.image.url, entry.image.length, entry.image.type)
        if mixed:
            fe.dc.dc_language(entry.lang)

    def _finish_rss(self, rss: bytes, entries: list[Entry]) -> bytes:
        """Each item's <description> as plain text escaped for HTML.

        RSS readers treat a description as HTML, so the summary is escaped once more than XML
        needs: a summary reading "<script>" or "R&D" shows as that text, never as markup (Atom's
        `type="text"` summary says the same thing in its own way).
        """
        summaries = {self.site.entry_id(e.slug, e.lang): e.summary for e in entries}
        root = etree.fromstring(rss)
        for item in root.iter("item"):
            item.find("description").text = html.escape(summaries[item.findtext("guid")], quote=False)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def _finish_atom(self, atom: bytes, entries: list[Entry], *, mixed: bool) -> bytes:
        """What feedgen 1.0 cannot write: entry links with rel, type, hreflang and length (it drops
        them, so an enclosure would read as a second page link), and xml:lang on each entry of
        the all-languages feed."""
        by_id = {self.site.entry_id(e.slug, e.lang): e for e in entries}
        root = etree.fromstring(atom)
        for element in root.iter(f"{ATOM}entry"):
            entry = by_id[element.findtext(f"{ATOM}id")]
            for link in element.findall(f"{ATOM}link"):
                element.remove(link)
            position = element.index(element.find(f"{ATOM}title")) + 1
            links = [{"rel": "alternate", "type": "text/html", "hreflang": entry.lang,
                      "href": self.site.page_url(entry.lang, entry.slug)}]
            if entry.image and entry.image.enclosure:
                links.append({"rel": "enclosure", "type": entry.image.type, "length": str(entry.image.length),
                              "href": entry.image.url})
            for offset, attributes in enumerate(links):
                link = etree.Element(f"{ATOM}link", attrib=attributes)
                link.tail = element.find(f"{ATOM}title").tail
                element.insert(position + offset, link)
            if mixed:
                element.set(XML_LANG, entry.lang)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
