"""Record errors a communications officer can act on: the field, and a correct example."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pressflow.cli import app
from pressflow.records import load_records

CASES = {
    "missing-date.yaml": ("title: A\nsummary: B\n", "field 'date': is required but missing, e.g. date: 2021-06-04"),
    "naive.yaml": ("title: A\ndate: 2021-06-04\nsummary: B\npublish_at: 2021-06-04T09:00:00\n",
                   "field 'publish_at': has no timezone offset, so nobody can tell when the embargo ends; add one, "
                   "e.g. publish_at: 2021-06-04T09:00:00+08:00"),
    "slashes.yaml": ("title: A\ndate: 10/12/2026\nsummary: B\n",
                     "field 'date': '10/12/2026' is not a valid date: day/month or month/day? write it as YYYY-MM-DD"),
    "words.yaml": ("title: A\ndate: June 4th\nsummary: B\n", "'June 4th' is not a valid date: write it as YYYY-MM-DD, e.g. date: 2021-06-04"),
    "countries.yaml": ("title: A\ndate: 2021-06-04\nsummary: B\ncountries: PT\n",
                       "field 'countries': should be a list in square brackets (or one '- ' line per entry), "
                       "e.g. countries: [PT, BR]"),
    "www.yaml": ("title: A\ndate: 2021-06-04\nsummary: B\nlinks:\n  - title: X\n    url: www.example.org\n",
                 "field 'links.0.url': 'www.example.org' is not a full web address; start it with http:// or "
                 "https://, e.g. url: https://www.example.org"),
    "tab.yaml": ("title: A\ndate: 2021-06-04\nsummary: B\ntags:\n\t- x\n",
                 "not valid YAML: a tab character on line 5, column 1; YAML indents with spaces only"),
    "colon.yaml": ("title: A\ndate 2021-06-04\nsummary: " + "A long summary. " * 20 + "\ntags: [x]\nlanguages: []\n",
                   "not valid YAML: line 2 ('date 2021-06-04') has no ':' after its field name; "
                   "write it as `field: value`"),
}


@pytest.mark.parametrize("name", CASES)
def test_each_error_names_the_field_and_shows_a_correct_example(tmp_path, name):
    text, words = CASES[name]
    (tmp_path / name).write_text(text)
    [error] = load_records([tmp_path / name]).errors
    assert words in str(error) and "\n" not in str(error), str(error)
    assert "Input should" not in str(error) and "Field required" not in str(error)


def test_a_record_with_no_countries_and_no_languages_says_it_is_published_in_english_only(tmp_path, no_prefect_server):
    (tmp_path / "plain.yaml").write_text("id: plain\ntitle: A\ndate: 2021-06-04\nsummary: B\n")
    (tmp_path / "chosen.yaml").write_text("id: chosen\ntitle: C\ndate: 2021-06-04\nsummary: D\nlanguages: []\n")
    result = CliRunner().invoke(app, ["prepare", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    [plain] = [line for line in result.stdout.splitlines() if line.startswith("prepared plain")]
    assert "it will be published in en only: the record names no countries and no languages" in plain
    [chosen] = [line for line in result.stdout.splitlines() if line.startswith("prepared chosen")]
    assert "only" not in chosen  # `languages: []` chose English only
