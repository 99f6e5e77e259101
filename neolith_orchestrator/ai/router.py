"""The provider router: one `ReplyGenerator` in front of one generator per configured
provider, choosing for each reply by the charter's `model_settings.provider` (`ai.providers`
says which). It also counts, since start-up, the replies and tokens of each provider and
model, for the runtime status (the durable record is the `token_usage` table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from neolith_orchestrator.ai.generator import ReplyGenerator, ReplyRequest, ReplyResult, ReplySink
from neolith_orchestrator.ai.prompt import request_charter
from neolith_orchestrator.ai.providers import DEFAULT_PROVIDER, not_configured, provider_of
from neolith_orchestrator.errors import ModelError


@dataclass(slots=True)
class ModelUsage:
    """Replies and tokens of one provider and model since start-up."""

    provider: str
    model: str
    replies: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class ProviderRouter:
    """Routes each reply to the generator of its charter's provider. A charter without a
    provider goes to the default ("anthropic"), or to `fallback` (the offline responder)
    when that is not configured; a charter naming a provider that is not configured here
    fails with a `ModelError` that says which setting is missing."""

    name = "providers"

    def __init__(self, generators: Mapping[str, ReplyGenerator], fallback: ReplyGenerator) -> None:
        self.generators = dict(generators)
        self.fallback = fallback
        self._usage: dict[tuple[str, str], ModelUsage] = {}

    @property
    def model(self) -> str | None:
        return getattr(self._default(), "model", None)

    async def generate(self, request: ReplyRequest, sink: ReplySink) -> ReplyResult:
        """Write the reply with the charter's provider; count what it used."""
        charter = request_charter(request)
        provider = provider_of(charter)
        generator = self.generators.get(provider)
        if generator is None:
            if charter.model_settings.provider is not None:
                raise ModelError(not_configured(provider))
            generator = self.fallback
        result = await generator.generate(request, sink)
        self._count(result.provider or generator.name, result)
        return result

    async def aclose(self) -> None:
        for generator in [*self.generators.values(), self.fallback]:
            await generator.aclose()

    def usage(self) -> list[ModelUsage]:
        """Counters by provider and model since start-up, sorted."""
        return [self._usage[key] for key in sorted(self._usage)]

    def describe(self) -> dict[str, Any]:
        """The default provider's description (as a single generator gives it), plus every
        configured provider's and the usage by provider and model."""
        described = dict(_describe(self._default()))
        described["default_provider"] = DEFAULT_PROVIDER
        described["providers"] = {name: _describe(g) for name, g in self.generators.items()}
        described["usage"] = [asdict(entry) for entry in self.usage()]
        return described

    def _default(self) -> ReplyGenerator:
        return self.generators.get(DEFAULT_PROVIDER) or self.fallback

    def _count(self, provider: str, result: ReplyResult) -> None:
        key = (provider, result.model)
        entry = self._usage.get(key)
        if entry is None:
            entry = self._usage[key] = ModelUsage(provider, result.model)
        entry.replies += 1
        entry.input_tokens += result.usage.get("input_tokens", 0)
        entry.output_tokens += result.usage.get("output_tokens", 0)


def _describe(generator: ReplyGenerator) -> dict[str, Any]:
    describe = getattr(generator, "describe", None)
    if callable(describe):
        described = describe()
        if isinstance(described, dict):
            return described
    return {"provider": generator.name, "model": getattr(generator, "model", None)}
