"""Errors that cross module boundaries. Each carries an HTTP status and a stable code.

The tree::

    OrchestratorError              500 internal
    ├── ConfigError                500 config_invalid      (start-up: names the variable)
    ├── ValidationFailed           422 validation_error    (bad input; nothing changed)
    ├── AuthenticationFailed       401 unauthenticated
    ├── PermissionDenied           403 forbidden
    ├── NotFound                   404 not_found           (also: another tenant's rows)
    ├── Conflict                   409 conflict
    ├── TooManyRequests            429 rate_limited        (carries retry_after seconds)
    ├── DaemonError                409 daemon_error        (illegal lifecycle step)
    ├── Unavailable                503 unavailable         (database unreachable; retry_after)
    └── ModelError                 502 model_error         (the model could not answer)
        └── ModelPermanentError    502 model_unavailable   (bad key, spent budget: not retried)

A docstring is the error's default message. SDK and driver errors are wrapped `from exc`.
"""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """Something went wrong inside the orchestrator."""

    status_code = 500
    code = "internal"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        super().__init__(self.message)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {"error": {"code": self.code, "message": self.message}}


class ConfigError(OrchestratorError):
    """The configuration is invalid."""

    code = "config_invalid"


class ValidationFailed(OrchestratorError):
    """The request is invalid."""

    status_code = 422
    code = "validation_error"


class AuthenticationFailed(OrchestratorError):
    """Authentication is required or the credentials are wrong."""

    status_code = 401
    code = "unauthenticated"


class PermissionDenied(OrchestratorError):
    """You are not allowed to do that."""

    status_code = 403
    code = "forbidden"


class NotFound(OrchestratorError):
    """Not found."""

    status_code = 404
    code = "not_found"


class Conflict(OrchestratorError):
    """That conflicts with the current state."""

    status_code = 409
    code = "conflict"


class TooManyRequests(OrchestratorError):
    """Too many requests; try again later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str | None = None, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DaemonError(OrchestratorError):
    """The daemon cannot do that in its current state."""

    status_code = 409
    code = "daemon_error"


class LeaseHeld(DaemonError):
    """Another live instance runs this orchestrator's daemon: not an error of the daemon."""


class Unavailable(OrchestratorError):
    """The database is unreachable right now; try again shortly."""

    status_code = 503
    code = "unavailable"

    def __init__(self, message: str | None = None, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, dict[str, Any]]:
        body = super().to_dict()
        # A Socket.IO ack has no headers: the hint travels in the body too.
        body["error"]["retry_after"] = max(1, int(self.retry_after))
        return body


class ModelError(OrchestratorError):
    """The model could not produce a reply."""

    status_code = 502
    code = "model_error"


class ModelPermanentError(ModelError):
    """The model refuses our credentials or budget; retrying will not help."""

    code = "model_unavailable"
