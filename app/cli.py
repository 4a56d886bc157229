"""The `signalsmith` command line (DESIGN §3.1)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from app.settings import Settings, get_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signalsmith", description="Audience activation service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="migrate, then serve the APIs")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    commands.add_parser("worker", help="run an arq worker (needs SIGNALSMITH_REDIS_URL)")
    commands.add_parser("migrate", help="apply database migrations")
    boot = commands.add_parser("bootstrap", help="create a workspace, an admin and a token")
    boot.add_argument("--workspace", required=True)
    boot.add_argument("--email", required=True)
    commands.add_parser("rotate-keys", help="re-encrypt stored credentials under the first key")
    args = parser.parse_args(argv)

    settings = get_settings()
    from app.logging import configure_logging

    configure_logging(settings.log_level)
    handler = {
        "serve": lambda: _serve(settings, args.host, args.port),
        "worker": lambda: _worker(settings),
        "migrate": lambda: _migrate(settings),
        "bootstrap": lambda: _bootstrap(settings, args.workspace, args.email),
        "rotate-keys": lambda: _rotate(settings),
    }[args.command]
    return handler()


def _migrate(settings: Settings) -> int:
    from app.db import migrate

    migrate(settings.database_url)
    print(json.dumps({"migrated": True}))
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from app.asgi import create_app
    from app.db import migrate

    migrate(settings.database_url)
    uvicorn.run(
        create_app(settings, with_scheduler=True),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
    )
    return 0


def _worker(settings: Settings) -> int:
    if not settings.redis_url:
        print(
            "signalsmith worker needs SIGNALSMITH_REDIS_URL (without it, runs execute "
            "inside `signalsmith serve`)",
            file=sys.stderr,
        )
        return 2
    from arq import run_worker

    from jobs.worker import worker_settings

    run_worker(worker_settings(settings))
    return 0


def _bootstrap(settings: Settings, workspace: str, email: str) -> int:
    from app.db import Database, migrate
    from app.errors import AppError
    from app.services.workspaces import bootstrap

    migrate(settings.database_url)

    async def run() -> dict[str, str]:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                done = await bootstrap(session, workspace_name=workspace, email=email)
                return {
                    "workspace_id": str(done.workspace.id),
                    "account_id": str(done.account.id),
                    "token": done.token,
                }
        finally:
            await database.dispose()

    try:
        print(json.dumps(asyncio.run(run())))
    except AppError as exc:
        print(f"signalsmith bootstrap: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _rotate(settings: Settings) -> int:
    from app.crypto import CredentialCipher, load_keys
    from app.db import Database
    from app.services.credentials import rotate_credentials

    async def run() -> int:
        database = Database(settings.database_url)
        try:
            async with database.session() as session:
                return await rotate_credentials(session, CredentialCipher(load_keys(settings)))
        finally:
            await database.dispose()

    print(json.dumps({"rotated": asyncio.run(run())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
