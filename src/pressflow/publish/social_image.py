"""A social preview image: X, Facebook and LinkedIn show no preview for an SVG `og:image`, so a
release whose picture is an SVG gets a PNG copy of it for `og:image` and `twitter:image`.

CairoSVG (Kozea's SVG renderer on cairo) draws the sanitized SVG, never the author's file: by
then it holds no script, link or external reference (images.sanitize_svg), and CairoSVG is
asked for no external resource either (`unsafe` stays off). The page itself keeps the SVG.
"""

from __future__ import annotations

import struct

from ..core.errors import PressflowError

# Facebook's and LinkedIn's recommended width (1200 x 630 for 1.91:1); the SVG's own aspect is kept.
SOCIAL_WIDTH = 1200
MAX_HEIGHT = 2400
PLATFORMS_WITHOUT_SVG = "X, Facebook and LinkedIn"


class SocialImageError(PressflowError):
    """The preview could not be drawn (the message says why)."""


def svg_to_png(svg: bytes, width: int = SOCIAL_WIDTH) -> tuple[bytes, int, int]:
    """The SVG drawn as a PNG `width` pixels wide: its bytes, width and height."""
    try:
        import cairosvg
    except (ImportError, OSError) as exc:  # OSError: the cairo library itself is missing
        raise SocialImageError(f"cannot draw SVG previews here ({exc}); install cairosvg and libcairo2") from None
    try:
        png = cairosvg.svg2png(bytestring=svg, output_width=width, unsafe=False)
    except Exception as exc:  # a drawing CairoSVG cannot handle: the page still has its SVG
        raise SocialImageError(f"cannot draw the SVG as PNG: {type(exc).__name__}: {exc}") from None
    found = png_size(png)
    if found is None or found[1] > MAX_HEIGHT:
        raise SocialImageError("the SVG drew to no usable PNG (too tall or empty)")
    return png, *found


def png_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its IHDR chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])
