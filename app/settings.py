"""Configuration from the environment (`SIGNALSMITH_*`), with embedded defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./signalsmith.db"


class Settings(BaseSettings):
    """Every knob of the service. Unset values fall back to the embedded default."""

    model_config = SettingsConfigDict(env_prefix="SIGNALSMITH_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    #: arq queue (and key prefix) this deployment uses on Redis.
    queue_name: str = "signalsmith:queue"
    #: Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
    secret_key: str | None = None
    allow_private_destinations: bool = False
    source_files_dir: Path | None = None
    log_level: str = "INFO"
    graphql_introspection: bool = True
    #: Comma-separated origins (`https://console.example.com`, or `*`) a browser may open
    #: subscriptions from; empty: same-origin pages and clients that send no Origin.
    allowed_origins: str = ""
    #: Seconds between keep-alive pings on subscription sockets.
    ws_keepalive_seconds: float = Field(default=15.0, gt=0)
    #: A follower re-reads the table after this many quiet seconds (a lost pub/sub message).
    events_quiet_seconds: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: A run still going after this many seconds stops after its current batch and fails
    #: with `error.code = "timeout"` (what was acknowledged stays recorded).
    run_timeout_seconds: float = Field(default=6 * 3600.0, gt=0)

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(
            o.strip().rstrip("/") for o in self.allowed_origins.split(",") if o.strip()
        )

    @property
    def sqlite_path(self) -> Path | None:
        """The metadata file when the database is SQLite, else None."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            return None
        return Path(url.database).resolve()

    @property
    def data_dir(self) -> Path:
        """Folder beside the SQLite metadata file (or the working directory)."""
        path = self.sqlite_path
        return path.parent if path else Path.cwd()

    @property
    def resolved_source_files_dir(self) -> Path:
        return (self.source_files_dir or self.data_dir / "sources").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
