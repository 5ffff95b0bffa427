"""Outbound files for partner outlets: the release as Markdown, HTML and text, one post per
platform, and a manifest per release listing every file with its hash.

A partner uses the release files as they are, so each carries what an outlet needs besides the
text (docs/layout.md): the release line ("FOR IMMEDIATE RELEASE", or the embargo in UTC and in
the record's own offset), the canonical web address, the text with its media contact, the end
mark, and then the picture: its address, alt text, caption and credit.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ..core.errors import PublishError
from ..core.files import inside, sha256_file
from ..render.places import separator
from ..render import localized_date, markdown_to_text
from .model import Image, Item, is_failure
from .pages import END_MARK, Pages, labels
from .writer import Output, Writer, indented_json


class Outbox(Writer):
    def __init__(self, output: Output):
        super().__init__(output)
        self.pages = Pages(output)  # press-release.html is the page on its own, with no translations

    def release_files(self, item: Item, siblings: list[Item], image: Image | None) -> dict[Path, str]:
        folder = (item.slug, item.lang)
        outputs: dict[Path, str | bytes] = {}
        image_src = image.url if image else None
        if image is not None and image.path is not None and isinstance(item.image, Path):
            # The image beside the release's languages, so a copied outbox folder shows it.
            outputs[self.site.outbox_path(item.slug, image.path.name)] = item.image.read_bytes()
            image_src = f"../{image.path.name}"
        t = labels(item.lang)
        line, url = release_line(item, t), self.site.page_url(item.lang, item.slug)
        outputs |= {
            self.site.outbox_path(*folder, "press-release.md"): outbound_markdown(item, image, t, line, url),
            self.site.outbox_path(*folder, "press-release.html"):
                self.pages.page(item, [item], image, image_src=image_src, standalone=True, release_line=line),
            self.site.outbox_path(*folder, "press-release.txt"): outbound_text(item, image, t, line, url),
        }
        for channel, text in sorted(item.posts.items()):
            outputs[self.site.outbox_path(*folder, "posts", f"{channel}.txt")] = text
        return outputs

    def manifest(self, slug: str, items: list[Item], files: list[Path], reasons: dict[str, str]) -> Path:
        """`outbox/<slug>/manifest.json`: the release's files with their hashes, and the languages
        left out with why. Files staged in this run are described by their new content."""
        out = f"{self.settings.out_dir.resolve()}/"
        manifest = {
            "release": slug,
            "title": next((i.title for i in items if i.lang == self.settings.source_language), items[0].title),
            "titles": {i.lang: i.title for i in items},  # each language's approved title (delivery names it)
            "languages": sorted(i.lang for i in items),
            "files": [{"path": str(p).removeprefix(out), "sha256": sha, "bytes": size}
                      for p in sorted(set(files)) for sha, size in [self._digest(p)]],
            # Kept for readers of the first manifest format: every language left out, and why.
            "skipped_languages": [{"language": lang, "reason": reason,
                                   "status": "failed" if is_failure(reason) else "skipped"}
                                  for lang, reason in sorted(reasons.items())],
            "failed_languages": [{"language": lang, "reason": reason}
                                 for lang, reason in sorted(reasons.items()) if is_failure(reason)],
            # For delivery (pressflow deliver): each language's canonical page, and the image
            # with each language's alt text.
            "pages": {i.lang: self.site.page_url(i.lang, i.slug) for i in items},
            "image": self._image(items, out),
        }
        return self.write(self.site.outbox_path(slug, "manifest.json"), indented_json(manifest))

    def _image(self, items: list[Item], out: str) -> dict | None:
        image = self.output.image(items[0])
        if image is None:
            return None
        return {"path": str(image.path).removeprefix(out) if image.path else None, "url": image.url,
                "type": image.type, "alt": {i.lang: i.image_alt or image.alt for i in items}}

    def _digest(self, path: Path) -> tuple[str, int]:
        staged = self.output.staging.digest(path)  # what this run wrote, or found there already
        return staged if staged is not None else (sha256_file(path), path.stat().st_size)

    def files_on_disk(self, item: Item) -> list[Path]:
        """The outbound files an earlier run wrote for `item`."""
        folder = self.site.outbox_path(item.slug, item.lang)
        return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".tmp")]

    def withdraw(self, slug: str) -> list[Path]:
        """The copied images the manifest lists (the image may have changed since), then the
        folder, last: its manifest names the media to remove if this run dies first."""
        outbox = self.site.outbox_path(slug)
        in_use = {image.path for image in self.output._images.values() if image and image.path}
        return [path for path in self._media_listed(outbox) if path not in in_use] + [outbox]

    def _media_listed(self, outbox: Path) -> list[Path]:
        try:
            files = json.loads((outbox / "manifest.json").read_text(encoding="utf-8"))["files"]
            return [inside(self.settings.out_dir, f["path"]) for f in files if f["path"].startswith("site/media/")]
        except (OSError, ValueError, KeyError, TypeError, PublishError):  # unreadable: remove the pages anyway
            return []


# The end mark as its own line of the Markdown file: escaped, since a bare "###" is an empty
# heading there; every CommonMark renderer shows it as "###".
MARKDOWN_END_MARK = "\\#\\#\\#"


def release_line(item: Item, t: dict[str, str]) -> str:
    """'FOR IMMEDIATE RELEASE', or 'EMBARGOED UNTIL 30 August 2021, 02:00 UTC (10:00 UTC+08:00)':
    the embargo in UTC and in the offset the record gave, in the language's date style."""
    publish_at = embargo_shown(item)
    if publish_at is None:
        return t["immediate"]
    utc, comma = publish_at.astimezone(dt.timezone.utc), separator(item.lang)
    line = f"{t['embargoed']} {localized_date(utc.date(), item.lang)}{comma}{utc:%H:%M} UTC"
    offset = publish_at.utcoffset() or dt.timedelta(0)
    if offset:
        sign, minutes = ("+" if offset >= dt.timedelta(0) else "-"), abs(int(offset.total_seconds())) // 60
        local = f"{publish_at:%H:%M} UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
        if publish_at.date() != utc.date():
            local = f"{localized_date(publish_at.date(), item.lang)}{comma}{local}"
        line += f" ({local})"
    return line


def embargo_shown(item: Item) -> dt.datetime | None:
    """The embargo the release was held to. It is the release's current one (a record changed
    after approval may have moved it; its new text waits for review, its new time does not),
    given in the offset the approved record wrote it in when that is the same time."""
    recorded = getattr(item.event, "publish_at", None)
    return recorded if recorded == item.publish_at else item.publish_at


def _image_lines(item: Item, image: Image | None, t: dict[str, str]) -> list[tuple[str, str]]:
    """The picture as a partner needs it: (label, value) for its address, alt text, caption, credit."""
    if image is None:
        return []
    reviewed = getattr(item.document, "image", None)
    credit = reviewed.credit if reviewed is not None else None
    lines = [(t["image_heading"], image.url), (t["alt_text"], item.image_alt or image.alt or "")]
    if image.social_url:
        lines.append(("PNG", image.social_url))
    if item.image_caption:
        lines.append((t["caption"], item.image_caption))
    if credit:
        lines.append((t["credit"], credit))
    return [(label, value) for label, value in lines if value]


def outbound_markdown(item: Item, image: Image | None, t: dict[str, str], line: str, url: str) -> str:
    """press-release.md: the release line and web address, the release, the end mark, the picture."""
    parts = [f"**{line}**  \n{t['web_version']}: <{url}>", item.markdown.strip(), MARKDOWN_END_MARK]
    if image is not None:
        pairs = _image_lines(item, image, t)
        picture = f"![{_md_alt(item.image_alt or image.alt)}](<{image.url}>)"
        parts.append(f"## {t['image_heading']}\n\n{picture}\n\n"
                     + "\n".join(f"- {label}: {value}" for label, value in pairs))
    return "\n\n".join(parts) + "\n"


def outbound_text(item: Item, image: Image | None, t: dict[str, str], line: str, url: str) -> str:
    """press-release.txt: the same as the Markdown file, in plain text."""
    parts = [f"{line}\n{t['web_version']}: {url}", markdown_to_text(item.markdown).strip(), END_MARK]
    if image is not None:
        parts.append("\n".join(f"{label}: {value}" for label, value in _image_lines(item, image, t)))
    return "\n\n".join(parts) + "\n"


def release_of_outbound(markdown: str) -> str:
    """The release's own Markdown inside press-release.md (what `outbound_markdown` wrapped):
    from its title to the end mark, as an earlier run published it."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# ")), 0)
    end = max((i for i, line in enumerate(lines) if line.strip() == MARKDOWN_END_MARK), default=len(lines))
    return "\n".join(lines[start:end]).strip() + "\n"


def _md_alt(text: str) -> str:
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
