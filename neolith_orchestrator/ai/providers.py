"""Which provider and model answer for an orchestrator, and whether this server can reach it.

Pure and SDK-free, so saving a charter (admin API, CLI) and reading a daemon's status do not
load a model SDK. A charter's `model_settings.provider` picks "anthropic" or "openai"; unset
means "anthropic", and an unset provider on a server without ANTHROPIC_API_KEY is answered by
the offline responder (the product runs without a model and says so). A provider the charter
*names* must have its credentials here: such a charter is refused when it is saved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from neolith_orchestrator.ai.charter import Charter, parse_charter
from neolith_orchestrator.config import Settings
from neolith_orchestrator.errors import ValidationFailed

Provider = Literal["anthropic", "openai"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "openai")
DEFAULT_PROVIDER: Provider = "anthropic"
OFFLINE = "offline"

_KEY_SETTING: dict[Provider, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


def configured_providers(settings: Settings) -> tuple[Provider, ...]:
    """The providers this server has credentials for, in a stable order."""
    keys = {"anthropic": settings.anthropic_api_key, "openai": settings.openai_api_key}
    return tuple(name for name in PROVIDERS if keys[name])


def provider_of(charter: Charter) -> Provider:
    return charter.model_settings.provider or DEFAULT_PROVIDER


def default_model(provider: Provider, settings: Settings) -> str:
    return settings.anthropic_model if provider == "anthropic" else settings.openai_model


def not_configured(provider: Provider) -> str:
    """Why a provider cannot answer here, naming the setting that is missing."""
    missing = _KEY_SETTING[provider]
    return f"the {provider!r} provider is not configured on this server ({missing} is not set)"


def require_credentials(charter: Charter, settings: Settings) -> None:
    """Refuse (`ValidationFailed` naming the field) a charter that names a provider this
    server has no credentials for. An unset provider is always accepted (see the module)."""
    named = charter.model_settings.provider
    if named is not None and named not in configured_providers(settings):
        raise ValidationFailed(f"invalid charter: model_settings.provider: {not_configured(named)}")


def model_choice(charter: dict[str, Any] | None, settings: Settings) -> dict[str, Any]:
    """`{"provider", "model"}` that answer for a stored charter (for the daemon status):
    "offline" for both when the offline responder does; `provider_configured` False when it
    names a provider this server has no credentials for."""
    try:
        parsed = parse_charter(charter or {})
    except ValidationFailed:
        return {"provider": None, "model": None, "provider_configured": False}
    provider = provider_of(parsed)
    configured = provider in configured_providers(settings)
    if not configured and parsed.model_settings.provider is None:
        return {"provider": OFFLINE, "model": OFFLINE, "provider_configured": True}
    model = parsed.model_settings.model or default_model(provider, settings)
    return {"provider": provider, "model": model, "provider_configured": configured}


def count_by_model(
    charters: Iterable[dict[str, Any] | None], settings: Settings
) -> list[dict[str, Any]]:
    """How many of these (running daemons') charters each provider and model answers."""
    counts = Counter(
        (str(choice["provider"]), str(choice["model"]))
        for choice in (model_choice(charter, settings) for charter in charters)
    )
    return [
        {"provider": provider, "model": model, "daemons": n}
        for (provider, model), n in sorted(counts.items())
    ]
