"""What CLI commands read besides their flags: a password (a prompt, a file, stdin or the
visible `--password` flag) and a charter file."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from neolith_orchestrator.errors import ValidationFailed

# `ps` shows a process's arguments to every user of the machine.
_VISIBLE = "visible to other users in `ps`: prefer the prompt, --password-file or --password-stdin"


def add_password_options(parser: argparse.ArgumentParser, *, what: str) -> None:
    """--password, --password-file and --password-stdin, at most one of them."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password", metavar="P", help=f"{what} ({_VISIBLE})")
    group.add_argument(
        "--password-file",
        metavar="FILE",
        help=f"read {what} from the first line of FILE",
    )
    group.add_argument(
        "--password-stdin", action="store_true", help=f"read {what} from the first line of stdin"
    )


def read_password(
    args: argparse.Namespace, *, env: str | None = None, confirm: bool = False
) -> str | None:
    """The password from the flags, else `env`, else a prompt when stdin is a terminal;
    None when there is none to be had."""
    if args.password is not None:
        return str(args.password)
    if args.password_file is not None:
        path = args.password_file
        return _first_line(_read_file(path), f"the password file {path}")
    if args.password_stdin:
        return _first_line(sys.stdin.read(), "stdin")
    if env and os.environ.get(env):
        return os.environ[env]
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if confirm and getpass.getpass("Password again: ") != password:
            raise ValidationFailed("the two passwords differ")
        return password
    return None


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationFailed(f"cannot read the password file {path}: {exc.strerror}") from exc


def _first_line(text: str, source: str) -> str:
    line = text.splitlines()[0] if text else ""
    if not line:
        raise ValidationFailed(f"no password in {source}")
    return line


def read_charter(path: str, name: str) -> dict[str, Any]:
    """The charter file's JSON object, named `name` unless it names itself."""
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
