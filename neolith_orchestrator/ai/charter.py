"""The charter: who an orchestrator is. Stored in `users.orchestrator_config`, validated here,
turned into the system prompt by `ai.prompt`."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

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


_ITEM_MAX = 1_000
# A setting in `communication_preferences` / `operational_settings`: shown to the model as
# "Key: value", so only values that read as text are accepted (checked below).
Setting = str | bool | int | float | list[str]
_SETTINGS_MAX = 30
# Neolith's web app writes camelCase; we store snake_case and read both.
_NAMES = ConfigDict(
    extra="forbid", str_strip_whitespace=True, validate_by_name=True, validate_by_alias=True
)


class Personality(BaseModel):
    """Neolith's structured personality (a plain text works too)."""

    model_config = _NAMES

    traits: list[str] = Field(default_factory=list, max_length=20)
    communication_style: str = Field("", max_length=500, alias="communicationStyle")
    decision_making_style: str = Field("", max_length=500, alias="decisionMakingStyle")
    background: str = Field("", max_length=2_000)


def _text_or_object(value: Any) -> str:
    return "text" if isinstance(value, str) else "object"


# A text, or an object: errors name only the branch the input chose, never both.
PersonalityField = Annotated[
    Annotated[str, Field(max_length=1_000), Tag("text")] | Annotated[Personality, Tag("object")],
    Discriminator(_text_or_object),
]
SettingsField = Annotated[
    Annotated[str, Field(max_length=2_000), Tag("text")] | Annotated[dict[str, Any], Tag("object")],
    Discriminator(_text_or_object),
]


class Charter(BaseModel):
    """An orchestrator's role, discipline, personality and standing instructions.

    Our shape (`role`, `discipline`, `mission`, `personality`, `instructions`,
    `capabilities`, `model_settings`) and Neolith's (`vision`, `values`, `expertise`,
    a structured `personality`, `communicationPreferences`, `operationalSettings`) are both
    accepted; an unknown field is refused by name, so a typo cannot pass unnoticed.
    """

    model_config = _NAMES

    name: str = Field(min_length=1, max_length=100)
    role: str = Field("", max_length=200)
    discipline: str = Field("", max_length=200)
    mission: str = Field("", max_length=2_000)
    personality: PersonalityField = ""
    instructions: list[str] = Field(default_factory=list, max_length=50)
    capabilities: list[str] = Field(default_factory=list, max_length=50)
    model_settings: ModelSettings = Field(default_factory=ModelSettings)
    # Neolith's fields: stored only when given.
    vision: str = Field("", max_length=2_000)
    values: list[str] = Field(default_factory=list, max_length=30)
    expertise: list[str] = Field(default_factory=list, max_length=50)
    communication_preferences: SettingsField = Field("", alias="communicationPreferences")
    operational_settings: SettingsField = Field("", alias="operationalSettings")

    @field_validator("instructions", mode="before")
    @classmethod
    def _text_is_lines(cls, value: Any) -> Any:
        """One text becomes its lines (without their bullets), one instruction each."""
        if not isinstance(value, str):
            return value
        lines = (line.strip() for line in value.splitlines())
        return [_BULLET.sub("", line) for line in lines if line]

    @field_validator("communication_preferences", "operational_settings")
    @classmethod
    def _settings(cls, value: str | dict[str, Any]) -> str | dict[str, Setting]:
        if isinstance(value, str):
            return value
        if len(value) > _SETTINGS_MAX:
            raise ValueError(f"at most {_SETTINGS_MAX} entries")
        for key, item in value.items():
            if not key.strip() or len(key) > 100:
                raise ValueError(f"{key[:100]!r}: a key is 1 to 100 characters")
            texts = item if isinstance(item, list) else [item]
            if not all(isinstance(t, str | bool | int | float) for t in texts) or (
                isinstance(item, list) and not all(isinstance(t, str) for t in item)
            ):
                raise ValueError(f"{key}: must be text, a number, true/false or a list of texts")
            if any(len(str(t)) > 500 for t in texts):
                raise ValueError(f"{key}: a value is at most 500 characters")
        return value

    def to_config(self) -> dict[str, Any]:
        """The stored form (snake_case; Neolith's fields only when set): `parse_charter`
        reads it back to an equal charter."""
        data = self.model_dump(mode="json")
        for key in _OPTIONAL:
            if not data[key]:
                del data[key]
        return data


_BULLET = re.compile(r"^(?:[-*•]|\d+[.)])\s+")
_OPTIONAL = ("vision", "values", "expertise", "communication_preferences", "operational_settings")
# Lists whose items must each be 1 to _ITEM_MAX characters.
_LISTS = ("instructions", "capabilities", "values", "expertise")


def parse_charter(data: Any) -> Charter:
    """Validate a charter, raising `ValidationFailed` that names each bad field."""
    try:
        charter = Charter.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(f"invalid charter: {_describe(exc)}") from exc
    lists = [(name, getattr(charter, name)) for name in _LISTS]
    if isinstance(charter.personality, Personality):
        lists.append(("personality.traits", charter.personality.traits))
    for field_name, items in lists:
        for index, item in enumerate(items):
            if not item.strip() or len(item) > _ITEM_MAX:
                raise ValidationFailed(
                    f"invalid charter: {field_name}.{index}: must be 1 to {_ITEM_MAX} characters"
                )
    return charter


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = err["loc"]
        # A text-or-object field reports its branch (`personality.object`): name the
        # field as the user wrote it.
        where = ".".join(str(p) for p in loc if not _is_branch(p)) or "charter"
        if err["type"] == "extra_forbidden":
            parts.append(f"{where}: {_unknown(loc)}")
        elif loc[-1:] == ("object",):
            parts.append(f"{where}: must be a text or an object")
        else:
            parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(dict.fromkeys(parts))


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and part in _BRANCHES


_BRANCHES = frozenset({"text", "object"})


def _unknown(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Personality if loc[:1] == ("personality",) else Charter
    known = set()
    for field_name, info in model.model_fields.items():
        known.add(field_name)
        if info.alias:
            known.add(info.alias)
    close = difflib.get_close_matches(str(loc[-1]), sorted(known), n=1)
    return f"unknown field{f' (did you mean {close[0]!r}?)' if close else ''}"
