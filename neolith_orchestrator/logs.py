"""Logging for every command: one format for our loggers and uvicorn's, on stderr.

`LOG_FORMAT=text` (the default) writes `time LEVEL logger: message`; `LOG_FORMAT=json`
writes one JSON object per line (`time`, `level`, `logger`, `message`, the fields a call
passed in `extra=`, and `exc` for a traceback), so a log shipper needs no parsing rules.
`log_config(settings)` is a `logging.config.dictConfig` dictionary; `serve` hands the same
one to uvicorn, which applies it again when it starts.
"""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

from neolith_orchestrator.config import LogFormat, Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
# uvicorn's own extra: the message again with terminal colours.
_IGNORED = frozenset({"color_message"})


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(_access_fields(record.args))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _IGNORED and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    # uvicorn's access record: (client address, method, path, HTTP version, status code).
    if len(args) != 5:
        return {}
    client, method, path, _version, status = args
    return {"client": client, "method": method, "path": path, "status": status}


def log_config(settings: Settings) -> dict[str, Any]:
    """The logging configuration for `settings` (LOG_LEVEL, LOG_FORMAT)."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter} if settings.log_format is LogFormat.JSON else {"format": TEXT_FORMAT}
    )
    # uvicorn's loggers lose their own handlers and propagate to ours: one format, one stream.
    uvicorn = {"handlers": [], "propagate": True, "level": settings.log_level}
    # The HTTP clients under the model SDKs and `status` log every request at INFO; our own
    # lines say what each call was for, so theirs show only when something goes wrong.
    clients = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": settings.log_level},
        "loggers": {
            "uvicorn": uvicorn,
            "uvicorn.error": uvicorn,
            "uvicorn.access": uvicorn,
            "httpx": clients,
            "httpx2": clients,
        },
    }


def configure(settings: Settings) -> dict[str, Any]:
    """Apply `log_config(settings)`; returns it (for uvicorn)."""
    config = log_config(settings)
    logging.config.dictConfig(config)
    return config


def is_json() -> bool:
    """Whether the log is configured as JSON lines (so an error line must be one too)."""
    return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
