"""The database as a CLI command opens it: migrated first, and every failure to open it (a
server that does not answer, a refused password, an SQLite file that cannot be created) is
one line naming the database — its file's full path, or its URL without the password."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import OrchestratorError

T = TypeVar("T")
_log = logging.getLogger(__name__)


class DatabaseUnavailable(OrchestratorError):
    """The database cannot be opened."""

    status_code = 503
    code = "unavailable"


async def with_database(settings: Settings, step: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """Open (and migrate) the database, run `step(database)`, close it."""
    from neolith_orchestrator.db import migrate
    from neolith_orchestrator.db.engine import Database

    _log.info("database: %s", settings.describe_database())
    _check_sqlite_file(settings)
    database = Database(settings)
    try:
        try:
            await migrate.upgrade(database)
        except Exception as exc:
            raise _unavailable(settings, exc, "cannot open") from None
        try:
            return await step(database)
        except (SQLAlchemyError, OSError) as exc:
            raise _unavailable(settings, exc, "database error on") from None
    finally:
        try:
            await database.dispose()
        except Exception:  # closing a database that never opened may fail again
            _log.debug("closing the database failed", exc_info=True)


def _check_sqlite_file(settings: Settings) -> None:
    """Say plainly why an SQLite file cannot be opened, before the driver tries (its own
    error is only "unable to open database file", and a failed open races its worker
    thread against the end of the command's event loop)."""
    path = settings.sqlite_path
    if path is None:
        return
    directory = path.parent
    problem = None
    if path.is_dir():
        problem = "that path is a directory"
    elif not directory.exists():
        problem = f"its directory {directory} does not exist"
    elif not directory.is_dir():
        problem = f"{directory} is not a directory"
    elif not os.access(path if path.exists() else directory, os.W_OK):
        problem = f"this user may not write {path if path.exists() else directory}"
    if problem is not None:
        where = settings.describe_database()
        raise DatabaseUnavailable(f"cannot open the database ({where}): {problem}")


def _unavailable(settings: Settings, exc: BaseException, doing: str) -> DatabaseUnavailable:
    # The traceback helps a developer, not an operator: DEBUG only.
    _log.debug("database failure", exc_info=exc)
    reason = _reason(exc)
    hint = ""
    if settings.sqlite_path is not None and "unable to open" in reason:
        hint = " (does its directory exist, and may this user write there?)"
    message = f"{doing} the database ({settings.describe_database()}): {reason}{hint}"
    return DatabaseUnavailable(_without_password(message, settings))


def _reason(exc: BaseException) -> str:
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _without_password(message: str, settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    password = make_url(settings.database_url).password
    return message.replace(str(password), "***") if password else message
