"""Tests of `pressflow.records`: every kind of bad record becomes one located `RecordError`.

Each error must name the file, the record (its id, else its title; "#N" inside a list) and the
field, and `str(error)` must be one readable line: that line is what a communications officer
sees at the CLI.
"""

from __future__ import annotations

import json
import shutil
import time
import unicodedata
from pathlib import Path

import pytest
import yaml

from pressflow.core.errors import RecordError
from pressflow.records import Event, LoadResult, load_records, validate_record

EVENTS = Path(__file__).resolve().parents[1] / "events"
BUNDLED = sorted(EVENTS.glob("*.yaml"))

BASE = {"id": "test-event", "title": "Test event", "date": "2021-08-30", "summary": "A summary."}
BASE_NAME = "'test-event'"


# --- helpers ---------------------------------------------------------------------------------


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def write_yaml(tmp_path: Path, record: object, name: str = "record.yaml") -> Path:
    return write(tmp_path / name, yaml.safe_dump(record, allow_unicode=True, sort_keys=False))


def write_json(tmp_path: Path, record: object, name: str = "record.json") -> Path:
    return write(tmp_path / name, json.dumps(record))


def record(**changes: object) -> dict:
    """BASE with fields changed; a value of `...` removes the field."""
    out = dict(BASE)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def only_error(path: Path) -> RecordError:
    result = load_records([path])
    assert isinstance(result, LoadResult)
    assert result.events == []
    assert len(result.errors) == 1, [str(e) for e in result.errors]
    return result.errors[0]


def assert_one_readable_line(error: RecordError) -> None:
    text = str(error)
    assert text and text == text.strip()
    unreadable = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]
    assert not unreadable, f"control/line-break characters in {text!r}"


def assert_located(
    error: RecordError, path: Path, field: str | None, record_name: str | None = BASE_NAME, *, says: str = ""
) -> None:
    """The error names the file, the record and the field, in its attributes and its one line."""
    assert isinstance(error, RecordError)
    text = str(error)
    assert error.file == str(path)
    assert text.startswith(str(path))
    assert error.record == record_name
    if record_name is not None:
        assert f"record {record_name}" in text
    assert error.field == field
    if field is not None:
        assert f"field '{field}'" in text
    assert says.lower() in error.message.lower()
    assert_one_readable_line(error)


# --- unknown and missing fields --------------------------------------------------------------


def test_unknown_top_level_field(tmp_path):
    path = write_yaml(tmp_path, record(venue="Beijing Botanical Garden"))
    assert_located(only_error(path), path, "venue", says="unknown field")


def test_unknown_nested_field(tmp_path):
    quote = {"speaker": "Prof. BAI Chunli", "speeker": "typo", "text": "Hello."}
    path = write_yaml(tmp_path, record(quotes=[quote]))
    assert_located(only_error(path), path, "quotes.0.speeker", says="unknown field")


@pytest.mark.parametrize("missing", ["title", "date", "summary"])
def test_missing_required_field(tmp_path, missing):
    path = write_yaml(tmp_path, record(**{missing: ...}))
    assert_located(only_error(path), path, missing, says="required")


def test_record_without_id_is_named_by_its_title(tmp_path):
    path = write_yaml(tmp_path, record(id=..., countries=["XX"]))
    assert_located(only_error(path), path, "countries.0", "'Test event'", says="ISO 3166")


# --- dates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["30/08/2021", "2021-13-01", "2021-02-30", "next week"])
def test_malformed_date(tmp_path, value):
    path = write_yaml(tmp_path, record(date=value))  # safe_dump quotes these: YAML strings
    assert_located(only_error(path), path, "date", says="valid date")


def test_malformed_unquoted_yaml_date(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ndate: 2021-13-01\nsummary: S\n")
    error = only_error(path)
    assert error.file == str(path)
    assert_one_readable_line(error)


def test_date_out_of_range(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ndate: 1800-01-01\nsummary: S\n")
    assert_located(only_error(path), path, "date", says="out of range")


def test_publish_at_without_timezone(tmp_path):
    path = write(
        tmp_path / "record.yaml",
        "id: test-event\ntitle: T\ndate: 2021-08-30\nsummary: S\npublish_at: 2021-08-30T10:00:00\n",
    )
    assert_located(only_error(path), path, "publish_at", says="timezone")


def test_publish_at_with_timezone_is_kept(tmp_path):
    path = write_yaml(tmp_path, record(publish_at="2021-08-30T10:00:00+08:00"))
    [(_, event)] = load_records([path]).events
    assert event.publish_at.utcoffset().total_seconds() == 8 * 3600


# --- codes, tags, addresses ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["XX", "Brazil"])
def test_bad_country_code_in_countries(tmp_path, code):
    path = write_yaml(tmp_path, record(countries=["CN", code]))
    assert_located(only_error(path), path, "countries.1", says="ISO 3166")


@pytest.mark.parametrize("code", ["XX", "Brazil"])
def test_bad_country_code_in_location(tmp_path, code):
    path = write_yaml(tmp_path, record(location={"city": "Beijing", "country": code}))
    assert_located(only_error(path), path, "location.country", says="ISO 3166")


@pytest.mark.parametrize("given, hint", [("China", "CN (China)"), ("china", "CN (China)"), ("CHN", "CN (China)"),
                                         ("Brasil", "BR (Brazil)"), ("Viet Nam", "VN (Viet Nam)")])
def test_a_country_given_by_name_suggests_its_code(tmp_path, given, hint):
    path = write_yaml(tmp_path, record(countries=[given]))
    error = only_error(path)
    assert_located(error, path, "countries.0", says="ISO 3166")
    assert error.message.endswith(f"; did you mean {hint}?"), error.message


def test_a_code_like_nothing_suggests_nothing(tmp_path):
    path = write_yaml(tmp_path, record(location={"country": "XX"}))
    assert only_error(path).message == "'XX' is not an ISO 3166-1 alpha-2 country code"


@pytest.mark.parametrize("fields, where, hint", [
    ({"sumary": "S"}, "sumary", "summary"),
    ({"organisers": ["ANSO"]}, "organisers", "organizers"),
    ({"location": {"venue": "V", "contry": "CN"}}, "location.contry", "country"),
    ({"quotes": [{"speaker": "S", "text": "T", "speeker": "x"}]}, "quotes.0.speeker", "speaker"),
    ({"image": {"url": "https://example.org/a.png", "alt": "A", "atl": "A"}}, "image.atl", "alt"),
])
def test_a_misspelt_field_suggests_the_nearest_one_and_links_the_field_list(tmp_path, fields, where, hint):
    path = write_yaml(tmp_path, {**BASE, **fields})
    error = only_error(path)
    assert_located(error, path, where, says="unknown field")
    assert f"did you mean '{hint}'?" in error.message
    assert "docs/records.md" in error.message and "DESIGN" not in error.message
    assert (Path(__file__).resolve().parents[1] / "docs" / "records.md").is_file()


def test_an_unknown_field_like_no_other_gets_no_suggestion(tmp_path):
    path = write_yaml(tmp_path, record(zzzzqqq=1))
    assert "did you mean" not in only_error(path).message


def test_duplicate_keys_in_yaml_name_the_key_and_the_lines(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: One\ndate: 2021-08-30\nsummary: S\ntitle: Two\n")
    error = only_error(path)
    assert_located(error, path, None, None, says="duplicate key 'title' on line 5 (the first is on line 2)")


def test_duplicate_keys_in_a_nested_yaml_mapping_are_found_too(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ndate: 2021-08-30\nsummary: S\n"
                                           "location:\n  city: Beijing\n  city: Shanghai\n")
    assert "duplicate key 'city' on line 7 (the first is on line 6)" in only_error(path).message


def test_duplicate_keys_in_json_name_the_key(tmp_path):
    path = write(tmp_path / "record.json", '{"id": "test-event", "title": "One", "date": "2021-08-30", '
                                           '"summary": "S", "title": "Two"}')
    assert_located(only_error(path), path, None, None, says="duplicate key 'title'")


def test_unquoted_norway_country_code(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ndate: 2021-08-30\nsummary: S\ncountries: [NO]\n")
    [(_, event)] = load_records([path]).events
    assert event.countries == ["NO"]


@pytest.mark.parametrize("tag", ["english", "xx", "en-XX"])
def test_bad_language_tag(tmp_path, tag):
    path = write_yaml(tmp_path, record(languages=["es", tag]))
    assert_located(only_error(path), path, "languages.1", says="language tag")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "../../etc/passwd"])
def test_invalid_link_url(tmp_path, url):
    path = write_yaml(tmp_path, record(links=[{"title": "Bad link", "url": url}]))
    assert_located(only_error(path), path, "links.0.url", says="url")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "../../etc/passwd", "/etc/passwd", "file:///etc/passwd"])
def test_invalid_image_url(tmp_path, url):
    path = write_yaml(tmp_path, record(image={"url": url, "alt": "A picture"}))
    assert_located(only_error(path), path, "image.url")


def test_bad_contact_email(tmp_path):
    path = write_yaml(tmp_path, record(contact={"name": "ANSO Secretariat Communications", "email": "anso-at-cashq"}))
    assert_located(only_error(path), path, "contact.email", says="email")


@pytest.mark.parametrize("bad_id", ["../etc", "Has Spaces"])
def test_bad_id(tmp_path, bad_id):
    path = write_yaml(tmp_path, record(id=bad_id))
    assert_located(only_error(path), path, "id", f"'{bad_id}'", says="pattern")


def test_hashtag_with_a_space(tmp_path):
    path = write_yaml(tmp_path, record(hashtags=["#ANSO", "#bio diversity"]))
    assert_located(only_error(path), path, "hashtags.1", says="not a hashtag")


# --- hostile or broken text ------------------------------------------------------------------


@pytest.mark.parametrize(
    "char",
    [
        "\x00",
        "\x07",
        "\x1b",
        "\x7f",
        "\x85",
        "\u2028",
        pytest.param(
            "\n",
        ),
        pytest.param(
            "\r",
        ),
    ],
    ids=repr,
)
def test_control_character_in_title(tmp_path, char):
    path = write_json(tmp_path, record(title=f"Bad{char}title"))
    assert_located(only_error(path), path, "title", says="control characters")


def test_control_character_in_title_of_record_without_id(tmp_path):
    path = write_json(tmp_path, record(id=..., title="Bad\x07title"))
    error = only_error(path)
    assert error.file == str(path)
    assert error.field == "title"
    assert "Bad" in error.record


def test_record_name_with_control_characters_is_made_readable(tmp_path):
    path = write_json(tmp_path, record(id=..., title="Bad\x1b[2Jtitle"))
    assert_one_readable_line(only_error(path))


def test_one_megabyte_summary(tmp_path):
    path = write_yaml(tmp_path, record(summary="x" * 1_000_000))
    error = only_error(path)
    assert_located(error, path, "summary", says="at most")
    assert len(str(error)) < 500


def test_file_too_large(tmp_path):
    path = write_yaml(tmp_path, record(body=["y" * 4000] * 600))
    error = only_error(path)
    assert_located(error, path, None, None, says="bytes")


def test_file_that_is_not_utf8(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: Bogotá\ndate: 2021-08-30\nsummary: S\n".encode("latin-1"))
    assert_located(only_error(path), path, None, None, says="UTF-8")


def test_invalid_yaml(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ndate: 2021-08-30\nsummary: S\ntags: [a, b\n")
    error = only_error(path)
    assert error.file == str(path) and str(error).startswith(str(path))
    assert (error.record, error.field) == (None, None)
    assert "not valid YAML" in error.message


def test_invalid_yaml_message_is_one_line(tmp_path):
    path = write(tmp_path / "record.yaml", "id: test-event\ntitle: T\ntags: [a, b\n")
    error = only_error(path)
    assert_one_readable_line(error)
    assert "line " in str(error)


def test_invalid_json(tmp_path):
    path = write(tmp_path / "record.json", '{"id": "test-event", "title": "T",')
    assert_located(only_error(path), path, None, None, says="not valid JSON")


def test_yaml_billion_laughs_is_refused_quickly(tmp_path):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    path = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    started = time.perf_counter()
    error = only_error(path)
    assert time.perf_counter() - started < 1.0
    assert_located(error, path, None, None, says="aliases are not allowed")


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_record_nested_1000_levels_deep(tmp_path, suffix):
    deep = '{"a": ' * 1000 + "1" + "}" * 1000
    text = '{"id": "test-event", "title": "T", "date": "2021-08-30", "summary": "S", "location": ' + deep + "}"
    path = write(tmp_path / f"deep{suffix}", text)  # JSON is also YAML (flow style)
    started = time.perf_counter()
    error = only_error(path)
    assert time.perf_counter() - started < 2.0
    assert error.file == str(path)
    assert "nested too deeply" in error.message
    assert_one_readable_line(error)


def test_nesting_is_refused_by_depth_not_by_the_recursion_limit(tmp_path):
    # 100 levels parse within any recursion limit (torch, imported by translation, raises it to
    # 2000, and 1000 levels then parse too): the loader counts the depth itself.
    deep = '{"a": ' * 100 + "1" + "}" * 100
    text = '{"id": "x", "title": "T", "date": "2021-08-30", "summary": "S", "location": ' + deep + "}"
    for suffix in (".json", ".yaml"):
        path = write(tmp_path / f"deep{suffix}", text)
        assert "nested too deeply" in only_error(path).message


def test_validate_record_refuses_deep_nesting_in_memory():
    raw = dict(BASE)
    node: dict = raw
    for _ in range(1000):
        node["location"] = {}
        node = node["location"]
    with pytest.raises(RecordError) as caught:
        validate_record(raw, file="form")
    assert caught.value.file == "form"
    assert_one_readable_line(caught.value)


# --- batches ---------------------------------------------------------------------------------


def test_list_with_one_bad_record_keeps_the_good_ones(tmp_path):
    records = [
        record(id="first"),
        record(id="second", countries=["XX"]),
        record(id="third"),
    ]
    path = write_yaml(tmp_path, records, "batch.yaml")
    result = load_records([path])
    assert [event.slug for _, event in result.events] == ["first", "third"]
    assert all(source == path for source, _ in result.events)
    [error] = result.errors
    assert error.record.startswith("#2")
    assert_located(error, path, "countries.0", "#2 'second'", says="ISO 3166")


def test_list_item_that_is_not_a_mapping(tmp_path):
    path = write_yaml(tmp_path, [record(id="first"), "just a string"], "batch.yaml")
    result = load_records([path])
    assert [event.slug for _, event in result.events] == ["first"]
    [error] = result.errors
    assert_located(error, path, None, "#2", says="mapping")


def test_duplicate_ids_across_two_files(tmp_path):
    first = write_yaml(tmp_path, record(title="First"), "a.yaml")
    second = write_yaml(tmp_path, record(title="Second"), "b.yaml")
    result = load_records([first, second])
    assert [(source, event.title) for source, event in result.events] == [(first, "First")]
    [error] = result.errors
    assert_located(error, second, "id", BASE_NAME, says="duplicate")
    assert str(first) in error.message


def test_directory_argument(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    write_json(folder, record(id="c-json"), "c.json")
    write_yaml(folder, record(id="a-yaml"), "a.yaml")
    write_yaml(folder, record(id="b-yml"), "b.yml")
    write(folder / "notes.txt", "not a record")
    (folder / "images").mkdir()
    write(folder / "images" / "x.svg", "<svg/>")
    result = load_records([folder])
    assert result.errors == []
    assert [(source.name, event.slug) for source, event in result.events] == [
        ("a.yaml", "a-yaml"),
        ("b.yml", "b-yml"),
        ("c.json", "c-json"),
    ]


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    assert_located(only_error(path), path, None, None, says="cannot read")


# --- equal forms and the bundled examples ----------------------------------------------------


def test_json_and_yaml_forms_give_equal_events(tmp_path):
    yaml_path = write(
        tmp_path / "record.yaml",
        """\
id: same-event
title: Same event
date: 2021-08-30
publish_at: 2021-08-30T10:00:00+08:00
summary: One summary.
location: {venue: Beijing Botanical Garden, city: Beijing, country: cn}
body: |
  First paragraph.

  Second paragraph.
countries: [CN, br]
languages: [es, pt]
hashtags: [biodiversity, "#ANSO"]
links: [{title: ANSO, url: "http://www.anso.org.cn/"}]
contact: {name: ANSO Secretariat Communications, email: anso@cashq.ac.cn}
""",
    )
    json_path = write_json(
        tmp_path,
        {
            "id": "same-event",
            "title": "Same event",
            "date": "2021-08-30",
            "publish_at": "2021-08-30T02:00:00Z",
            "summary": "One summary.",
            "location": {"venue": "Beijing Botanical Garden", "city": "Beijing", "country": "CN"},
            "body": ["First paragraph.", "Second paragraph."],
            "countries": ["CN", "BR"],
            "languages": ["es", "pt"],
            "hashtags": ["#biodiversity", "#ANSO"],
            "links": [{"title": "ANSO", "url": "http://www.anso.org.cn/"}],
            "contact": {"name": "ANSO Secretariat Communications", "email": "anso@cashq.ac.cn"},
        },
    )
    [(_, from_yaml)] = load_records([yaml_path]).events
    [(_, from_json)] = load_records([json_path]).events
    assert from_yaml == from_json
    assert from_yaml.body == ["First paragraph.", "Second paragraph."]


@pytest.mark.parametrize("source", BUNDLED, ids=lambda p: p.stem)
def test_bundled_example_as_json_gives_an_equal_event(tmp_path, source):
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    shutil.copytree(EVENTS / "images", tmp_path / "images")  # a record's image is checked where it points
    json_path = write(tmp_path / f"{source.stem}.json", json.dumps(raw, default=lambda v: v.isoformat()))
    [(_, from_yaml)] = load_records([source]).events
    [(_, from_json)] = load_records([json_path]).events
    assert from_yaml == from_json
    assert from_yaml.fingerprint() == from_json.fingerprint()


def test_bundled_examples_load_cleanly():
    assert len(BUNDLED) == 4
    result = load_records([EVENTS])
    assert [str(e) for e in result.errors] == []
    assert [source for source, _ in result.events] == BUNDLED
    for source, event in result.events:
        assert isinstance(event, Event)
        assert event.id == source.stem
        assert event.slug == event.id
        assert event.location and event.organizers and event.quotes and event.countries
        assert 3 <= len(event.body) <= 5
        assert event.contact and event.contact.email == "anso@cashq.ac.cn"
        assert all(link.url.scheme in ("http", "https") for link in event.links)
        if event.image is not None:
            assert (source.parent / event.image.url).is_file()
            assert event.image.alt
    events = [event for _, event in result.events]
    assert any(event.publish_at is not None for event in events)
    assert any(event.image is not None for event in events)
