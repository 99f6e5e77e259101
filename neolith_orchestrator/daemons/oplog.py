"""The operator's log of daemon lifecycles: one line per start, stop, crash, restart,
give-up, permanent model failure and failed reply, each naming the orchestrator's handle,
its organization, the job (when there is one) and the reason.

Failures are WARNING or ERROR, so a service run at LOG_LEVEL=WARNING still shows why a
daemon went to ERROR. The same facts travel as record fields (`extra=`), which the JSON log
format writes as keys.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from neolith_orchestrator.daemons.reply import Identity

_log = logging.getLogger(__name__)


def daemon_event(identity: Identity, name: str, payload: Mapping[str, Any]) -> None:
    """Log manager event `name` (`daemon:started`, ...) of `identity`'s daemon; events an
    operator need not see are ignored."""
    described = _describe(name, payload)
    if described is None:
        return
    level, what, reason = described
    job_id = payload.get("job_id")
    fields: dict[str, Any] = {
        "event": name,
        "handle": identity.handle,
        "orchestrator_id": str(identity.orchestrator_id),
        "organization_id": str(identity.organization_id),
    }
    if job_id is not None:
        fields["job_id"] = str(job_id)
    if reason is not None:
        fields["reason"] = reason
    where = f"organization {identity.organization_id}"
    if job_id is not None:
        where += f", job {job_id}"
    text = f"daemon @{identity.handle} ({where}) {what}"
    _log.log(level, "%s", f"{text}: {reason}" if reason else text, extra=fields)


def _describe(name: str, payload: Mapping[str, Any]) -> tuple[int, str, str | None] | None:
    """(level, what happened, reason) for one event."""
    reason = payload.get("reason") or payload.get("error")
    if name == "daemon:started":
        return logging.INFO, "started", None
    if name == "daemon:stopped":
        released = payload.get("released_jobs") or 0
        note = f"; {released} unfinished mention(s) back in the queue" if released else ""
        return logging.INFO, f"stopped{note}", None
    if name == "daemon:error":
        if payload.get("outage"):
            # The outage itself is logged once when it starts and once when it ends
            # (db/outage.py); a line per daemon would bury those two.
            return logging.DEBUG, "waits for the database", reason
        if payload.get("permanent"):
            what = "failed permanently and stays stopped until an admin restarts it"
            return logging.ERROR, what, reason
        return logging.ERROR, "crashed", reason
    if name == "daemon:restarted":
        if payload.get("by") == "admin":
            return logging.INFO, "restarted by an admin", None
        if payload.get("after") == "database outage":
            return (
                logging.DEBUG,
                f"resumed after the database outage ({payload.get('waited_s')} s)",
                None,
            )
        attempt, delay = payload.get("attempt"), payload.get("delay_s") or 0
        return logging.WARNING, f"restarted (attempt {attempt}, after {delay:.1f} s)", None
    if name == "daemon:gave-up":
        # The crash before it was logged with its reason; say only why it stops here.
        text = str(reason or "")
        return logging.ERROR, "gave up", text.removeprefix("gave up ") or None
    if name == "daemon:unhealthy":
        return logging.WARNING, "is unhealthy and is restarted", reason
    if name == "daemon:reply-failed":
        return logging.WARNING, "could not answer a mention", reason
    return None
