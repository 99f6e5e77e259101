"""Choosing the reply generators at start-up, and describing them for the runtime status.

Each provider with credentials gets its generator: ANTHROPIC_API_KEY the Anthropic one,
OPENAI_API_KEY the OpenAI-compatible one (a bad key fails loudly on the first reply as
`ModelPermanentError`, never by falling back to offline answers). They share one set of
fair-use limits, and a `ProviderRouter` picks one per reply from the charter. Without any
key the offline responder answers everything, and the start-up log says so at WARNING.
"""

from __future__ import annotations

import logging
from typing import Any

from neolith_orchestrator.ai.generator import ReplyGenerator
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.offline import OfflineResponder
from neolith_orchestrator.ai.providers import configured_providers
from neolith_orchestrator.ai.router import ProviderRouter
from neolith_orchestrator.config import Settings

_log = logging.getLogger("neolith_orchestrator.ai")


def build_generator(settings: Settings, *, limits: ModelLimits | None = None) -> ReplyGenerator:
    """A `ProviderRouter` over the configured providers, or the offline responder when no
    provider has credentials."""
    configured = configured_providers(settings)
    if not configured:
        _log.warning(
            "neither ANTHROPIC_API_KEY nor OPENAI_API_KEY is set: orchestrators answer with "
            "the offline responder, and every reply says so"
        )
        return OfflineResponder()
    limits = limits or ModelLimits.from_settings(settings)
    generators: dict[str, ReplyGenerator] = {}
    if "anthropic" in configured:
        # Imported here: each SDK is slow to import, and a server need not load both.
        from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator

        generators["anthropic"] = AnthropicGenerator(settings, limits=limits)
        _log.info(
            "anthropic replies by the Anthropic API (model %s, %s)",
            settings.anthropic_model,
            settings.anthropic_base_url or "default endpoint",
        )
    else:
        _log.warning(
            "ANTHROPIC_API_KEY is not set: orchestrators whose charter names no provider "
            "answer with the offline responder"
        )
    if "openai" in configured:
        from neolith_orchestrator.ai.openai_provider import OpenAIGenerator

        generators["openai"] = OpenAIGenerator(settings, limits=limits)
        _log.info(
            "openai replies by an OpenAI-compatible API (model %s, %s)",
            settings.openai_model,
            settings.openai_base_url or "default endpoint",
        )
    return ProviderRouter(generators, OfflineResponder())


def describe_generator(generator: ReplyGenerator) -> dict[str, Any]:
    """Provider name, model, offline flag and fair-use counters, for `/api/runtime/status`
    (a router adds every provider and the usage by provider and model)."""
    describe = getattr(generator, "describe", None)
    if callable(describe):
        described = describe()
        if isinstance(described, dict):
            return described
    return {
        "provider": generator.name,
        "model": getattr(generator, "model", None),
        "offline": isinstance(generator, OfflineResponder),
        "limits": None,
    }
