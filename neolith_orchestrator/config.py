"""Settings: one pydantic-settings class, read from `.env.orchestrator` then the environment.

Every variable is listed with its default and meaning in `.env.orchestrator.example`.
Durations are integers in milliseconds, as in the seed's `DAEMON_*` variables.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from neolith_orchestrator.errors import ConfigError

_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Everything the service reads from its environment; tests build their own."""

    model_config = SettingsConfigDict(
        env_file=".env.orchestrator",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        frozen=True,
    )

    orchestrator_mode: Mode = Mode.DEVELOPMENT

    # Daemon supervision (the seed's names and defaults).
    daemon_auto_start: bool = True
    daemon_heartbeat_interval: int = Field(30_000, gt=0)
    daemon_health_check_interval: int = Field(60_000, gt=0)
    daemon_auto_restart: bool = True
    daemon_max_restart_attempts: int = Field(3, ge=0)
    daemon_verbose: bool = False
    daemon_max_concurrent_conversations: int = Field(10, gt=0)
    daemon_restart_window: int = Field(600_000, gt=0)
    daemon_restart_backoff_initial: int = Field(1_000, gt=0)
    daemon_restart_backoff_max: int = Field(60_000, gt=0)
    daemon_stop_grace: int = Field(10_000, ge=0)
    daemon_heartbeat_stale_after: int = Field(0, ge=0)
    daemon_reply_timeout: int = Field(180_000, gt=0)
    daemon_job_claim_ttl: int = Field(300_000, gt=0)
    daemon_job_max_attempts: int = Field(3, gt=0)
    # How long a daemon's lease outlives its instance's last heartbeat (0 = three heartbeat
    # intervals): after it, another instance takes the daemon over.
    daemon_lease_ttl: int = Field(0, ge=0)
    # How often each instance looks for logged-in orchestrators whose owner died.
    daemon_orphan_scan_interval: int = Field(1_000, gt=0)
    # Names this process as lease owner; defaults to the host name, so a restarted process
    # takes its orchestrators back at once. Give each process of one host its own.
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)

    # Mentions.
    mention_max_chain_depth: int = Field(3, ge=0)
    mention_replies_per_channel_per_minute: int = Field(20, gt=0)
    message_max_length: int = Field(8_000, gt=0)
    # At most one `message:delta` push per reply per this many ms (the first at once).
    message_delta_interval: int = Field(50, ge=0)

    # Storage.
    database_url: str = "sqlite+aiosqlite:///./neolith-orchestrator.db"
    database_echo: bool = False
    # Several instances: Socket.IO events, login throttling and presence go through Redis.
    redis_url: str | None = None

    # Model.
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    anthropic_model: str = "claude-sonnet-5-5"
    anthropic_max_tokens: int = Field(1_024, gt=0)
    anthropic_connect_timeout: int = Field(10_000, gt=0)
    anthropic_stream_idle_timeout: int = Field(60_000, gt=0)
    anthropic_max_retries: int = Field(4, ge=0)
    anthropic_retry_backoff_initial: int = Field(500, gt=0)
    anthropic_retry_backoff_max: int = Field(30_000, gt=0)
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str = "gpt-5-mini"
    openai_max_tokens: int = Field(1_024, gt=0)
    openai_connect_timeout: int = Field(10_000, gt=0)
    openai_stream_idle_timeout: int = Field(60_000, gt=0)
    openai_max_retries: int = Field(4, ge=0)
    openai_retry_backoff_initial: int = Field(500, gt=0)
    openai_retry_backoff_max: int = Field(30_000, gt=0)
    model_max_concurrency: int = Field(16, gt=0)
    model_max_concurrency_per_org: int = Field(4, gt=0)
    ai_context_messages: int = Field(30, gt=0)
    ai_context_chars: int = Field(24_000, gt=0)
    # Tokens (input + output) an organization may use per calendar month (UTC); 0 means
    # unlimited. An organization's own `monthly_token_budget` overrides it.
    org_monthly_token_budget: int = Field(0, ge=0)

    # HTTP server and auth.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    auth_session_ttl: int = Field(7 * 24 * 3600 * 1000, gt=0)
    auth_max_failures: int = Field(5, gt=0)
    auth_failure_window: int = Field(300_000, gt=0)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    # Browser origins (scheme://host[:port], comma-separated, or *) allowed to call the HTTP
    # API and open sockets from another origin; empty: the server's own origin only.
    cors_allowed_origins: str = ""
    # Serve /metrics on this port (on HOST) instead of the main one; 0: on the main port.
    metrics_port: int = Field(0, ge=0, le=65535)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0]
        if scheme == "postgresql" or scheme == "postgres":
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if scheme == "sqlite":
            return "sqlite+aiosqlite://" + value.split("://", 1)[1]
        if scheme not in _DATABASE_SCHEMES:
            raise ValueError(
                f"unknown database scheme {scheme!r}; use one of {', '.join(_DATABASE_SCHEMES)}"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        scheme = value.split("://", 1)[0]
        if "://" not in value or scheme not in _REDIS_SCHEMES:
            raise ValueError(f"use a URL starting with one of {', '.join(_REDIS_SCHEMES)}://")
        return value

    @field_validator("anthropic_api_key", "anthropic_base_url", "openai_api_key", "openai_base_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("instance_id", mode="before")
    @classmethod
    def _default_instance(cls, value: object) -> object:
        return value or socket.gethostname()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("cors_allowed_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        origins = [o.strip() for o in value.split(",") if o.strip()]
        for origin in origins:
            parts = urlsplit(origin)
            exact = parts.scheme in ("http", "https") and parts.netloc and not parts.path
            if origin != "*" and not (exact and f"{parts.scheme}://{parts.netloc}" == origin):
                raise ValueError(f"{origin!r} is not an origin like https://chat.example.com")
        return ",".join(origins)

    @model_validator(mode="after")
    def _lease_outlives_heartbeat(self) -> Settings:
        if self.daemon_lease_ttl and self.daemon_lease_ttl <= self.daemon_heartbeat_interval:
            raise ValueError(
                "DAEMON_LEASE_TTL must exceed DAEMON_HEARTBEAT_INTERVAL "
                "(or be 0 for three heartbeat intervals)"
            )
        return self

    @property
    def lease_ttl_ms(self) -> int:
        """The lease TTL in effect (DAEMON_LEASE_TTL, or three heartbeat intervals)."""
        return self.daemon_lease_ttl or 3 * self.daemon_heartbeat_interval

    @model_validator(mode="after")
    def _ports_differ(self) -> Settings:
        if self.metrics_port and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT (0 serves /metrics on PORT)")
        return self

    @property
    def cors_origins(self) -> tuple[str, ...]:
        return tuple(o for o in self.cors_allowed_origins.split(",") if o)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, absolute (it is relative to the working directory otherwise);
        None for PostgreSQL or an in-memory database."""
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return Path(database).expanduser().resolve()

    def describe_database(self) -> str:
        """The database for a log line or an error: the SQLite file's full path, or the
        PostgreSQL URL without its password."""
        path = self.sqlite_path
        if path is not None:
            return f"SQLite file {path}"
        if self.is_sqlite:
            return "SQLite in memory"
        return f"PostgreSQL {redact_url(self.database_url)}"

    @property
    def model_offline(self) -> bool:
        """No API key: the offline responder answers, and says so."""
        return self.anthropic_api_key is None


# Settings whose value is never printed, not even in an error about it (ANTHROPIC_API_KEY...).
_SECRET_WORDS = frozenset({"KEY", "PASSWORD", "SECRET", "TOKEN"})


def redact_url(url: str) -> str:
    """`url` with its password replaced by `***` (unchanged when it has none)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    if parsed.password is None:
        return url
    return parsed.render_as_string(hide_password=True)


def redact(name: str, value: object) -> str:
    """A setting's value as an error message may show it: secrets hidden, URLs without
    their password."""
    if _SECRET_WORDS.intersection(name.upper().split("_")):
        return "(hidden)"
    text = value if isinstance(value, str) else repr(value)
    return repr(redact_url(text)) if "://" in text else repr(value)


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into a `ConfigError` naming each variable
    (never echoing a secret)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            problems.append(f"{name}: {err['msg']} (got {redact(name, err.get('input'))})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
