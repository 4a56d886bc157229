"""Source URLs: the type's backend, and file sources only under the sources folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.errors import InvalidInput
from app.settings import Settings
from app.sources.urls import parse_source_url
from models.enums import SourceType


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "sources" / "nested").mkdir(parents=True)
    return Settings(source_files_dir=tmp_path / "sources")


@pytest.mark.parametrize(
    ("source_type", "url", "relative"),
    [
        (SourceType.sqlite, "sqlite:///crm.db", "crm.db"),
        (SourceType.sqlite, "sqlite:///nested/../crm.db", "crm.db"),
        (SourceType.duckdb, "duckdb:///nested/warehouse.duckdb", "nested/warehouse.duckdb"),
    ],
)
def test_file_paths_resolve_under_the_folder(
    settings: Settings, source_type: SourceType, url: str, relative: str
) -> None:
    parsed = parse_source_url(settings, source_type, url)
    assert parsed.database == str(settings.resolved_source_files_dir / relative)


def test_an_absolute_path_inside_the_folder_is_fine(settings: Settings) -> None:
    inside = settings.resolved_source_files_dir / "nested" / "a.db"
    assert parse_source_url(settings, SourceType.sqlite, f"sqlite:///{inside}").database == str(
        inside
    )


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///../outside.db",
        "sqlite:///nested/../../outside.db",
        "sqlite:////etc/passwd",
        "sqlite:///a\x00b",
    ],
)
def test_paths_out_of_the_folder_are_refused(settings: Settings, url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_source_url(settings, SourceType.sqlite, url)
    assert caught.value.details[0].field == "config.url"


def test_a_link_out_of_the_folder_is_refused(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "secret.db").write_bytes(b"")
    (settings.resolved_source_files_dir / "link.db").symlink_to(tmp_path / "secret.db")
    with pytest.raises(InvalidInput):
        parse_source_url(settings, SourceType.sqlite, "sqlite:///link.db")


@pytest.mark.parametrize(
    ("source_type", "url", "message"),
    [
        (SourceType.sqlite, "postgresql://u@h/db", "needs a sqlite:// URL"),
        (SourceType.postgres, "sqlite:///x.db", "needs a postgresql:// URL"),
        (SourceType.duckdb, "sqlite:///x.db", "needs a duckdb:// URL"),
        (SourceType.postgres, "not a url", "not a valid SQLAlchemy URL"),
    ],
)
def test_the_url_must_match_the_type(
    settings: Settings, source_type: SourceType, url: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_source_url(settings, source_type, url)
    assert message in caught.value.details[0].message


def test_memory_and_server_urls_pass_unchanged(settings: Settings) -> None:
    assert (
        parse_source_url(settings, SourceType.duckdb, "duckdb:///:memory:").database == ":memory:"
    )
    url = parse_source_url(settings, SourceType.postgres, "postgresql+asyncpg://u:p@h:5/db")
    assert url.render_as_string(hide_password=False) == "postgresql+asyncpg://u:p@h:5/db"
