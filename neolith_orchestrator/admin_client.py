"""A small client of a running server's admin API, for `neolith-orchestrator status`:
log in, read the daemons, log out; and the terminal table that shows them."""

from __future__ import annotations

from typing import Any

import httpx2

from neolith_orchestrator.errors import OrchestratorError

_COLUMNS = (
    ("HANDLE", lambda d: "@" + str(d.get("handle", ""))),
    ("NAME", lambda d: d.get("name")),
    ("STATUS", lambda d: d.get("status")),
    ("PRESENCE", lambda d: d.get("presence")),
    ("RESTARTS", lambda d: d.get("restart_count")),
    ("QUEUE", lambda d: d.get("queue_depth")),
    ("UPTIME", lambda d: _duration(d.get("uptime_ms"))),
    ("MODEL", lambda d: "/".join(str(d[k]) for k in ("provider", "model") if d.get(k))),
    ("LAST ERROR", lambda d: d.get("last_error")),
)
_CELL_MAX = 60


def _explain(response: httpx2.Response, doing: str) -> OrchestratorError:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase or f"HTTP {response.status_code}"
    return OrchestratorError(f"{doing} failed ({response.status_code}): {message}")


def fetch_statuses(url: str, email: str, password: str) -> list[dict[str, Any]]:
    """The daemons of the admin's organization, from the server at `url`."""
    try:
        with httpx2.Client(base_url=url, timeout=15) as http:
            login = http.post("/api/auth/login", json={"email": email, "password": password})
            if login.status_code != 200:
                raise _explain(login, "login")
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            try:
                response = http.get("/api/admin/daemons", headers=headers)
                if response.status_code != 200:
                    raise _explain(response, "reading the daemons")
                statuses: list[dict[str, Any]] = response.json()
            finally:
                http.post("/api/auth/logout", headers=headers)
    except httpx2.HTTPError as exc:
        raise OrchestratorError(f"cannot reach the server at {url}: {exc}") from exc
    return statuses


def _duration(ms: Any) -> str:
    if not isinstance(ms, int) or ms <= 0:
        return "-"
    seconds = ms // 1000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else " ".join(str(value).split())
    return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"


def render_table(statuses: list[dict[str, Any]]) -> str:
    """A plain-text table, one daemon per row."""
    if not statuses:
        return "no orchestrators in this organization"
    rows = [[title for title, _ in _COLUMNS]]
    rows += [[_cell(get(status)) for _, get in _COLUMNS] for status in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
