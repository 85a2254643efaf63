"""Settings of the LLM used by the AI-factor stage (factor generation, news analysis), through
litellm: any provider it speaks to (OpenAI, Qwen/DashScope, a local Ollama or vLLM server)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class LLMResource(ConfigurableResource):
    """Unset by default: the AI-factor stage then runs its offline generator and analyser.
    The key comes from the settings as an EnvVar and is handed to litellm only, never to a
    prompt, a log line or MLflow."""

    model: str | None = Field(default=None, description="litellm model name, e.g. openai/gpt-4o")
    api_key: str | None = Field(default=None, description="provider key (from the environment)")
    api_base: str | None = Field(default=None, description="base URL for local/vLLM/Ollama")
    timeout: float = Field(default=60.0, description="seconds per call")
    retries: int = Field(default=3, description="further attempts after a failed answer")
    max_tokens: int = Field(default=200_000, description="prompt + completion tokens per run")
    max_cost_usd: float = Field(default=5.0, description="spend per run, where priced")

    @property
    def enabled(self) -> bool:
        return bool(self.model)
