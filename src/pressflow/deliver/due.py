"""What is due: read from what publish committed to the outbox, never from drafts (embargoed
briefings, the one exception, are read from approved drafts: `briefings.py`).

A release is due in a language when `OUT/outbox/<slug>/manifest.json` lists the language and
its page is on disk (publish writes both only after the embargo passed, and removes the outbox
when a release is under embargo again: then its deliveries are taken back). Social posts come
from `<lang>/posts/<platform>.txt`; a post with parts (a thread) separates them by a line of
three dashes. E-mail sends `press-release.txt` and `press-release.html`.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from ..core.config import Settings
from ..core.files import inside
from ..core.errors import PressflowError
from ..platforms import PLATFORMS
from .base import Image, Message

PART_SEPARATOR = "---"


@dataclass
class Due:
    """One release in one language, as publish left it."""

    release: str
    language: str
    title: str
    url: str
    folder: Path
    image: Image | None
    messages: dict[str, list[Message]] = field(default_factory=dict)  # channel -> parts

    def for_channel(self, channel: str) -> list[Message]:
        if channel not in self.messages:
            self.messages[channel] = self._messages(channel)
        return self.messages[channel]

    def _messages(self, channel: str) -> list[Message]:
        if channel == "email":
            try:
                text = (self.folder / "press-release.txt").read_text(encoding="utf-8")
                html = (self.folder / "press-release.html").read_text(encoding="utf-8")
            except OSError:
                return []
            return [Message(self.release, self.language, "release", text, html, self.title, self.url, self.image)]
        try:
            post = (self.folder / "posts" / f"{channel}.txt").read_text(encoding="utf-8")
        except OSError:
            return []
        return [Message(self.release, self.language, "post", text, None, self.title, self.url, self.image, part=n)
                for n, text in enumerate(split_parts(post))]


def split_parts(post: str) -> list[str]:
    parts, current = [], []
    for line in post.splitlines():
        if line.strip() == PART_SEPARATOR:
            parts.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    parts.append("\n".join(current).strip())
    return [p for p in parts if p]


def over_limit(channel: str, text: str) -> str | None:
    """Why `text` may not be sent on `channel` (too long, counted as the platform counts), or None."""
    platform = PLATFORMS.get(channel)
    if platform is None or platform.fits(text):
        return None
    return f"over {platform.title}'s limit: {platform.count(text)} > {platform.limit}; never sent"


def read_outbox(settings: Settings) -> dict[tuple[str, str], Due]:
    """(release, language) -> what is due there, for every published release."""
    from ..core.site import Site

    out = settings.out_dir
    site = Site(settings)
    due: dict[tuple[str, str], Due] = {}
    for manifest_path in sorted((out / "outbox").glob("*/manifest.json")):
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # mid-write or broken: next run
        slug = manifest.get("release") or manifest_path.parent.name
        pages = manifest.get("pages") or {}
        image_info = manifest.get("image") or {}
        for language in manifest.get("languages", []):
            folder = manifest_path.parent / language
            if not site.page_path(language, slug).is_file() or not folder.is_dir():
                continue  # the page is not live: nothing links to it yet
            title = (manifest.get("titles") or {}).get(language) or manifest.get("title", slug)
            due[(slug, language)] = Due(slug, language, title, pages.get(language) or site.page_url(language, slug),
                                        folder, _image(out, image_info, language))
    return due


def _image(out: Path, info: dict, language: str) -> Image | None:
    if not info.get("path"):
        return None
    try:
        path = inside(out, info["path"]) if not Path(info["path"]).is_absolute() else Path(info["path"])
    except PressflowError:
        return None
    if not path.is_file():
        return None
    alt = (info.get("alt") or {}).get(language) or ""
    mime = info.get("type") or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Image(path, alt, mime)
