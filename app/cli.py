"""The `signalsmith` command line (DESIGN §3.1)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import uuid
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
    _add_runs_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "runs":
        return _runs(args)

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


def _add_runs_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`runs trigger` and `runs follow`: clients of a running server (see app.cli_runs)."""
    runs = commands.add_parser("runs", help="trigger and follow runs on a running server")
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument(
        "--url",
        default=os.environ.get("SIGNALSMITH_URL", "http://127.0.0.1:8000"),
        help="the server (default: $SIGNALSMITH_URL or http://127.0.0.1:8000)",
    )
    client.add_argument(
        "--token",
        help="API token; prefer SIGNALSMITH_TOKEN (a flag shows in the process list and history)",
    )
    actions = runs.add_subparsers(dest="action", required=True)
    trigger = actions.add_parser("trigger", parents=[client], help="queue a run of a sync")
    trigger.add_argument("sync_id", type=uuid.UUID, metavar="SYNC_ID")
    trigger.add_argument("--workspace", type=uuid.UUID, required=True, metavar="WORKSPACE_ID")
    trigger.add_argument("--follow", action="store_true", help="show its progress until it ends")
    trigger.add_argument("--full-resync", action="store_true")
    trigger.add_argument("--dry-run", action="store_true")
    follow = actions.add_parser("follow", parents=[client], help="show a run's progress")
    follow.add_argument("run_id", type=uuid.UUID, metavar="RUN_ID")


def _runs(args: argparse.Namespace) -> int:
    from app import cli_runs

    token = args.token or os.environ.get("SIGNALSMITH_TOKEN")
    if args.action == "follow":
        return cli_runs.follow(url=args.url, token=token, run_id=args.run_id)
    return cli_runs.trigger(
        url=args.url,
        token=token,
        workspace_id=args.workspace,
        sync_id=args.sync_id,
        follow=args.follow,
        full_resync=args.full_resync,
        dry_run=args.dry_run,
    )


def _migrate(settings: Settings) -> int:
    from app.db import migrate

    migrate(settings.database_url)
    print(json.dumps({"migrated": True}))
    return 0


def _serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    from app.asgi import create_app
    from app.db import migrate
    from app.websocket_protocol import LeanWebSocketProtocol

    migrate(settings.database_url)
    app = create_app(settings, with_scheduler=True)
    _tune_garbage_collection()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # websockets-sansio, holding less per open socket (app.websocket_protocol).
        ws=LeanWebSocketProtocol,
        # Run events are small JSON messages: compressing them saves little and costs
        # tens of KB of zlib state per subscriber socket, and CPU per message.
        ws_per_message_deflate=False,
    )
    return 0


def _tune_garbage_collection() -> None:
    """A server holding thousands of sockets: what startup built is never collected again
    (`gc.freeze`), and young collections run every 50 000 allocations rather than 700, so
    the objects of events in flight to many subscribers die young instead of being promoted
    and swept by full collections (bench/fanout.py: 12 s of 22 s of CPU before)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


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
