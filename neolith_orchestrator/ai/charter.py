"""The charter: who an orchestrator is. Stored in `users.orchestrator_config`, validated here,
turned into the system prompt by `ai.prompt`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from neolith_orchestrator.errors import ValidationFailed


class ModelSettings(BaseModel):
    """Which provider and model write an orchestrator's replies, and optional overrides.

    `provider` is "anthropic" (the default when unset) or "openai" (any OpenAI-compatible
    server); a named provider must have credentials on the server (`ai.providers`). `model`
    defaults to that provider's ANTHROPIC_MODEL or OPENAI_MODEL. `temperature` is sent to
    OpenAI-compatible servers only: the Messages API version the Anthropic SDK speaks refuses
    sampling parameters (that generator logs this once).
    """

    model_config = ConfigDict(extra="forbid")

    provider: Literal["anthropic", "openai"] | None = None
    model: str | None = Field(None, min_length=1, max_length=100)
    max_tokens: int | None = Field(None, ge=1, le=8_192)
    temperature: float | None = Field(None, ge=0.0, le=1.0)


class Charter(BaseModel):
    """An orchestrator's role, discipline, personality and standing instructions."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100)
    role: str = Field("", max_length=200)
    discipline: str = Field("", max_length=200)
    mission: str = Field("", max_length=2_000)
    personality: str = Field("", max_length=1_000)
    instructions: list[str] = Field(default_factory=list, max_length=50)
    capabilities: list[str] = Field(default_factory=list, max_length=50)
    model_settings: ModelSettings = Field(default_factory=ModelSettings)

    def to_config(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


_ITEM_MAX = 1_000


def parse_charter(data: Any) -> Charter:
    """Validate a charter, raising `ValidationFailed` that names each bad field."""
    try:
        charter = Charter.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(f"invalid charter: {_describe(exc)}") from exc
    for field_name in ("instructions", "capabilities"):
        for index, item in enumerate(getattr(charter, field_name)):
            if not item.strip() or len(item) > _ITEM_MAX:
                raise ValidationFailed(
                    f"invalid charter: {field_name}.{index}: must be 1 to {_ITEM_MAX} characters"
                )
    return charter


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "charter"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
