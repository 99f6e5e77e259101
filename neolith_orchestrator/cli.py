"""`neolith-orchestrator`: serve the app, migrate, create organizations and users, seed the
demo, and show the daemons of a running server.

Exit codes: 0 success, 1 failure (the message is on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from neolith_orchestrator.config import Settings, load_settings
from neolith_orchestrator.errors import OrchestratorError, ValidationFailed

DEFAULT_URL = "http://127.0.0.1:8080"
EPILOG = (
    "Settings come from .env.orchestrator and the environment (DATABASE_URL, "
    "ANTHROPIC_API_KEY, ...); see .env.orchestrator.example."
)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _settings(**overrides: Any) -> Settings:
    return load_settings(**{k: v for k, v in overrides.items() if v is not None})


async def _with_database(
    settings: Settings, step: Callable[[Any], Coroutine[Any, Any, Any]]
) -> Any:
    from neolith_orchestrator.db import migrate
    from neolith_orchestrator.db.engine import Database

    database = Database(settings)
    try:
        await migrate.upgrade(database)
        return await step(database)
    finally:
        await database.dispose()


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from neolith_orchestrator.app import create_app
    from neolith_orchestrator.daemons.manager import get_daemon_manager
    from neolith_orchestrator.demo import describe, seed_demo, sign_in_orchestrator

    settings = _settings(host=args.host, port=args.port)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def prepare(database: Any) -> str | None:
        if not args.demo:
            return None
        users = await seed_demo(database)
        await sign_in_orchestrator(database, timedelta(milliseconds=settings.auth_session_ttl))
        return describe(users, online=True)

    credentials = _run(_with_database(settings, prepare))
    if credentials:
        print(credentials, flush=True)
    app = create_app(settings, manager=get_daemon_manager(settings))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=max(5, settings.daemon_stop_grace // 1000 + 5),
    )
    server = uvicorn.Server(config)
    print(f"serving on http://{settings.host}:{settings.port}", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal with the
    # handlers it found: make that a clean exit, since the stop was asked for and done.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn exits when the app fails to start
        if exc.code not in (0, None):
            raise OrchestratorError("the server failed to start (see the log above)") from None
    return 0


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def cmd_migrate(args: argparse.Namespace) -> int:
    async def nothing(database: Any) -> None:
        return None

    settings = _settings()
    _run(_with_database(settings, nothing))
    print(f"database is up to date ({settings.database_url.split('://', 1)[0]})")
    return 0


def cmd_create_org(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import create_organization

    async def create(database: Any) -> str:
        async with database.transaction() as session:
            org = await create_organization(session, args.slug, args.name)
            return f"created organization {org.slug} ({org.id})"

    print(_run(_with_database(_settings(), create)))
    return 0


def _read_charter(path: str, name: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValidationFailed(f"cannot read the charter file {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValidationFailed(f"the charter file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValidationFailed(f"the charter file {path} must hold a JSON object")
    data.setdefault("name", name)
    return data


def cmd_create_user(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import (
        create_user,
        get_organization_by_slug,
        orchestrator_for_user,
    )
    from neolith_orchestrator.ai.charter import parse_charter
    from neolith_orchestrator.ai.providers import require_credentials

    settings = _settings()
    charter = None
    if args.orchestrator:
        charter = parse_charter(_read_charter(args.charter, args.name))
        require_credentials(charter, settings)  # refused now, not at the first mention

    async def create(database: Any) -> str:
        async with database.transaction() as session:
            org = await get_organization_by_slug(session, args.org)
            user = await create_user(
                session,
                org,
                email=args.email,
                name=args.name,
                password=args.password,
                handle=args.handle,
                is_admin=args.admin,
                charter=charter,
            )
            text = f"created user {user.email} @{user.handle} ({user.id})"
            if charter is not None:
                orchestrator = await orchestrator_for_user(session, user.id)
                assert orchestrator is not None
                text += f"\norchestrator id {orchestrator.id}"
            return text

    print(_run(_with_database(settings, create)))
    return 0


def cmd_set_budget(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import get_organization_by_slug
    from neolith_orchestrator.chat.usage import set_budget

    text = args.tokens.strip().lower()
    if text != "default" and not text.isdigit():
        raise ValidationFailed(
            f"TOKENS: a whole number of tokens (0: unlimited) or 'default' (got {args.tokens!r})"
        )
    tokens = None if text == "default" else int(text)

    async def change(database: Any) -> str:
        async with database.transaction() as session:
            org = await get_organization_by_slug(session, args.slug)
            await set_budget(session, org, tokens)
        if tokens is None:
            return f"{org.slug}: monthly token budget follows ORG_MONTHLY_TOKEN_BUDGET"
        limit = "unlimited" if tokens == 0 else f"{tokens:,} tokens"
        return f"{org.slug}: monthly token budget {limit}"

    print(_run(_with_database(_settings(), change)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from neolith_orchestrator.demo import describe, seed_demo

    async def seed(database: Any) -> str:
        return describe(await seed_demo(database))

    print(_run(_with_database(_settings(), seed)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from neolith_orchestrator.admin_client import fetch_statuses, render_table

    email = args.email or os.environ.get("NEOLITH_ADMIN_EMAIL")
    password = args.password or os.environ.get("NEOLITH_ADMIN_PASSWORD")
    parser: argparse.ArgumentParser = args.parser
    if not email or not password:
        parser.error(
            "admin credentials are required: --email and --password, "
            "or NEOLITH_ADMIN_EMAIL and NEOLITH_ADMIN_PASSWORD"
        )
    print(render_table(fetch_statuses(args.url, email, password)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neolith-orchestrator",
        description="AI colleagues for team chat: one supervised daemon per orchestrator.",
        epilog=EPILOG,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text, epilog=EPILOG)
        sub.set_defaults(handler=handler, parser=sub)
        return sub

    serve = command("serve", cmd_serve, "Migrate the database, then serve HTTP and Socket.IO.")
    serve.add_argument("--host", help="interface to listen on (default: HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT or 8080)")
    serve.add_argument("--demo", action="store_true", help="seed the demo organization first")

    command("migrate", cmd_migrate, "Bring the database schema up to date.")

    org = command("create-org", cmd_create_org, "Create an organization.")
    org.add_argument("slug", metavar="SLUG", help="lower-case letters, digits and dashes")
    org.add_argument("--name", help="display name (default: the slug)")

    user = command("create-user", cmd_create_user, "Create a person or an orchestrator.")
    user.add_argument("--org", required=True, metavar="SLUG", help="the organization's slug")
    user.add_argument("--email", required=True, metavar="E")
    user.add_argument("--name", required=True, metavar="N")
    user.add_argument("--password", required=True, metavar="P", help="at least 8 characters")
    user.add_argument("--handle", metavar="H", help="@mention handle (default: from the name)")
    user.add_argument("--admin", action="store_true", help="an admin of the organization")
    user.add_argument(
        "--orchestrator", action="store_true", help="an AI orchestrator (needs --charter)"
    )
    user.add_argument(
        "--charter", metavar="FILE.json", help="the orchestrator's charter (role, mission, ...)"
    )

    budget = command("set-budget", cmd_set_budget, "Set an organization's monthly token budget.")
    budget.add_argument("slug", metavar="SLUG", help="the organization's slug")
    budget.add_argument(
        "tokens",
        metavar="TOKENS",
        help="tokens per calendar month (input + output; 0: unlimited), "
        "or 'default' for ORG_MONTHLY_TOKEN_BUDGET",
    )

    command("demo", cmd_demo, "Create the demo organization (idempotent) and print logins.")

    status = command("status", cmd_status, "Show the daemons of a running server.")
    status.add_argument("--url", default=DEFAULT_URL, help=f"server URL (default: {DEFAULT_URL})")
    status.add_argument("--email", help="admin e-mail (default: NEOLITH_ADMIN_EMAIL)")
    status.add_argument("--password", help="admin password (default: NEOLITH_ADMIN_PASSWORD)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console entry point."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "create-user" and args.orchestrator != bool(args.charter):
        args.parser.error("--orchestrator and --charter FILE.json go together")
    try:
        code: int = args.handler(args)
    except OrchestratorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
