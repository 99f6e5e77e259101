"""`neolith-orchestrator`: serve the app, migrate, create organizations and users, seed the
demo, and show the daemons of a running server.

Exit codes: 0 success, 1 failure (the message is on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from importlib import metadata
from typing import Any

from neolith_orchestrator import cli_inputs, logs
from neolith_orchestrator.cli_database import with_database
from neolith_orchestrator.config import Settings, load_settings
from neolith_orchestrator.errors import OrchestratorError, ValidationFailed

EPILOG = (
    "Settings come from .env.orchestrator and the environment (DATABASE_URL, "
    "ANTHROPIC_API_KEY, LOG_FORMAT, ...); see .env.orchestrator.example."
)
_log = logging.getLogger("neolith_orchestrator.cli")


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def _settings(**overrides: Any) -> Settings:
    """The settings, with logging configured from them (LOG_LEVEL, LOG_FORMAT)."""
    settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    logs.configure(settings)
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from neolith_orchestrator.app import create_app
    from neolith_orchestrator.daemons.manager import get_daemon_manager
    from neolith_orchestrator.demo import describe, seed_demo, sign_in_orchestrator

    settings = _settings(host=args.host, port=args.port)

    async def prepare(database: Any) -> str | None:
        if not args.demo:
            return None
        users = await seed_demo(database)
        await sign_in_orchestrator(database, timedelta(milliseconds=settings.auth_session_ttl))
        return describe(users, online=True)

    credentials = _run(with_database(settings, prepare))
    if credentials:
        print(credentials, flush=True)
    app = create_app(settings, manager=get_daemon_manager(settings))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level=settings.log_level.lower(),
        log_config=logs.log_config(settings),
        timeout_graceful_shutdown=max(5, settings.daemon_stop_grace // 1000 + 5),
    )
    server = uvicorn.Server(config)
    _log.info("serving on http://%s:%s", settings.host, settings.port)
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
    _run(with_database(settings, nothing))
    print(f"database is up to date ({settings.describe_database()})")
    return 0


def cmd_create_org(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import create_organization

    async def create(database: Any) -> str:
        async with database.transaction() as session:
            org = await create_organization(session, args.slug, args.name)
            return f"created organization {org.slug} ({org.id})"

    print(_run(with_database(_settings(), create)))
    return 0


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
        charter = parse_charter(cli_inputs.read_charter(args.charter, args.name))
        require_credentials(charter, settings)  # refused now, not at the first mention
    password = cli_inputs.read_password(args, confirm=True)
    parser: argparse.ArgumentParser = args.parser
    if password is None:
        parser.error(
            "a password is required: type it at the prompt (in a terminal), "
            "or give --password-file FILE, --password-stdin or --password P"
        )

    async def create(database: Any) -> str:
        async with database.transaction() as session:
            org = await get_organization_by_slug(session, args.org)
            user = await create_user(
                session,
                org,
                email=args.email,
                name=args.name,
                password=password,
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

    print(_run(with_database(settings, create)))
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

    print(_run(with_database(_settings(), change)))
    return 0


def cmd_create_channel(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import get_organization_by_slug
    from neolith_orchestrator.chat.service import create_channel

    async def create(database: Any) -> str:
        async with database.transaction() as session:
            org = await get_organization_by_slug(session, args.org)
            creator = await _member_by_email(session, org, args.by)
            channel = await create_channel(session, creator, args.name, args.topic or "")
            return f"created channel #{channel.name} ({channel.id}) with {creator.email}"

    print(_run(with_database(_settings(), create)))
    return 0


def cmd_add_member(args: argparse.Namespace) -> int:
    from neolith_orchestrator.accounts.service import get_organization_by_slug
    from neolith_orchestrator.chat.service import add_member

    async def add(database: Any) -> str:
        async with database.transaction() as session:
            org = await get_organization_by_slug(session, args.org)
            channel = await _channel_by_name(session, org, args.channel)
            user = await _member_by_email(session, org, args.email)
            added = await add_member(session, org.id, channel.id, user.id)
            verb = "added" if added else "already a member:"
            return f"{verb} {user.email} (@{user.handle}) in #{channel.name}"

    print(_run(with_database(_settings(), add)))
    return 0


async def _member_by_email(session: Any, org: Any, email: str) -> Any:
    from sqlalchemy import func, select

    from neolith_orchestrator.db.models import User
    from neolith_orchestrator.errors import NotFound

    user = await session.scalar(
        select(User).where(
            User.organization_id == org.id, func.lower(User.email) == email.strip().lower()
        )
    )
    if user is None:
        raise NotFound(f"no user {email!r} in organization {org.slug!r}")
    return user


async def _channel_by_name(session: Any, org: Any, name: str) -> Any:
    from sqlalchemy import select

    from neolith_orchestrator.db.models import Channel
    from neolith_orchestrator.errors import NotFound

    channel = await session.scalar(
        select(Channel).where(Channel.organization_id == org.id, Channel.name == name.strip())
    )
    if channel is None:
        raise NotFound(f"no channel {name!r} in organization {org.slug!r}")
    return channel


def cmd_demo(args: argparse.Namespace) -> int:
    from neolith_orchestrator.demo import describe, seed_demo

    async def seed(database: Any) -> str:
        return describe(await seed_demo(database))

    print(_run(with_database(_settings(), seed)))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from neolith_orchestrator.admin_client import fetch_statuses, render_table

    email = args.email or os.environ.get("NEOLITH_ADMIN_EMAIL")
    password = cli_inputs.read_password(args, env="NEOLITH_ADMIN_PASSWORD")
    parser: argparse.ArgumentParser = args.parser
    if not email or not password:
        parser.error(
            "admin credentials are required: --email (or NEOLITH_ADMIN_EMAIL) and a password "
            "(a prompt in a terminal, --password-file, --password-stdin, --password or "
            "NEOLITH_ADMIN_PASSWORD)"
        )
    url = args.url or server_url(_settings())
    print(render_table(fetch_statuses(url, email, password)))
    return 0


def server_url(settings: Settings) -> str:
    """Where `serve` with these settings listens, as a client reaches it."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def _version() -> str:
    try:
        return metadata.version("neolith-orchestrator")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neolith-orchestrator",
        description="AI colleagues for team chat: one supervised daemon per orchestrator.",
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
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

    user = command(
        "create-user",
        cmd_create_user,
        "Create a person or an orchestrator. The password is asked for in a terminal.",
    )
    user.add_argument("--org", required=True, metavar="SLUG", help="the organization's slug")
    user.add_argument("--email", required=True, metavar="E")
    user.add_argument("--name", required=True, metavar="N")
    cli_inputs.add_password_options(user, what="the password (at least 8 characters)")
    user.add_argument("--handle", metavar="H", help="@mention handle (default: from the name)")
    user.add_argument("--admin", action="store_true", help="an admin of the organization")
    user.add_argument(
        "--orchestrator", action="store_true", help="an AI orchestrator (needs --charter)"
    )
    user.add_argument(
        "--charter",
        metavar="FILE.json",
        help="the orchestrator's charter (see docs/charter.example.json)",
    )

    channel = command("create-channel", cmd_create_channel, "Create a channel.")
    channel.add_argument("--org", required=True, metavar="SLUG", help="the organization's slug")
    channel.add_argument("--name", required=True, metavar="NAME", help="the channel's name")
    channel.add_argument("--topic", metavar="TEXT", help="the channel's topic")
    channel.add_argument(
        "--by", required=True, metavar="E", help="e-mail of the member who creates it (joins it)"
    )

    member = command("add-member", cmd_add_member, "Add a user to a channel.")
    member.add_argument("--org", required=True, metavar="SLUG", help="the organization's slug")
    member.add_argument("--channel", required=True, metavar="NAME", help="the channel's name")
    member.add_argument("--email", required=True, metavar="E", help="the user's e-mail")

    budget = command("set-budget", cmd_set_budget, "Set an organization's monthly token budget.")
    budget.add_argument("slug", metavar="SLUG", help="the organization's slug")
    budget.add_argument(
        "tokens",
        metavar="TOKENS",
        help="tokens per calendar month (input + output; 0: unlimited), "
        "or 'default' for ORG_MONTHLY_TOKEN_BUDGET",
    )

    command("demo", cmd_demo, "Create the demo organization (idempotent) and print logins.")

    status = command(
        "status",
        cmd_status,
        "Show the daemons of a running server. The password is asked for in a terminal.",
    )
    status.add_argument(
        "--url", help="server URL (default: from HOST and PORT, as `serve` listens)"
    )
    status.add_argument("--email", help="admin e-mail (default: NEOLITH_ADMIN_EMAIL)")
    cli_inputs.add_password_options(status, what="the admin password (or NEOLITH_ADMIN_PASSWORD)")
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
        if logs.is_json():  # a log shipper reading JSON lines must not meet a bare one
            _log.error("error: %s", exc.message)
        else:
            print(f"error: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    raise SystemExit(main())
