"""The log formats: JSON records carry an event's fields as keys; text stays one line."""

from __future__ import annotations

import json
import logging
import sys

from neolith_orchestrator.logs import TEXT_FORMAT, JsonFormatter, log_config
from tests.conftest import make_settings


def _record(**extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "neolith_orchestrator.daemons.oplog", "levelname": "ERROR", "levelno": 40}
    )
    record.msg, record.args = "daemon @%s crashed", ("ada",)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_events_fields() -> None:
    line = JsonFormatter().format(_record(handle="ada", job_id="j-1", reason="boom"))
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "neolith_orchestrator.daemons.oplog"
    assert entry["message"] == "daemon @ada crashed"
    assert (entry["handle"], entry["job_id"], entry["reason"]) == ("ada", "j-1", "boom")
    assert entry["time"].endswith("+00:00")
    assert "\n" not in line


def test_a_traceback_stays_inside_one_json_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "ValueError: bad" in json.loads(line)["exc"]


def test_uvicorn_logs_through_the_same_handler_and_format() -> None:
    text = log_config(make_settings("sqlite+aiosqlite://", log_level="WARNING"))
    assert text["formatters"]["default"] == {"format": TEXT_FORMAT}
    assert text["root"] == {"handlers": ["stderr"], "level": "WARNING"}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert text["loggers"][name]["handlers"] == [] and text["loggers"][name]["propagate"]
    as_json = log_config(make_settings("sqlite+aiosqlite://", log_format="json"))
    assert as_json["formatters"]["default"] == {"()": JsonFormatter}
