"""Source URLs: which SQLAlchemy URLs a source may have, and where file sources may live."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.errors import InvalidInput
from app.settings import Settings
from models.enums import SourceType

#: The SQLAlchemy backend each source type must name.
BACKENDS = {
    SourceType.postgres: "postgresql",
    SourceType.sqlite: "sqlite",
    SourceType.duckdb: "duckdb",
}
FILE_SOURCES = (SourceType.sqlite, SourceType.duckdb)
IN_MEMORY = (None, "", ":memory:")


def parse_source_url(settings: Settings, source_type: SourceType, raw_url: str) -> URL:
    """The SQLAlchemy URL, checked against the type and, for file sources, the sources folder.

    A file source's `database` comes back as the resolved absolute path (links followed), so a
    path that leaves the folder through `..` or a symbolic link is refused (DESIGN §9).
    """
    try:
        url = make_url(raw_url)
    except (ArgumentError, ValueError):
        raise InvalidInput.field("config.url", "not a valid SQLAlchemy URL") from None
    if url.get_backend_name() != BACKENDS[source_type]:
        raise InvalidInput.field(
            "config.url", f"a {source_type.value} source needs a {BACKENDS[source_type]}:// URL"
        )
    if source_type in FILE_SOURCES and url.database not in IN_MEMORY:
        path = source_file_path(settings.resolved_source_files_dir, url.database or "")
        url = url.set(database=str(path))
    return url


def source_file_path(base: Path, database: str) -> Path:
    """`database` resolved under `base`; an InvalidInput if it lies anywhere else."""
    if "\x00" in database:
        raise InvalidInput.field("config.url", "the file path contains a NUL character")
    path = Path(database)
    resolved = (path if path.is_absolute() else base / path).resolve()
    if not resolved.is_relative_to(base):
        raise InvalidInput.field("config.url", f"file sources must lie under {base}")
    return resolved
