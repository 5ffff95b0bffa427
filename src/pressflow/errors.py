"""One exception type per kind of failure, each able to say where it happened.

The CLI renders any `PressflowError` as one readable line; tracebacks only with `--debug`.
"""

from __future__ import annotations


class PressflowError(Exception):
    """Base class: a failure a user can act on."""


class RecordError(PressflowError):
    """An event record is invalid: names the file, the record and the field."""

    def __init__(self, file: str, message: str, *, record: str | None = None, field: str | None = None):
        self.file, self.record, self.field, self.message = file, record, field, message
        where = file
        if record:
            where += f": record {record}"
        if field:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}")


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
