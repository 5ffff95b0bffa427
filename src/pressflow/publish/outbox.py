"""Outbound files for partner outlets: the release as Markdown, HTML and text, one post per
platform, and a manifest per release listing every file with its hash."""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import PublishError
from ..core.files import inside, sha256_file
from ..render import markdown_to_text
from .model import Image, Item, is_failure
from .pages import Pages
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
        outputs |= {
            self.site.outbox_path(*folder, "press-release.md"): item.markdown,
            self.site.outbox_path(*folder, "press-release.html"):
                self.pages.page(item, [item], image, image_src=image_src, standalone=True),
            self.site.outbox_path(*folder, "press-release.txt"): markdown_to_text(item.markdown),
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
