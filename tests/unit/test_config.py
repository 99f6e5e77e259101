"""Settings: defaults, the example file, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from neolith_orchestrator.config import Settings, load_settings, redact, redact_url
from neolith_orchestrator.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.orchestrator.example"


def _example() -> dict[str, str]:
    pairs = {}
    for line in EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def test_example_lists_every_setting_with_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    example = _example()
    assert set(example) == {name.upper() for name in Settings.model_fields}
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for name in Settings.model_fields:
        value = getattr(defaults, name)
        written = example[name.upper()]
        if name == "instance_id":
            assert written == ""  # derived from the host name
        elif value is None:
            assert written == ""
        elif isinstance(value, bool):
            assert written == str(value).lower()
        else:
            assert written == str(value), name


def test_the_seed_defaults() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.daemon_heartbeat_interval == 30_000
    assert settings.daemon_health_check_interval == 60_000
    assert settings.daemon_max_restart_attempts == 3
    assert settings.daemon_max_concurrent_conversations == 10
    assert settings.daemon_auto_start and settings.daemon_auto_restart
    assert not settings.daemon_verbose
    assert settings.is_sqlite


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("DAEMON_HEARTBEAT_INTERVAL", "abc", "DAEMON_HEARTBEAT_INTERVAL"),
        ("DAEMON_HEALTH_CHECK_INTERVAL", "-5", "DAEMON_HEALTH_CHECK_INTERVAL"),
        ("DATABASE_URL", "mysql://x/y", "unknown database scheme"),
        ("DAEMON_AUTO_START", "perhaps", "DAEMON_AUTO_START"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL"),
    ],
)
def test_bad_values_stop_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert fragment in str(caught.value)
    assert variable in str(caught.value)


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env.orchestrator"
    env_file.write_text("DAEMON_MAX_RESTART_ATTEMPTS=7\nMESSAGE_MAX_LENGTH=100\n")
    monkeypatch.setenv("MESSAGE_MAX_LENGTH", "200")
    settings = load_settings(_env_file=str(env_file))
    assert settings.daemon_max_restart_attempts == 7
    assert settings.message_max_length == 200


def test_plain_postgres_urls_get_the_async_driver() -> None:
    settings = Settings(_env_file=None, database_url="postgresql://u@h/db")  # type: ignore[call-arg]
    assert settings.database_url == "postgresql+asyncpg://u@h/db"
    assert not settings.is_sqlite


def test_the_example_file_itself_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = load_settings(_env_file=str(EXAMPLE))
    assert settings.anthropic_api_key is None and settings.model_offline
    assert settings.instance_id  # blank means the host name


def test_errors_never_echo_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://bob:s3cret@db.internal/neolith")
    with pytest.raises(ConfigError) as caught:
        load_settings(_env_file=None)
    assert "s3cret" not in caught.value.message
    assert "mysql://bob:***@db.internal/neolith" in caught.value.message
    assert redact("ANTHROPIC_API_KEY", "sk-ant-123") == "(hidden)"
    assert redact("REDIS_URL", "redis://:pw@h:6379/0") == "'redis://:***@h:6379/0'"
    assert redact("ANTHROPIC_MAX_TOKENS", "lots") == "'lots'"


def test_the_database_is_described_by_full_path_or_url_without_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = Settings(_env_file=None, database_url="sqlite:///./x.db")  # type: ignore[call-arg]
    assert relative.sqlite_path == tmp_path.resolve() / "x.db"
    assert relative.describe_database() == f"SQLite file {tmp_path.resolve() / 'x.db'}"
    memory = Settings(_env_file=None, database_url="sqlite+aiosqlite://")  # type: ignore[call-arg]
    assert memory.describe_database() == "SQLite in memory"
    pg = Settings(_env_file=None, database_url="postgresql://u:pw@h/db")  # type: ignore[call-arg]
    assert pg.describe_database() == "PostgreSQL postgresql+asyncpg://u:***@h/db"
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"


def test_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).log_format == "text"  # type: ignore[call-arg]
    monkeypatch.setenv("LOG_FORMAT", "json")
    assert load_settings(_env_file=None).log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_settings(_env_file=None)
