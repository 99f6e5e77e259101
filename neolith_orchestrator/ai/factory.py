"""Choosing the reply generator at start-up, and describing it for the runtime status.

With ANTHROPIC_API_KEY set the service always talks to the model (a bad key fails loudly on
the first reply as `ModelPermanentError`, never by falling back to offline answers). Without
it the offline responder answers, and the start-up log says so at WARNING.
"""

from __future__ import annotations

import logging
from typing import Any

from neolith_orchestrator.ai.anthropic_provider import AnthropicGenerator
from neolith_orchestrator.ai.generator import ReplyGenerator
from neolith_orchestrator.ai.limits import ModelLimits
from neolith_orchestrator.ai.offline import OfflineResponder
from neolith_orchestrator.config import Settings

_log = logging.getLogger("neolith_orchestrator.ai")


def build_generator(settings: Settings, *, limits: ModelLimits | None = None) -> ReplyGenerator:
    """The Anthropic generator when a key is configured, else the offline responder."""
    if settings.anthropic_api_key:
        generator = AnthropicGenerator(settings, limits=limits)
        _log.info(
            "replies by the Anthropic API (model %s, %s)",
            settings.anthropic_model,
            settings.anthropic_base_url or "default endpoint",
        )
        return generator
    _log.warning(
        "ANTHROPIC_API_KEY is not set: orchestrators answer with the offline responder, "
        "and every reply says so"
    )
    return OfflineResponder()


def describe_generator(generator: ReplyGenerator) -> dict[str, Any]:
    """Provider name, model, offline flag and fair-use counters, for `/api/runtime/status`."""
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
