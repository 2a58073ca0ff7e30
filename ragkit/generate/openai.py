"""``generator.openai``: grounded answers from any OpenAI-compatible chat endpoint (OpenAI, Azure OpenAI, vLLM,
Ollama, llama.cpp's server) through the ``openai`` SDK (extra ``ragkit[openai]``). Nothing is called until
``base_url`` and ``model`` are configured; the key comes from ``api_key`` or ``OPENAI_API_KEY``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from ragkit.errors import ConfigError
from ragkit.generate.grounded import GroundedGenerator, GroundedParams


class OpenAIGenerator(GroundedGenerator):
    stage, name = "generator", "openai"

    class Params(GroundedParams):
        base_url: str = Field("", description="e.g. http://127.0.0.1:8080/v1 or https://api.openai.com/v1 "
                                              "(or OPENAI_BASE_URL)")
        model: str = Field("", description="model name at that endpoint (or OPENAI_MODEL)")
        api_key: SecretStr = Field(SecretStr(""), description="prefer the OPENAI_API_KEY environment variable")
        context_window: int = Field(8192, ge=256, description="tokens the served model accepts")
        timeout: float = Field(60.0, gt=0)

    def _build_llm(self) -> Any:
        from ragkit.llm.openai_compat import OpenAICompatLLM

        p = self.params
        try:
            return OpenAICompatLLM(p.base_url, p.model, api_key=p.api_key.get_secret_value(),
                                   context_window=p.context_window, timeout=p.timeout)
        except ConfigError as exc:
            raise ConfigError(f"generator 'openai': {exc}") from None
