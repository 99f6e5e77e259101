"""The server the bench talks to: `create_app(settings)` under uvicorn on a loopback port,
settings from the environment only (never `.env.orchestrator`). `python -m bench.serve
--port N`; SIGTERM shuts it down gracefully, SIGKILL is what the recovery scenario sends.

With BENCH_COUNT_SQL=1 (only the cost scenario sets it) it counts, from outside the
package, every SQL statement and transaction the process runs: SQLAlchemy event listeners
on the `Engine` class (they apply to every engine, the app's included), read back with
`GET /bench/sql` (`?capture=start` also starts recording statement texts, `?capture=stop`
returns and clears them). The package itself has no hook for this.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import time
from typing import Any

import uvicorn

from neolith_orchestrator.app import create_app
from neolith_orchestrator.config import Settings


class _SqlCounter:
    """Statements and transactions of this process, and optionally their texts."""

    def __init__(self) -> None:
        self.statements = 0
        self.transactions = 0
        self.commits = 0
        self.rollbacks = 0
        self.capturing = False
        self.captured: list[tuple[float, str]] = []

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "before_cursor_execute", self._statement)
        event.listen(Engine, "begin", self._begin)
        event.listen(Engine, "commit", self._commit)
        event.listen(Engine, "rollback", self._rollback)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # SQLite's "BEGIN IMMEDIATE" goes through here too; it is counted as a transaction.
        if statement.startswith("BEGIN"):
            return
        self.statements += 1
        if self.capturing:
            self.captured.append((time.perf_counter(), " ".join(statement.split())))

    def _begin(self, conn: Any) -> None:
        self.transactions += 1
        if self.capturing:
            self.captured.append((time.perf_counter(), "BEGIN"))

    def _commit(self, conn: Any) -> None:
        self.commits += 1
        if self.capturing:
            self.captured.append((time.perf_counter(), "COMMIT"))

    def _rollback(self, conn: Any) -> None:
        self.rollbacks += 1
        if self.capturing:
            self.captured.append((time.perf_counter(), "ROLLBACK"))

    def report(self, capture: str | None) -> dict[str, Any]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        data: dict[str, Any] = {
            "statements": self.statements,
            "transactions": self.transactions,
            "commits": self.commits,
            "rollbacks": self.rollbacks,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "clock": time.perf_counter(),
        }
        if capture == "start":
            self.captured, self.capturing = [], True
        elif capture == "stop":
            data["captured"], self.captured, self.capturing = self.captured, [], False
        return data


def _with_counter(app: Any, counter: _SqlCounter) -> Any:
    """The app, with `GET /bench/sql` answered in front of it."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != "/bench/sql":
            await app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode()
        capture = query.partition("capture=")[2] or None
        body = json.dumps(counter.report(capture)).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings(_env_file=None, host="127.0.0.1", port=args.port)  # type: ignore[call-arg]
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(settings)
    if os.environ.get("BENCH_COUNT_SQL") == "1":
        counter = _SqlCounter()
        counter.install()
        app = _with_counter(app, counter)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        lifespan="on",
        log_level="warning",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
