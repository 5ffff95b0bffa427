"""Settings in one place, read from the environment (PRESSFLOW_*) with sensible defaults.

Flows, the CLI and the review app all take a `Settings`, so a test or a deployment can point
the whole pipeline somewhere else without touching globals.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

# The repository checkout (editable install): where `templates/` and `events/` live.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"PRESSFLOW_{name}", default)


class Settings(BaseModel):
    """Where things are and who publishes them."""

    out_dir: Path = Field(default_factory=lambda: Path(_env("OUT", "outputs")))
    database_url: str | None = Field(default_factory=lambda: os.environ.get("PRESSFLOW_DATABASE_URL"))
    templates_dir: Path = Field(default_factory=lambda: Path(_env("TEMPLATES", str(PROJECT_ROOT / "templates"))))
    countries_file: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("PRESSFLOW_COUNTRIES")) else None
    )
    glossary_file: Path | None = Field(
        default_factory=lambda: Path(p) if (p := os.environ.get("PRESSFLOW_GLOSSARY")) else None
    )
    source_language: str = Field(default_factory=lambda: _env("SOURCE_LANGUAGE", "en"))
    site_url: str = Field(default_factory=lambda: _env("SITE_URL", "http://127.0.0.1:8000").rstrip("/"))
    organization: str = Field(default_factory=lambda: _env("ORGANIZATION", "ANSO"))
    # tag URI authority for feed entry ids (RFC 4151): a domain the publisher owns, and a date
    # it owned it on. Changing either changes every entry id, so subscribers see duplicates.
    tag_authority: str = Field(default_factory=lambda: _env("TAG_AUTHORITY", "anso.org.cn,2021"))
    auto_approve_source: bool = Field(
        default_factory=lambda: _env("AUTO_APPROVE_SOURCE", "1") not in ("0", "false", "no")
    )
    feed_limit: int = Field(default_factory=lambda: int(_env("FEED_LIMIT", "50")))
    # Releases translated together. Each chunk is planned, translated and stored before the
    # next, so prepare's memory follows the chunk (~0.5 MB a release in 8 languages), not the
    # batch; 200 releases still fill hundreds of model batches, so batching loses nothing.
    chunk_releases: int = Field(default_factory=lambda: int(_env("CHUNK_RELEASES", "200")), ge=1)

    @property
    def db_url(self) -> str:
        """The draft store: SQLite inside the output folder unless a URL is configured."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.out_dir / 'state' / 'pressflow.db').resolve()}"

    def with_out(self, out_dir: Path | str | None) -> "Settings":
        return self if out_dir is None else self.model_copy(update={"out_dir": Path(out_dir)})
