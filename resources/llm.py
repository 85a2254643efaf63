"""Settings of the LLM used for factor generation, through litellm (any provider)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class LLMResource(ConfigurableResource):
    """Unset by default. Read by the AI-factor stage, which a later issue builds; `enabled`
    tells that stage whether an LLM is configured."""

    model: str | None = Field(default=None, description="litellm model name, e.g. openai/gpt-4o")
    api_key: str | None = Field(default=None, description="provider key (from the environment)")
    api_base: str | None = Field(default=None, description="base URL for local/vLLM/Ollama")

    @property
    def enabled(self) -> bool:
        return bool(self.model)
