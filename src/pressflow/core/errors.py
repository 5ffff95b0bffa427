"""One exception type per kind of failure, each able to say where it happened.

The CLI renders any `PressflowError` as one readable line; tracebacks only with `--debug`.
"""

from __future__ import annotations

import os
import unicodedata


def printable(name: str | os.PathLike) -> str:
    """A file or field name as it can appear inside a one-line message.

    Names are shown as they are, unless they hold a line break, a control or another invisible
    format character: then they are quoted with Python's escapes (`'x\\nprepared y.yaml'`), so a
    crafted file name can never start a second line that reads like another message.
    """
    text = os.fsdecode(name)
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in text):
        return repr(text)
    return text


def one_line(message: str) -> str:
    """A whole message made one line, for the CLI edge: escapes whatever a caller did not."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Zl", "Zp") else repr(c)[1:-1] for c in message)


class PressflowError(Exception):
    """Base class: a failure a user can act on."""


class RecordError(PressflowError):
    """An event record is invalid: names the file, the record and the field."""

    def __init__(self, file: str, message: str, *, record: str | None = None, field: str | None = None):
        self.file, self.record, self.field, self.message = file, record, field, message
        where = printable(file)
        if record:
            where += f": record {record}"
        if field:
            shown = printable(field)
            where += f": field {shown if shown != field else repr(field)}"
        super().__init__(f"{where}: {message}")


class ConfigError(PressflowError):
    """A setting cannot be used: names the setting and what to do about it."""


class ModelMissingError(PressflowError):
    """No installed translation model covers a language pair."""

    def __init__(self, source: str, target: str):
        self.source, self.target = source, target
        super().__init__(
            f"no translation model installed for {source}->{target}; "
            f"install one with: pressflow models install {source} {target}"
        )


class ModelLoadError(PressflowError):
    """An installed model cannot be opened: every sentence for its pair would fail."""


class TranslationError(PressflowError):
    """The model failed on a sentence: the documents holding it cannot be translated."""


class ModelInstallError(PressflowError):
    """A model could not be installed (offline, unknown pair, bad file)."""


class TemplateError(PressflowError):
    """A template failed to render (missing variable, syntax error, sandbox violation)."""


class ReviewError(PressflowError):
    """A review action is not possible (unknown draft, wrong status, edit conflict)."""


class PublishError(PressflowError):
    """Publishing a release or language failed."""


class LockWaitTimeout(PressflowError):
    """Another run held a store's lock for longer than this one may wait."""


class ExchangeError(PressflowError):
    """A file to import cannot be taken (stale, not ours, unreadable): nothing was saved."""
