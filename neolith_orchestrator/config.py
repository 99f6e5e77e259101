"""Settings: one pydantic-settings class, read from `.env.orchestrator` then the environment.

Every variable is listed with its default and meaning in `.env.orchestrator.example`.
Durations are integers in milliseconds, as in the seed's `DAEMON_*` variables.
"""

from __future__ import annotations

import socket
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from neolith_orchestrator.errors import ConfigError

_DATABASE_SCHEMES = ("sqlite+aiosqlite", "postgresql+asyncpg")
_REDIS_SCHEMES = ("redis", "rediss", "unix")


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


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
    # Names this process as lease owner; defaults to the host name, so a restarted process
    # takes its orchestrators back at once. Give each process of one host its own.
    instance_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=100)

    # Mentions.
    mention_max_chain_depth: int = Field(3, ge=0)
    mention_replies_per_channel_per_minute: int = Field(20, gt=0)
    message_max_length: int = Field(8_000, gt=0)

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
    model_max_concurrency: int = Field(16, gt=0)
    model_max_concurrency_per_org: int = Field(4, gt=0)
    ai_context_messages: int = Field(30, gt=0)
    ai_context_chars: int = Field(24_000, gt=0)

    # HTTP server and auth.
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    auth_session_ttl: int = Field(7 * 24 * 3600 * 1000, gt=0)
    auth_max_failures: int = Field(5, gt=0)
    auth_failure_window: int = Field(300_000, gt=0)
    log_level: str = "INFO"

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

    @field_validator("anthropic_api_key", "anthropic_base_url")
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

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def model_offline(self) -> bool:
        """No API key: the offline responder answers, and says so."""
        return self.anthropic_api_key is None


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning a validation failure into a `ConfigError` naming each variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            problems.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from exc
