"""What the record loader reads from disk: only regular files, boundedly; a record's image only
when it is there, inside the record's folder, and really an image (by content, not by name).

Each refusal is one error line naming the file, the record and the field; the good record
beside a bad one still goes through.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from lxml import etree

from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.core.errors import RecordError
from pressflow.records.images import ImageError, check_image, sanitize_svg
from pressflow.publish import publish
from pressflow.records import load_records

EVENTS = Path(__file__).resolve().parents[1] / "events"
GOOD = "id: good\ntitle: A good record\ndate: 2021-06-21\nsummary: It goes through.\nlanguages: []\n"


def png(width: int = 1, height: int = 1) -> bytes:
    """A real (tiny, grey) PNG, built by hand: no imaging library needed."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


GIF = bytes.fromhex("47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b")
# Headers as the formats define them (enough for content detection; no encoder here writes them).
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64 + b"\xff\xd9"
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + b"\x00" * 22
AVIF = struct.pack(">I", 28) + b"ftypavif" + b"\x00\x00\x00\x00" + b"avifmif1miaf" + b"\x00" * 16

EVIL_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10"
     onload="alert(document.cookie)">
  <script>fetch('/review').then(r => r.text()).then(alert)</script>
  <script xlink:href="https://evil.example/x.js"/>
  <style>@import url(https://evil.example/x.css);</style>
  <rect width="10" height="10" fill="url(#g)" onclick="alert(1)" onmouseover="alert(2)"
        style="fill: url(javascript:alert(3))"/>
  <a href="javascript:alert(4)"><text x="1" y="8">click</text></a> tail kept
  <a xlink:href="javascript:alert(5)"><circle r="2"/></a>
  <use href="javascript:alert(6)"/><use xlink:href="data:image/svg+xml;base64,PHN2Zy8+"/>
  <use href="#g"/>
  <animate attributeName="href" to="javascript:alert(7)"/>
  <set attributeName="onload" to="alert(8)"/>
  <foreignObject width="10" height="10"><body xmlns="http://www.w3.org/1999/xhtml">
    <iframe src="javascript:alert(9)"/><img src="x" onerror="alert(10)"/></body></foreignObject>
  <image href="https://evil.example/track.png"/>
  <linearGradient id="g"><stop offset="0" stop-color="#3a8d46"/></linearGradient>
  <text x="0" y="5">Beauty &amp; life</text>
</svg>
"""


def write_record(folder: Path, image_url: str, name: str = "event.yaml", record_id: str = "poster") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f"id: {record_id}\ntitle: With an image\ndate: 2021-06-21\nsummary: S.\nlanguages: []\n"
                    f"image: {{url: {image_url}, alt: A poster}}\n")
    return path


def only_error_beside_good(folder: Path) -> RecordError:
    (folder / "good.yaml").write_text(GOOD)
    loaded = load_records([folder])
    assert [event.slug for _, event in loaded.events] == ["good"], [str(e) for e in loaded.errors]
    [error] = loaded.errors
    assert "\n" not in str(error)
    return error


# --- record files: regular files only, read boundedly ----------------------------------------

LOAD_AND_PREPARE = """
import json, sys
from pathlib import Path
from pressflow.prepare import pipeline
from pressflow.core.config import Settings
from pressflow.records import load_records
loaded = load_records([Path(sys.argv[1])])
report = pipeline.prepare(loaded.events, Settings(out_dir=Path(sys.argv[2])))
print(json.dumps({"errors": [str(e) for e in loaded.errors], "prepared": sorted(report.releases)}))
"""


def load_and_prepare_in_a_child(folder: Path, out: Path) -> dict:
    """In a child process with a time limit and a memory limit: a regression (reading a FIFO
    or /dev/zero without end) fails this test instead of hanging or exhausting the suite."""
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
    done = subprocess.run([sys.executable, "-c", limit + LOAD_AND_PREPARE, str(folder), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fifo_and_a_link_to_dev_zero_are_one_error_line_each_and_the_good_record_is_prepared(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    (records / "good.yaml").write_text(GOOD)
    os.mkfifo(records / "x.yaml")  # nobody ever writes to it: opening it to read would wait forever
    (records / "zero.yaml").symlink_to("/dev/zero")  # st_size 0, and endless

    summary = load_and_prepare_in_a_child(records, tmp_path / "out")

    assert summary["prepared"] == ["good"]
    errors = sorted(summary["errors"])
    assert errors == [f"{records / 'x.yaml'}: not a regular file (a FIFO); only plain files are read",
                      f"{records / 'zero.yaml'}: not a regular file (a character device); only plain files are read"]


def test_a_record_file_over_the_limit_is_refused_after_a_bounded_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_bytes(b"# " + b"x" * 2_500_000 + b"\n" + GOOD.encode())
    [error] = load_records([path]).errors
    assert str(error) == f"{path}: file is over 2,000,000 bytes, the limit"


def test_a_file_name_with_a_line_break_stays_on_one_line(tmp_path):
    name = "bad\nprepared good: en (changed).yaml"
    (tmp_path / name).write_text("title: [unclosed\n")
    [error] = load_records([tmp_path / name]).errors
    text = str(error)
    assert "\n" not in text
    assert text.startswith(repr(str(tmp_path / name)) + ": not valid YAML"), text


def test_a_field_name_with_a_line_break_stays_on_one_line(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"id": "x", "title": "T", "date": "2021-06-21", "summary": "S",
                                "evil\nprepared x: en (changed)": 1}))
    [error] = load_records([path]).errors
    assert "\n" not in str(error) and r"'evil\nprepared x: en (changed)'" in str(error), str(error)


# --- a record's image: there, inside the record's folder ---------------------------------------


def test_a_missing_image_is_an_error_naming_file_record_and_field(tmp_path):
    path = write_record(tmp_path / "records", "images/nowhere.png")
    error = only_error_beside_good(tmp_path / "records")
    assert (error.file, error.record, error.field) == (str(path), "'poster'", "image.url")
    assert str(error) == f"{path}: record 'poster': field 'image.url': no image file 'images/nowhere.png' next to the record"


def test_an_image_symlinked_out_of_the_record_folder_is_an_error_and_never_published(tmp_path):
    records = tmp_path / "records"
    secret = tmp_path / "secret.png"
    secret.write_bytes(png() + b"secret")
    path = write_record(records, "poster.png")
    (records / "poster.png").symlink_to(secret)

    error = only_error_beside_good(records)

    assert str(error).startswith(f"{path}: record 'poster': field 'image.url': 'poster.png' leads outside "
                                 "the record's folder"), str(error)
    settings = Settings(out_dir=tmp_path / "out")
    pipeline.prepare(load_records([records]).events, settings)
    publish(settings)
    assert not (settings.out_dir / "site" / "en" / "poster.html").exists()
    assert not any(b"secret" in p.read_bytes() for p in settings.out_dir.rglob("*") if p.is_file())


def test_an_image_that_is_a_fifo_is_refused_without_waiting(tmp_path):
    records = tmp_path / "records"
    path = write_record(records, "poster.png")
    os.mkfifo(records / "poster.png")
    error = only_error_beside_good(records)
    assert str(error) == (f"{path}: record 'poster': field 'image.url': 'poster.png': not a regular file (a FIFO); "
                          "only plain files are read")


# --- a record's image: decided by content ----------------------------------------------------


@pytest.mark.parametrize("data, mime", [(png(), "image/png"), (GIF, "image/gif"), (JPEG, "image/jpeg"),
                                        (WEBP, "image/webp"), (AVIF, "image/avif")],
                         ids=["png", "gif", "jpeg", "webp", "avif"])
def test_real_images_are_recognised_by_their_content(data, mime):
    assert check_image(data).mime == mime


@pytest.mark.parametrize("content", [b"<!doctype html><script>alert(document.cookie)</script>",
                                     b"<html><body onload=alert(1)>", b"%PDF-1.4\n", b"\x7fELF\x02\x01\x01",
                                     b"<svg><script>alert(1)</script></svg>"],  # no SVG namespace: not an SVG
                         ids=["html", "html-body", "pdf", "elf", "svg-without-namespace"])
def test_anything_else_named_png_is_an_error_naming_the_record_and_field(tmp_path, content):
    records = tmp_path / "records"
    path = write_record(records, "evil.png")
    (records / "evil.png").write_bytes(content)
    error = only_error_beside_good(records)
    assert str(error).startswith(f"{path}: record 'poster': field 'image.url': 'evil.png': not an image "
                                 "pressflow publishes"), str(error)
    assert "PNG, JPEG, GIF, WebP, AVIF or SVG" in str(error)


def test_an_svg_entity_bomb_is_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg"><text>&b;&b;&b;</text></svg>')
    with pytest.raises(ImageError, match="DOCTYPE"):
        check_image(bomb)


def assert_inert(svg: bytes) -> etree._Element:
    root = etree.fromstring(svg)
    everything = [root, *root.iter()]
    tags = {etree.QName(e).localname for e in everything if isinstance(e.tag, str)}
    assert not tags & {"script", "style", "a", "foreignObject", "iframe", "img", "body", "animate", "set", "image"}
    for element in everything:
        for name, value in element.attrib.items():
            assert not etree.QName(name).localname.lower().startswith("on"), (name, value)
            assert "javascript" not in value.lower() and "data:" not in value and "evil" not in value, (name, value)
    assert b"alert" not in svg and b"evil.example" not in svg
    return root


def test_an_svg_with_script_handlers_links_and_foreign_content_is_sanitized():
    cleaned = sanitize_svg(EVIL_SVG)
    root = assert_inert(cleaned)
    ns = {"s": "http://www.w3.org/2000/svg"}
    # The drawing survives: shapes, a gradient referenced by fragment, text (and its entity), tails.
    assert root.xpath("//s:rect/@fill", namespaces=ns) == ["url(#g)"]
    assert root.xpath("//s:use/@href", namespaces=ns) == ["#g"]
    assert "Beauty & life" in root.xpath("string(//s:text[last()])", namespaces=ns)
    assert "tail kept" in etree.tostring(root, encoding="unicode")


def test_an_evil_svg_is_published_sanitized_with_its_content_type(tmp_path):
    records = tmp_path / "records"
    write_record(records, "evil.svg")
    (records / "evil.svg").write_bytes(EVIL_SVG)
    (records / "photo.html").write_bytes(png(2, 2))  # a real PNG with a misleading name
    write_record(records, "photo.html", name="photo.yaml", record_id="photo")
    settings = Settings(out_dir=tmp_path / "out", auto_approve_source=True)  # publishing is under test
    loaded = load_records([records])
    assert not loaded.errors, [str(e) for e in loaded.errors]
    pipeline.prepare(loaded.events, settings)
    publish(settings)

    media = sorted(p.name for p in (settings.out_dir / "site" / "media").iterdir())
    # named by what they are, not what they were called; the SVG also drawn as PNG for social previews
    assert media == ["photo-photo.png", "poster-evil-social.png", "poster-evil.svg"]
    assert (settings.out_dir / "site" / "media" / "poster-evil-social.png").read_bytes().startswith(b"\x89PNG\r\n")
    assert_inert((settings.out_dir / "site" / "media" / "poster-evil.svg").read_bytes())
    assert (settings.out_dir / "site" / "media" / "photo-photo.png").read_bytes() == png(2, 2)
    rss = (settings.out_dir / "feeds" / "en" / "rss.xml").read_text()
    assert 'type="image/svg+xml"' in rss and 'type="image/png"' in rss


def test_the_bundled_example_image_is_an_svg_the_allowlist_leaves_byte_for_byte():
    source = (EVENTS / "images" / "beauty-of-life.svg").read_bytes()
    image = check_image(source)
    assert image.mime == "image/svg+xml" and image.data == source


def test_an_svg_stylesheet_instruction_and_doctype_are_dropped():
    svg = (b'<?xml version="1.0"?><?xml-stylesheet type="text/xsl" href="https://evil.example/x.xsl"?>'
           b'<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
           b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>')
    cleaned = check_image(svg).data
    assert b"xml-stylesheet" not in cleaned and b"DOCTYPE" not in cleaned and b"<rect" in cleaned
