"""`REDIS_URL`: unset or blank runs one instance alone; anything but a Redis URL stops
start-up with a message naming the variable."""

from __future__ import annotations

import pytest

from neolith_orchestrator.config import load_settings
from neolith_orchestrator.errors import ConfigError
from neolith_orchestrator.realtime.cluster import ClusterManager, client_manager


def test_blank_redis_url_means_one_instance_alone() -> None:
    settings = load_settings(_env_file=None, redis_url="")
    assert settings.redis_url is None
    assert client_manager(settings) is None


def test_a_redis_url_gets_the_redis_client_manager() -> None:
    settings = load_settings(_env_file=None, redis_url="redis://127.0.0.1:6379/0")
    assert isinstance(client_manager(settings), ClusterManager)


@pytest.mark.parametrize("bad", ["localhost:6379", "http://redis:6379/0", "postgresql://x/y"])
def test_anything_else_is_refused_by_name(bad: str) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings(_env_file=None, redis_url=bad)
