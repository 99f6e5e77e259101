"""The database as a CLI command opens it: migrated first, and every failure to open it (a
server that does not answer, a refused password, an SQLite file that cannot be created) is
one line naming the database — its file's full path, or its URL without the password."""

from __future__ import annotations

import logging
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
