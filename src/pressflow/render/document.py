"""The release document: a draft revision's text as typed fields (title, dateline, summary, body,
quotes, organizers, links, closing sections, image text), and each post's text.

A reviewer reads and edits Markdown; the revision they approve is stored with its document, and
publishing reads that document only: pages, feeds and outbound files are written from its fields
by the writers (`release_markdown` here, then HTML and text), never from the current record and
never by guessing at Markdown when publishing.

Markdown becomes a document in one place, `parse_release`: strictly, block by block, in the
order `release.md.j2` writes them and with the counts the record version gives (`Shape`), so a
broken structure is refused with one line that says where ("paragraph 3 ..."), never guessed
at. It reads the template's own output (before translation, and the source-language draft) and
a reviewer's edit when it is saved; never a model's output: translation takes the document's
fields one by one (`release_fields`) and puts them back (`with_fields`), and the draft is the
document written out. Values kept from translation (the date, the city, the links' addresses,
the image's address and credit, the contact's address) come from the record version the draft
was made from.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ReviewError
from ..records import Event
from ..translate.marks import KEEP_CLOSE, KEEP_OPEN

IMAGE_MARK = "[image]:"
CAPTION_MARK = "[caption]:"


class DocumentError(ReviewError):
    """A release's text does not hold the structure of a release; the message says where, in one line."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Dateline(_Frozen):
    date: dt.date
    city: str | None = None  # as the record gives it (its source-language name)
    country: str | None = None  # ISO 3166-1 alpha-2


class Quote(_Frozen):
    text: str  # as written, with its quotation marks: “...”
    attribution: str  # the speaker's line as written: "— Prof. CAO Jinghua, Executive Director ..."
    speaker: str


class Link(_Frozen):
    text: str  # the list item as written: "Forum programme: https://..."
    url: str

    @property
    def title(self) -> str:
        return self.text.replace(self.url, "").strip().rstrip(":：").strip()


class Section(_Frozen):
    heading: str
    blocks: list[str]  # paragraphs, or a list's lines ("- a\n- b") as written


class ImageText(_Frozen):
    url: str
    alt: str | None = None
    caption: str | None = None
    credit: str | None = None


class Contact(_Frozen):
    name: str
    email: str
    phone: str | None = None


class ReleaseDocument(_Frozen):
    kind: Literal["release"] = "release"
    lang: str
    title: str
    subheadline: str | None = None
    dateline: Dateline
    summary: str  # the lead paragraph as written: the dateline, then the summary
    body: list[str] = Field(default_factory=list)
    quotes: list[Quote] = Field(default_factory=list)
    organizers: Section | None = None
    links_heading: str | None = None
    links: list[Link] = Field(default_factory=list)
    closing: list[Section] = Field(default_factory=list)  # "About ...", "Media contact"
    contact: Contact | None = None
    image: ImageText | None = None


class PostDocument(_Frozen):
    kind: Literal["post"] = "post"
    lang: str
    channel: str
    text: str


def load_document(data: dict | None) -> ReleaseDocument | PostDocument | None:
    """A stored document (None: a revision stored without one)."""
    if not data:
        return None
    return ReleaseDocument.model_validate(data) if data.get("kind") == "release" else PostDocument.model_validate(data)


# --- the shape a record version gives a release ------------------------------------------------


class Shape(_Frozen):
    """How many blocks of each kind a release of this record version has, and its kept values."""

    event: Event
    closing: int | None = None  # closing sections, as the source-language text has them (None: any)

    @property
    def lead_blocks(self) -> int:
        return _block_count(self.event.summary)

    @property
    def body_blocks(self) -> int:
        return sum(_block_count(paragraph) for paragraph in self.event.body)


def _block_count(text: str) -> int:
    return len([b for b in re.split(r"\n[ \t]*\n", text.strip()) if b.strip()])


def _blocks(markdown: str) -> list[str]:
    lines = [line.rstrip(" \t") for line in markdown.replace("\r\n", "\n").split("\n")]
    return [block.strip("\n") for block in "\n".join(lines).strip().split("\n\n") if block.strip()]


def _short(text: str, limit: int = 40) -> str:
    line = " ".join(text.split())
    return repr(line if len(line) <= limit else line[:limit] + "...")


# --- Markdown to a document: strictly, block by block --------------------------------------------


class _Reader:
    def __init__(self, blocks: list[str]):
        self.blocks, self.at = blocks, 0

    def next(self, missing: str) -> str:
        if self.at >= len(self.blocks):
            raise DocumentError(missing)
        self.at += 1
        return self.blocks[self.at - 1]

    def heading(self, level: str, missing: str) -> str:
        block = self.next(missing)
        if not block.startswith(level + " ") or "\n" in block or block.startswith(level + "#"):
            raise DocumentError(f"{missing}; found {_short(block)}")
        return block[len(level) + 1:].strip()


def parse_release(markdown: str, shape: Shape, lang: str) -> ReleaseDocument:
    """The document a release's Markdown holds, or a DocumentError saying in one line what is wrong."""
    event = shape.event
    read = _Reader(_blocks(markdown))
    title = read.heading("#", "the title line is missing: a release starts with '# ' and its title")
    image = _image_text(read.blocks, event)  # the last blocks
    subheadline = read.heading("##", "the subheadline line ('## ' and the subheadline) after the title is missing") \
        if event.subheadline else None
    lead = [_paragraph(read, i + 1, "the lead paragraph (the dateline and summary)") for i in range(shape.lead_blocks)]
    body = [_paragraph(read, len(lead) + i + 1, f"paragraph {len(lead) + i + 1}")
            for i in range(shape.body_blocks)]
    quotes = [_quote(read, i + 1, quote.speaker) for i, quote in enumerate(event.quotes)]
    organizers = _organizers(read, len(event.organizers)) if event.organizers else None
    links_heading, links = _links(read, [str(link.url) for link in event.links]) if event.links else (None, [])
    closing = _closing(read, shape.closing)
    return ReleaseDocument(
        lang=lang, title=title, subheadline=subheadline, dateline=_dateline(event), summary="\n\n".join(lead),
        body=body, quotes=quotes, organizers=organizers, links_heading=links_heading, links=links, closing=closing,
        contact=Contact(name=event.contact.name, email=str(event.contact.email), phone=event.contact.phone)
        if event.contact else None,
        image=image)


# What starts a heading or a quote in Markdown; record prose never does (`render.prose` escapes it).
_STRUCTURE = re.compile(r" {0,3}(#{1,6}(?:[ \t]|$)|>)")


def _is_structure(block: str) -> bool:
    return _STRUCTURE.match(block) is not None


def _paragraph(read: _Reader, number: int, name: str) -> str:
    block = read.next(f"{name} is missing")
    if _is_structure(block) or block.startswith((IMAGE_MARK, CAPTION_MARK)):
        raise DocumentError(f"{name} is missing: found {_short(block)} in its place")
    return block


def _quote(read: _Reader, number: int, speaker: str) -> Quote:
    rule = f"quote {number} must be three lines: '> “the words”', '>', '> — {speaker}'"
    block = read.next(f"quote {number} is missing ({rule})")
    lines = block.split("\n")
    if len(lines) < 3 or not lines[0].startswith("> ") or lines[-2].strip() != ">" or not lines[-1].startswith("> "):
        raise DocumentError(f"{rule}; found {_short(block)}")
    if speaker not in lines[-1]:
        raise DocumentError(f"quote {number} must keep its speaker's name {speaker!r} in its last line")
    return Quote(text="\n".join([lines[0][2:], *map(_unquoted, lines[1:-2])]), attribution=lines[-1][2:],
                 speaker=speaker)


def _unquoted(line: str) -> str:
    """A quote's later line without its quote mark ('>' alone is a blank line between paragraphs)."""
    return line[2:] if line.startswith("> ") else line[1:] if line.startswith(">") else line


def _list_block(read: _Reader, name: str, count: int) -> list[str]:
    block = read.next(f"the list of {name} is missing")
    items = block.split("\n")
    if len(items) != count or not all(item.startswith("- ") for item in items):
        raise DocumentError(f"the list of {name} must be {count} line{'s' if count > 1 else ''} starting with '- '; "
                            f"found {_short(block)}")
    return [item[2:] for item in items]


def _organizers(read: _Reader, count: int) -> Section:
    heading = read.heading("##", "the organizers' heading ('## ' and a title) after the quotes is missing")
    return Section(heading=heading, blocks=["\n".join("- " + i for i in _list_block(read, "organizers", count))])


def _links(read: _Reader, urls: list[str]) -> tuple[str, list[Link]]:
    heading = read.heading("##", "the links' heading ('## ' and a title) is missing")
    items = _list_block(read, "links", len(urls))
    for number, (item, url) in enumerate(zip(items, urls), start=1):
        if url not in item:
            raise DocumentError(f"link {number} must keep its address {url}")
    return heading, [Link(text=item, url=url) for item, url in zip(items, urls)]


def _closing(read: _Reader, count: int | None) -> list[Section]:
    """The sections after the links ("About ...", "Media contact"): a heading and its paragraphs."""
    sections: list[Section] = []
    while read.at < len(read.blocks) and (count is None or len(sections) < count):
        heading = read.heading("##", f"section {len(sections) + 1} after the quotes and lists must start with "
                                     "a '## ' heading")
        blocks = []
        while read.at < len(read.blocks) and not read.blocks[read.at].startswith("## "):
            blocks.append(read.next(""))
        if not blocks:
            raise DocumentError(f"the section {heading!r} has no text under its heading")
        sections.append(Section(heading=heading, blocks=blocks))
    if count is not None and len(sections) != count:
        raise DocumentError(f"the text ends after {len(sections)} of its {count} closing sections "
                            "(about the organization, the media contact)")
    if read.at < len(read.blocks):
        raise DocumentError(f"unexpected text at the end: {_short(read.blocks[read.at])}")
    return sections


def _take_mark_line(blocks: list[str], mark: str) -> str | None:
    """The text of the last line of `blocks` when it holds `mark` (translation may move the mark
    within its line), taken off the end; None when it does not. Releases written before the mark
    had a paragraph of its own carry the line at the end of the contact's paragraph."""
    if not blocks:
        return None
    head, _, line = blocks[-1].rpartition("\n")
    line = line.replace(KEEP_OPEN + mark + KEEP_CLOSE, mark)  # as rendered, before translation
    if mark not in line:
        return None
    if head.strip():
        blocks[-1] = head.rstrip()
    else:
        blocks.pop()
    return " ".join(line.replace(mark, " ", 1).split()) or None


def _image_text(blocks: list[str], event: Event) -> ImageText | None:
    """The image's reviewed alt text and caption, taken off the end of `blocks`."""
    image = event.image
    if image is None:
        return None
    caption = alt = None
    if image.alt and image.caption:
        caption = _take_mark_line(blocks, CAPTION_MARK)
        if caption is None:
            raise DocumentError(f"the image caption line ('{CAPTION_MARK} ' and the caption) must end the text")
    if image.alt:
        alt = _take_mark_line(blocks, IMAGE_MARK)
        if alt is None:
            raise DocumentError(f"the image description line ('{IMAGE_MARK} ' and what the picture shows) "
                                "is missing before the end of the text")
    return ImageText(url=image.url, alt=alt, caption=caption, credit=image.credit)


def _dateline(event: Event) -> Dateline:
    location = event.location
    city = location.city_as_written("en") if location is not None and location.city else None
    return Dateline(date=event.date, city=city, country=location.country if location else None)


def shape_for(event: Event, source_text: str | None = None) -> Shape:
    """The shape of this record version's releases; with the source-language text, the number of
    closing sections too, so a translation or an edit must keep every one of them."""
    shape = Shape(event=event)
    if source_text is None:
        return shape
    return Shape(event=event, closing=len(parse_release(source_text, shape, "source").closing))


def stored_document(channel: str, lang: str, text: str, event: Event, source_text: str,
                    shapes: dict[str, Shape] | None = None) -> dict | None:
    """A draft revision's document as the store keeps it (JSON); None for a release whose text
    does not hold the structure (approval refuses it, saying why). `shapes` caches each source
    text's shape across calls."""
    if channel != "release":
        return PostDocument(lang=lang, channel=channel, text=text).model_dump(mode="json")
    try:
        return release_document(text, event, source_text, lang, shapes).model_dump(mode="json")
    except DocumentError:
        return None


def release_document(text: str, event: Event, source_text: str, lang: str,
                     shapes: dict[str, Shape] | None = None) -> ReleaseDocument:
    """The document of a release's text in `lang`, shaped like its source text; DocumentError if it is not."""
    shapes = {} if shapes is None else shapes
    if source_text not in shapes:
        try:
            shapes[source_text] = shape_for(event, source_text)
        except DocumentError as exc:  # the template itself wrote something else: the source says so
            raise DocumentError(f"the source text does not hold a release's structure: {exc}") from None
    return parse_release(text, shapes[source_text], lang)


# --- a document's text, field by field: what translation translates ------------------------------


def release_fields(document: ReleaseDocument) -> list[str]:
    """The document's texts to translate, in the order `release_markdown` writes them. Values kept
    from the record (the date, the addresses, the image's address and credit, the contact) are
    no fields: they come through translation untouched because they are not in it."""
    texts = [document.title, *([document.subheadline] if document.subheadline else []),
             document.summary, *document.body]
    for quote in document.quotes:
        texts += [quote.text, quote.attribution]
    if document.organizers:
        texts += [document.organizers.heading, *document.organizers.blocks]
    texts += [document.links_heading] if document.links_heading else []
    texts += [link.text for link in document.links]
    for section in document.closing:
        texts += [section.heading, *section.blocks]
    if document.image:
        texts += [text for text in (document.image.alt, document.image.caption) if text]
    return texts


def with_fields(document: ReleaseDocument, texts: list[str], lang: str) -> ReleaseDocument:
    """`document` in `lang` with `texts` (its `release_fields`, translated, in order) in place.
    What a field must keep (a link's address, a speaker's name) is kept by translation itself:
    a model that drops a kept value has it put back, and the reviewer is told (QA)."""
    if len(texts) != (fields := len(release_fields(document))):
        raise ValueError(f"{len(texts)} texts for {fields} fields")
    take = iter(texts).__next__
    title, subheadline = take(), take() if document.subheadline else None
    summary, body = take(), [take() for _ in document.body]
    quotes = [Quote(text=take(), attribution=take(), speaker=quote.speaker) for quote in document.quotes]
    organizers = Section(heading=take(), blocks=[take() for _ in document.organizers.blocks]) \
        if document.organizers else None
    links_heading = take() if document.links_heading else None
    links = [Link(text=take(), url=link.url) for link in document.links]
    closing = [Section(heading=take(), blocks=[take() for _ in section.blocks]) for section in document.closing]
    image = document.image.model_copy(update={"alt": take() if document.image.alt else None,
                                              "caption": take() if document.image.caption else None}) \
        if document.image else None
    return document.model_copy(update={
        "lang": lang, "title": title, "subheadline": subheadline, "summary": summary, "body": body, "quotes": quotes,
        "organizers": organizers, "links_heading": links_heading, "links": links, "closing": closing, "image": image})


# --- a document to Markdown: the one writer every output starts from -----------------------------


def release_markdown(document: ReleaseDocument, *, image_lines: bool = True) -> str:
    """The release as Markdown, block by block as `release.md.j2` writes it; without the image's
    description and caption lines (`image_lines=False`) for what is published: those are data
    for the page's `alt` and caption, never text."""
    blocks = [f"# {document.title}"]
    if document.subheadline:
        blocks.append(f"## {document.subheadline}")
    blocks += [document.summary, *document.body]
    blocks += [f"{_quote_lines(q.text)}\n>\n> {q.attribution}" for q in document.quotes]
    if document.organizers:
        blocks += [f"## {document.organizers.heading}", *document.organizers.blocks]
    if document.links_heading:
        blocks += [f"## {document.links_heading}", "\n".join(f"- {link.text}" for link in document.links)]
    for section in document.closing:
        blocks += [f"## {section.heading}", *section.blocks]
    if image_lines and document.image is not None:
        blocks += [f"{IMAGE_MARK} {document.image.alt}"] if document.image.alt else []
        blocks += [f"{CAPTION_MARK} {document.image.caption}"] if document.image.caption else []
    return "\n\n".join(blocks) + "\n"


def _quote_lines(text: str) -> str:
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.split("\n"))
