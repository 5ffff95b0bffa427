"""A record's image: only real images are published, decided by their content, never their name.

Published images are served from the same origin as the review page, so a file that a browser
would run (HTML, or SVG with script) must never get there under an image's name. Raster images
are recognised by their magic bytes (PNG, JPEG, GIF, WebP, AVIF); SVG is rebuilt from an
allowlist of drawing elements and attributes, so no script, event handler, link, foreign content
or external reference survives. Anything else is refused with a message saying what it is not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import filetype
from lxml import etree

from ..core.errors import PressflowError
from ..core.files import FileKindError, read_regular

MAX_IMAGE_BYTES = 20_000_000
# MIME type -> the extension the published copy gets (its name then matches its content).
RASTER_TYPES = {"image/png": "png", "image/apng": "png", "image/jpeg": "jpg", "image/gif": "gif",
                "image/webp": "webp", "image/avif": "avif"}
ACCEPTED = "PNG, JPEG, GIF, WebP, AVIF or SVG"

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

# Drawing only. Left out on purpose: script, style (CSS can fetch), a (links), foreignObject
# (HTML inside SVG), image and feImage (external or nested files), animate/set/animateMotion/
# animateTransform (they can rewrite an href to javascript: after the check), iframe, etc.
SVG_ELEMENTS = frozenset("""
    svg g defs title desc symbol use switch path rect circle ellipse line polyline polygon
    text tspan textPath linearGradient radialGradient stop clipPath mask pattern marker filter
    feBlend feColorMatrix feComponentTransfer feComposite feFlood feGaussianBlur feMerge
    feMergeNode feMorphology feOffset feTile feTurbulence feFuncA feFuncR feFuncG feFuncB
    feDropShadow
""".split())
# Geometry, painting, text and accessibility; no on* handlers, no href but to "#fragment".
SVG_ATTRIBUTES = frozenset("""
    id class lang role aria-label aria-labelledby aria-describedby aria-hidden version baseProfile
    width height viewBox preserveAspectRatio x y x1 y1 x2 y2 cx cy r rx ry fx fy fr d points
    pathLength transform fill fill-opacity fill-rule stroke stroke-width stroke-opacity
    stroke-linecap stroke-linejoin stroke-miterlimit stroke-dasharray stroke-dashoffset opacity
    color display visibility overflow clip-path clip-rule mask filter marker-start marker-mid
    marker-end paint-order vector-effect shape-rendering text-rendering image-rendering
    color-interpolation color-interpolation-filters font-family font-size font-style font-weight
    font-variant font-stretch letter-spacing word-spacing text-anchor dominant-baseline
    alignment-baseline baseline-shift text-decoration writing-mode direction unicode-bidi dx dy
    rotate textLength lengthAdjust startOffset method spacing side offset stop-color stop-opacity
    gradientUnits gradientTransform spreadMethod patternUnits patternContentUnits
    patternTransform clipPathUnits maskUnits maskContentUnits markerWidth markerHeight
    markerUnits refX refY orient filterUnits primitiveUnits in in2 result stdDeviation mode
    operator k1 k2 k3 k4 values type tableValues slope intercept amplitude exponent offset
    flood-color flood-opacity lighting-color radius baseFrequency numOctaves seed stitchTiles
    systemLanguage requiredExtensions style href
""".split())
_LOCAL_URL = re.compile(r"url\(\s*['\"]?#[\w.:-]+['\"]?\s*\)")
_UNSAFE_STYLE = re.compile(r"url\(|expression|javascript|@import|\\|<|&", re.IGNORECASE)


class ImageError(PressflowError):
    """A record's image is not one pressflow publishes (the message says why, without the file)."""


@dataclass(frozen=True)
class CheckedImage:
    """An image fit to publish: its bytes (an SVG as rebuilt), MIME type and file extension."""

    data: bytes
    mime: str
    extension: str


def read_image(path: Path) -> CheckedImage:
    """The image at `path`, checked by content (and an SVG sanitized); ImageError otherwise."""
    try:
        data = read_regular(path, MAX_IMAGE_BYTES)
    except FileKindError as exc:
        raise ImageError(str(exc)) from None
    return check_image(data)


def check_image(data: bytes) -> CheckedImage:
    kind = filetype.guess(data[:8192])
    if kind is not None and kind.mime in RASTER_TYPES:
        mime = "image/png" if kind.mime == "image/apng" else kind.mime
        return CheckedImage(data, mime, RASTER_TYPES[kind.mime])
    if (svg := sanitize_svg(data)) is not None:
        return CheckedImage(svg, "image/svg+xml", "svg")
    what = f" (its content is {kind.mime})" if kind is not None else ""
    raise ImageError(f"not an image pressflow publishes{what}: the file's content must be {ACCEPTED}, "
                     f"whatever its name")


def sanitize_svg(data: bytes) -> bytes | None:
    """The SVG rebuilt from allowed elements and attributes only; None when `data` is no SVG.

    A file the allowlist leaves untouched is returned byte for byte (its size and hash stay
    what the author sees on disk).
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=False, remove_pis=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != f"{{{SVG_NS}}}svg":
        return None
    docinfo = root.getroottree().docinfo
    if (dtd := docinfo.internalDTD) is not None and any(True for _ in dtd.iterentities()):
        # An internal DTD subset declares entities: nothing an image needs, and the way XML bombs work.
        raise ImageError("an SVG whose DOCTYPE declares entities is not accepted; save it without one")
    # Processing instructions before the root (<?xml-stylesheet ...?>) and a DOCTYPE are dropped.
    outside = bool(docinfo.doctype) or any(isinstance(n, etree._ProcessingInstruction)
                                           for n in (*root.itersiblings(preceding=True), *root.itersiblings()))
    if not _clean(root) and not outside:
        return data
    etree.cleanup_namespaces(root)
    return etree.tostring(root, encoding="utf-8", xml_declaration=True)


def _clean(element: etree._Element) -> bool:
    """Remove what the allowlist does not know from `element`; returns whether anything went."""
    removed = False
    for child in list(element):
        if isinstance(child, etree._Comment):
            continue
        if not isinstance(child.tag, str) or not _allowed_element(child.tag):
            _remove_keeping_tail(child)
            removed = True
        else:
            removed |= _clean(child)
    for name, value in list(element.attrib.items()):
        if not _allowed_attribute(name, value):
            del element.attrib[name]
            removed = True
    return removed


def _allowed_element(tag: str) -> bool:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace == SVG_NS and local in SVG_ELEMENTS


def _allowed_attribute(name: str, value: str) -> bool:
    namespace, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
    if namespace == XML_NS:
        return local in ("lang", "space")
    if namespace not in ("", XLINK_NS) or (namespace == XLINK_NS and local != "href"):
        return False
    if local not in SVG_ATTRIBUTES:
        return False
    if local == "href":
        return value.strip().startswith("#")  # a reference inside this file, never javascript: or a URL
    if local == "style" and _UNSAFE_STYLE.search(_LOCAL_URL.sub("", value)):
        return False
    # fill="url(#gradient)" is fine; a url() pointing anywhere else would fetch.
    return "url(" not in _LOCAL_URL.sub("", value).lower()


def _remove_keeping_tail(child: etree._Element) -> None:
    """Remove `child` and what is inside it, but keep the text that follows it."""
    parent, tail = child.getparent(), child.tail
    if tail:
        previous = child.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(child)
