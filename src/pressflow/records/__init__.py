"""Event records: the one place communications staff describe an event.

A record is YAML or JSON (one record, or a list of records, per file). It is validated into an
`Event`; every problem becomes a `RecordError` naming the file, the record and the field, and a
batch keeps going past bad records so that the good ones still publish.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import json
import typing
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pycountry
import yaml
from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BeforeValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from slugify import slugify

from ..core.errors import RecordError, printable
from ..core.files import FileKindError, read_regular, resolve_inside
from .images import ImageError, read_image
from ..core.text_rules import check_text, problem, visible

MAX_FILE_BYTES = 2_000_000
# Every text field must fit a press release; a 1 MB "summary" is a mistake, not a summary.
SHORT_TEXT = 300
LONG_TEXT = 5_000
ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$"
# What text may hold is text_rules' one rule (it refuses private-use characters, so the
# templates' do-not-translate marks \ue000 and \ue001, render.KEEP_OPEN/KEEP_CLOSE, never come
# from a record).


def _one_line_text(value: str) -> str:
    # text_rules decides what any text may hold (controls, noncharacters, bidi controls,
    # invisible characters); this field also refuses line breaks.
    return unicodedata.normalize("NFC", check_text(value, one_line=True))


def _no_control_chars(value: str) -> str:
    return unicodedata.normalize("NFC", check_text(value))


Line = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SHORT_TEXT), AfterValidator(_one_line_text)
]
Text = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LONG_TEXT), AfterValidator(_no_control_chars)
]


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        hint = _country_hint(value.strip())
        raise ValueError(f"'{_one_line(code)[:60]}' is not an ISO 3166-1 alpha-2 country code{hint}")
    return code


def _country_hint(value: str) -> str:
    """`; did you mean CN (China)?` for a country given by name, alpha-3 code or a near spelling."""
    try:
        country = pycountry.countries.lookup(value)  # names, official names, alpha-3, numeric
    except LookupError:
        close = difflib.get_close_matches(value.casefold(), _country_names(), n=1, cutoff=0.75)
        if not close:
            return ""
        country = pycountry.countries.get(alpha_2=_country_names()[close[0]])
    return f"; did you mean {country.alpha_2} ({country.name})?"


@functools.cache
def _country_names() -> dict[str, str]:
    names = {}
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            if name := getattr(country, attr, None):
                names[name.casefold()] = country.alpha_2
    return names


def _language(tag: str) -> str:
    tag = tag.strip().replace("_", "-")
    try:
        Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError):
        raise ValueError(f"'{tag}' is not a known language tag (BCP 47, e.g. 'es', 'pt', 'zh')") from None
    return tag


def _hashtag(tag: str) -> str:
    tag = tag.strip().lstrip("#")
    if not re.fullmatch(r"\w{1,100}", tag):
        raise ValueError(f"'#{tag}' is not a hashtag (letters, digits and _ only)")
    return "#" + tag


COUNTRY_HELP = "The country, as an ISO 3166-1 alpha-2 code: two letters, e.g. CN, PK, BR."
# The pattern is only in the JSON schema, so Prefect's form refuses 'CNN' before a run starts;
# `_country` (which also knows which two-letter codes exist) decides.
CountryCode = Annotated[
    str, AfterValidator(_country), WithJsonSchema({"type": "string", "pattern": r"^\s*[A-Za-z]{2}\s*$"})
]
LanguageTag = Annotated[str, AfterValidator(_language)]
Hashtag = Annotated[str, AfterValidator(_hashtag)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _phone(value: str) -> str:
    if not re.fullmatch(r"\+?[0-9][0-9 ().\-/]{3,38}[0-9](?: ?(?:ext\.?|x) ?[0-9]{1,6})?", value):
        raise ValueError(f"'{_one_line(value)[:60]}' is not a phone number (digits, spaces, + ( ) . - /, "
                         "e.g. '+86 10 6859 7521')")
    return value


Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=60), AfterValidator(_phone)]


def _city_names(value: Any) -> Any:
    """One line of the two forms' errors (pydantic would list what each form of the union refused)."""
    if isinstance(value, dict):
        if not value:
            raise ValueError("give the city's name, or its name per language (e.g. {en: Cairo, ar: القاهرة})")
        for tag, name in value.items():
            _language(str(tag))
            if not isinstance(name, str) or not name.strip() or len(name) > SHORT_TEXT \
                    or problem(name, one_line=True):
                raise ValueError(f"the name for '{tag}' must be one line of text (at most {SHORT_TEXT} characters)")
    return value


class Location(_Strict):
    """Where the event took place."""

    venue: Line | None = Field(None, description="The venue or host event, e.g. '2021 Pujiang Innovation Forum'.")
    city: Annotated[Line | dict[LanguageTag, Line], BeforeValidator(_city_names)] | None = Field(
        None, description="The city, e.g. 'Shanghai'; or its name per language, e.g. {en: Cairo, ar: القاهرة} "
        "(languages left out take the glossary's or the place registry's name).")
    country: CountryCode | None = Field(None, description=COUNTRY_HELP)

    def city_as_written(self, lang: str | None = None) -> str | None:
        """The city's name the record gives for `lang` (or its first name when it gives none)."""
        if self.city is None or isinstance(self.city, str):
            return self.city
        if lang is not None and lang in self.city:
            return self.city[lang]
        return next(iter(self.city.values()))


class Quote(_Strict):
    """Something a speaker said, quoted in the release."""

    speaker: Line = Field(description="Who said it, as the release should name them, e.g. 'Prof. CAO Jinghua'.")
    role: Line | None = Field(None, description="Their position, e.g. 'Executive Director of the ANSO Secretariat'.")
    text: Text = Field(description="The words quoted, without quotation marks.")


class Link(_Strict):
    """A related web page listed under the release."""

    title: Line = Field(description="The link's text, e.g. 'Forum programme'.")
    url: HttpUrl = Field(description="A full web address starting with http:// or https://.")


class Image(_Strict):
    """One picture for the release, published with it as a feed enclosure."""

    url: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] = Field(
        description="A web address (https://...), or a path relative to the record file (e.g. 'images/summit.jpg')."
    )
    alt: Line = Field(description="What the picture shows, for readers who cannot see it.")
    caption: Line | None = Field(None, description="The caption shown under the picture (translated with the release).")
    credit: Line | None = Field(None, description="Who made the picture, as it must be credited, e.g. 'Photo: ANSO/Li Wei'.")

    @field_validator("url")
    @classmethod
    def _url_or_relative_path(cls, value: str) -> str:
        # Published into `img src`, `og:image` and the JSON Feed: one line, nothing invisible.
        check_text(value, one_line=True)
        if re.match(r"^https?://", value):
            HttpUrl(value)
        elif ":" in value or "\\" in value or value.startswith("/") or ".." in Path(value).parts:
            raise ValueError("must be an http(s) URL or a path relative to the record file")
        return value


class Contact(_Strict):
    """Whom journalists should write to about the event."""

    name: Line = Field(description="The press contact's name or office.")
    email: EmailStr = Field(description="Their e-mail address.")
    phone: Phone | None = Field(None, description="Their phone number with the country code, e.g. '+86 10 6859 7521'.")


class Event(_Strict):
    """A validated event record (the contract in docs/records.md)."""

    # The descriptions are what the Prefect UI's form shows under each field: they say what a
    # value must look like, in the words a communications officer would use.
    title: Line = Field(description=f"The release's headline, one line (at most {SHORT_TEXT} characters).")
    subheadline: Line | None = Field(
        None, description="One line under the headline that adds to it (not the summary again).")
    date: dt.date = Field(description="The day the event took place, as YYYY-MM-DD (e.g. 2021-06-04).")
    summary: Text = Field(
        description=f"One paragraph saying what happened; it leads the release and the feed entry (at most {LONG_TEXT} characters)."
    )
    id: Annotated[str, StringConstraints(pattern=ID_PATTERN)] | None = Field(
        None,
        description="Optional stable name for URLs and folders: lowercase letters, digits and hyphens "
        "(e.g. 2021-06-04-global-health-summit). Left out, it is made from the date and title.",
    )
    publish_at: AwareDatetime | None = Field(
        None,
        description="Embargo: nothing is published before this moment. A date and time WITH a time zone, "
        "e.g. 2021-06-04T09:00:00+08:00 or 2021-06-04T01:00:00Z. Left out, it publishes once approved.",
    )
    location: Location | None = Field(None, description="Where the event took place.")
    organizers: list[Line] = Field(
        default_factory=list, max_length=50, description="The organizations that organized the event, one per entry."
    )
    body: list[Text] = Field(
        default_factory=list, max_length=100, description="The release's paragraphs after the summary, one per entry."
    )
    quotes: list[Quote] = Field(default_factory=list, max_length=50, description="Quotes from speakers.")
    countries: list[CountryCode] = Field(
        default_factory=list, max_length=250,
        description="Member countries involved, as ISO 3166-1 alpha-2 codes (CN, PK, BR, ...). "
        "Their official languages become the translation targets unless `languages` is given.",
    )
    languages: list[LanguageTag] | None = Field(
        default=None, max_length=100,
        description="Target languages as BCP 47 tags the translation models use (es, pt, zh, ...). "
        "Overrides the languages of `countries`; [] means English only.",
    )
    tags: list[Line] = Field(default_factory=list, max_length=50, description="Topics for feeds and pages, e.g. 'health'.")
    hashtags: list[Hashtag] = Field(
        default_factory=list, max_length=20,
        description="Hashtags for the social media posts, with or without '#': letters, digits and _ only.",
    )
    links: list[Link] = Field(default_factory=list, max_length=50, description="Related web pages.")
    image: Image | None = Field(None, description="A picture for the release.")
    contact: Contact | None = Field(None, description="The press contact for the event.")

    @field_validator("date")
    @classmethod
    def _plausible_date(cls, value: dt.date) -> dt.date:
        if not 1900 <= value.year <= 2200:
            raise ValueError(f"{value.isoformat()} is out of range (years 1900 to 2200)")
        return value

    @field_validator("publish_at")
    @classmethod
    def _representable_moment(cls, value: dt.datetime | None) -> dt.datetime | None:
        # Every writer (the store, feeds, sitemaps, the embargo message) converts to UTC: a
        # moment whose UTC year is 0 or 10000 cannot be, and one far out is a typing mistake.
        if value is None:
            return value
        try:
            utc = value.astimezone(dt.timezone.utc)
        except (OverflowError, ValueError):
            utc = None
        if utc is None or not 1900 <= utc.year <= 2200 or not 1900 <= value.year <= 2200:
            raise ValueError(f"{value.isoformat()} is out of range (years 1900 to 2200), "
                             "e.g. publish_at: 2021-06-04T09:00:00+08:00")
        return value

    @field_validator("body", mode="before")
    @classmethod
    def _paragraphs(cls, value: Any) -> Any:
        # A body written as one YAML block becomes paragraphs split on blank lines.
        if isinstance(value, str):
            return [p for p in re.split(r"\n\s*\n", value) if p.strip()]
        return value

    @property
    def slug(self) -> str:
        """The release's stable name in URLs and folders; safe as one path component."""
        return self.id or slugify(f"{self.date.isoformat()} {self.title}", max_length=80, word_boundary=True)

    def fingerprint(self) -> str:
        """A hash of the record's content: unchanged records are recognised on re-runs.

        Fields left at their defaults are left out, so that adding an optional field to the
        record model changes no stored record's fingerprint (and translates nothing again)."""
        import hashlib

        return hashlib.sha256(self.model_dump_json(exclude_defaults=True).encode()).hexdigest()[:16]


def record_fingerprint(record: dict) -> str | None:
    """The fingerprint of a stored record (its JSON dump); None when it no longer validates."""
    try:
        return Event.model_validate(record).fingerprint()
    except ValidationError:
        return None


@dataclass
class LoadResult:
    """What a batch load produced: good events (with their source file) and the errors."""

    events: list[tuple[Path, Event]] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)


class _NoAliasLoader(yaml.SafeLoader):
    """YAML without anchors/aliases: a "billion laughs" record is refused, not expanded."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"aliases are not allowed in records (line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        # PyYAML lets the last of two equal keys win silently; a record with two `title:` lines
        # is a mistake its author wants to hear about.
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{_one_line(str(key))[:60]}' on line {line} "
                                f"(the first is on line {seen[key]}); keep one of them")
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


_NoAliasLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "yYnNoO":
    _NoAliasLoader.yaml_implicit_resolvers[_first] = [
        (tag, regexp) for tag, regexp in _NoAliasLoader.yaml_implicit_resolvers.get(_first, []) if tag != "tag:yaml.org,2002:bool"
    ]
_NoAliasLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _one_line(text: str) -> str:
    return " ".join(visible(text).split())


def _reject_duplicate_json_keys(pairs: list[tuple[str, Any]]) -> dict:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"duplicate key '{_one_line(key)[:60]}'")
    return dict(pairs)


MAX_DEPTH = 64  # a record is 4 levels deep; the interpreter's recursion limit varies (torch raises it)


def _too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return False


def _parse_file(path: Path) -> Any:
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileKindError as exc:
        raise RecordError(str(path), str(exc)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(str(path), f"not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text, object_pairs_hook=_reject_duplicate_json_keys)
        else:
            raw = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - safe loader subclass
        if _too_deep(raw):
            raise RecursionError
        return raw
    except RecursionError:
        raise RecordError(str(path), "nested too deeply to be an event record") from None
    except yaml.MarkedYAMLError as exc:
        raise RecordError(str(path), _yaml_message(exc, text)) from None
    except (json.JSONDecodeError, yaml.YAMLError, ValueError) as exc:
        raise RecordError(str(path), f"not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {_one_line(str(exc))}") from None


def _yaml_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    """A YAML syntax error as its author can act on it: the line that is wrong, and how to fix it."""
    problem = str(exc.problem or exc.context or "")
    if "'\\t'" in problem and exc.problem_mark:  # PyYAML writes the tab as backslash-t
        mark = exc.problem_mark
        return (f"not valid YAML: a tab character on line {mark.line + 1}, column {mark.column + 1}; "
                "YAML indents with spaces only: replace the tab with spaces")
    if "could not find expected ':'" in problem and exc.context_mark:
        # PyYAML notices the missing ':' where the next key starts, often lines later (at the end
        # of a long summary); the line it was reading is the one to fix.
        line = exc.context_mark.line
        shown = _one_line(text.splitlines()[line])[:60] if line < len(text.splitlines()) else ""
        return (f"not valid YAML: line {line + 1} ('{shown}') has no ':' after its field name; "
                "write it as `field: value`, e.g. date: 2021-06-04")
    mark = exc.problem_mark or exc.context_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return f"not valid YAML: {_one_line(problem)}{where}"


def _field_path(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not str(p).startswith("function-")) or "(record)"


FIELDS_DOC = "docs/records.md"


# A correct example of each field, shown when a value is missing or of the wrong shape: staff
# fix a record by copying what a right one looks like, not by reading a type's name.
EXAMPLES = {
    "title": "title: Water Forum in Tashkent",
    "date": "date: 2021-06-04",
    "summary": "summary: Scientists from twelve countries met to discuss water security.",
    "publish_at": "publish_at: 2021-06-04T09:00:00+08:00",
    "countries": "countries: [PT, BR]",
    "languages": "languages: [pt, es]",
    "organizers": "organizers: [ANSO, Chinese Academy of Sciences]",
    "tags": "tags: [water, health]",
    "hashtags": "hashtags: [WaterForum]",
    "body": "body: [First paragraph., Second paragraph.]",
    "quotes": "quotes: [{speaker: Prof. CAO Jinghua, text: We met.}]",
    "links": "links: [{title: Forum programme, url: https://example.org/programme}]",
    "url": "url: https://example.org/programme",
    "image": "image: {url: images/summit.jpg, alt: Delegates at the summit}",
    "location": "location: {city: Tashkent, country: UZ}",
    "contact": "contact: {name: Press office, email: press@example.org}",
    "speaker": "speaker: Prof. CAO Jinghua",
    "alt": "alt: Delegates at the summit",
    "name": "name: Press office",
    "email": "email: press@example.org",
}


def _example(loc: tuple) -> str:
    named = next((str(part) for part in reversed(loc) if isinstance(part, str)), "")
    return f", e.g. {EXAMPLES[named]}" if named in EXAMPLES else ""


def _message(error: dict) -> str:
    kind, loc, given = error["type"], error["loc"], error.get("input")
    if kind == "extra_forbidden":
        hint = _nearest_field(loc)
        return f"unknown field{hint} (the record fields are listed in {FIELDS_DOC})"
    if kind == "missing":
        return f"is required but missing{_example(loc)}"
    if kind == "timezone_aware":
        return ("has no timezone offset, so nobody can tell when the embargo ends; add one, "
                "e.g. publish_at: 2021-06-04T09:00:00+08:00 (or 2021-06-04T01:00:00Z for UTC)")
    if kind.startswith(("date_", "datetime_")) and isinstance(given, str):
        shown = _one_line(given)[:40]
        if re.fullmatch(r"\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\s*", given):
            return f"'{shown}' is not a valid date: day/month or month/day? write it as YYYY-MM-DD{_example(loc)}"
        if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", given):
            reason = error["msg"].split(", ", 1)[-1]  # pydantic's detail: which part is out of range
            return f"'{shown}' is not a valid date ({reason}){_example(loc)}"
        return f"'{shown}' is not a valid date: write it as YYYY-MM-DD{_example(loc)}"
    if kind == "list_type":
        return f"should be a list in square brackets (or one '- ' line per entry){_example(loc)}"
    if kind in ("url_parsing", "url_scheme") and isinstance(given, str):
        shown = _one_line(given)[:60]
        fixed = f" https://{shown}" if re.match(r"^[\w-]+(\.[\w-]+)+(/|$)", given.strip()) else ""
        return (f"'{shown}' is not a full web address; start it with http:// or https://"
                + (f", e.g. url:{fixed}" if fixed else _example(loc)))
    return error["msg"].removeprefix("Value error, ")


def _nearest_field(loc: tuple) -> str:
    """`; did you mean 'summary'?` for a misspelt field, from the fields allowed where it stands."""
    model: type[BaseModel] | None = Event
    for part in loc[:-1]:
        if model is None:
            return ""
        if isinstance(part, str) and part in model.model_fields:
            model = _model_in(model.model_fields[part].annotation)
    if model is None or not isinstance(loc[-1], str):
        return ""
    close = difflib.get_close_matches(loc[-1].casefold(), list(model.model_fields), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The record model inside a field's type (`Location | None`, `list[Quote]`), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((m for arg in typing.get_args(annotation) if (m := _model_in(arg))), None)


def _record_name(raw: Any, index: int, count: int) -> str | None:
    name = raw.get("id") or raw.get("title") if isinstance(raw, dict) else None
    label = f"'{_one_line(name)[:60]}'" if isinstance(name, str) else None
    if count > 1:
        return f"#{index + 1}" + (f" {label}" if label else "")
    return label


def validate_record(raw: Any, *, file: str = "<record>", index: int = 0, count: int = 1) -> Event:
    """Validate one raw record; raise `RecordError` for its first problem, fully located."""
    record = _record_name(raw, index, count)
    if not isinstance(raw, dict):
        raise RecordError(file, "a record must be a mapping of fields", record=record)
    try:
        return Event.model_validate(raw)
    except ValidationError as exc:
        problems = [(_field_path(e["loc"]), _message(e)) for e in exc.errors()]
        first_field, first_message = problems[0]
        others = "".join(f"; field '{printable(f)}': {m}" for f, m in problems[1:])
        raise RecordError(file, first_message + others, record=record, field=first_field) from None
    except RecursionError:
        raise RecordError(file, "nested too deeply", record=record) from None


def load_records(paths: list[Path]) -> LoadResult:
    """Load every record of every file (directories: their *.yaml, *.yml, *.json)."""
    result = LoadResult()
    seen: dict[str, Path] = {}
    for path in _expand(paths):
        try:
            raw = _parse_file(path)
        except RecordError as exc:
            result.errors.append(exc)
            continue
        except OSError as exc:
            result.errors.append(RecordError(str(path), f"cannot read: {exc.strerror}"))
            continue
        items = raw if isinstance(raw, list) else [raw]
        for index, item in enumerate(items):
            try:
                event = validate_record(item, file=str(path), index=index, count=len(items))
                check_local_image(event, path, record=_record_name(item, index, len(items)))
            except RecordError as exc:
                result.errors.append(exc)
                continue
            if event.slug in seen:
                result.errors.append(
                    RecordError(str(path), f"duplicate id '{event.slug}' (also in {printable(seen[event.slug])})",
                                record=_record_name(item, index, len(items)), field="id")
                )
                continue
            seen[event.slug] = path
            result.events.append((path, event))
    return result


def check_local_image(event: Event, path: Path, *, record: str | None = None) -> None:
    """A record's image file must be there, inside the record's folder, and a real image.

    Checked when the record is loaded, so the author hears of it at prepare time rather than
    finding the release published without its image. Publishing checks the content again.
    """
    if event.image is None or re.match(r"^https?://", event.image.url):
        return
    url = event.image.url

    def error(message: str) -> RecordError:
        return RecordError(str(path), message, record=record, field="image.url")

    image = resolve_inside(path.parent, url)
    if image is None:
        raise error(f"'{printable(url)}' leads outside the record's folder (through a symbolic link); "
                    "put the image itself next to the record")
    if not image.exists():
        raise error(f"no image file '{printable(url)}' next to the record")
    try:
        read_image(image)
    except ImageError as exc:
        raise error(f"'{printable(url)}': {exc}") from None
    except OSError as exc:
        raise error(f"'{printable(url)}': cannot read: {exc.strerror}") from None


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in (".yaml", ".yml", ".json"))
        else:
            files.append(path)
    return files
