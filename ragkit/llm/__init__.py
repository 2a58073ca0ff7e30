"""Language models as one small interface, shared by every stage that needs one.

Generators (``ragkit.generate``), the LLM reranker, the query transforms that write text (multi-query, HyDE),
the answer judges (``ragkit.evaluate``) and synthetic-query generation all talk to an :class:`LLM`. Backends:

- ``llama-cpp``: a local GGUF file through llama-cpp-python (``ragkit[local-llm]``)
- ``openai``: any OpenAI-compatible chat endpoint (OpenAI, Azure, vLLM, Ollama, llama.cpp's server)
- ``cohere``: Cohere's chat API through the ``cohere`` SDK

Nothing here opens a network connection or loads a model until it is called: an LLM is off until configured.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": "..."}


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclass
class Completion:
    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = ""


@runtime_checkable
class LLM(Protocol):
    """What every backend offers. Calls are thread-safe (backends serialise where the library needs it)."""

    model_id: str

    @property
    def context_window(self) -> int:
        """Tokens the model accepts, prompt + completion."""

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` with the model's own tokenizer (or a documented estimate when it has none)."""

    def chat(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None) -> Completion: ...

    def stream(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               stop: list[str] | None = None, usage: Usage | None = None) -> Iterator[str]:
        """Yield text deltas; when ``usage`` is given it is filled in once the stream ends."""

    def yes_probability(self, messages: list[Message]) -> float:
        """P("yes") / (P("yes") + P("no")) for the first token of the reply (a calibrated yes/no score)."""


def make_llm(spec: str | dict[str, Any]) -> LLM:
    """Build an LLM from a short spec.

    Strings: ``local`` (the default offline model), ``local:qwen1.5b`` / ``local:/path/model.gguf``,
    ``openai:http://127.0.0.1:8080/v1`` (model from ``OPENAI_MODEL``/"default"), ``cohere`` / ``cohere:command-r``.
    Dicts: ``{"backend": "llama-cpp"|"openai"|"cohere", **params}``.
    """
    from ragkit.errors import ConfigError

    if isinstance(spec, str):
        kind, _, rest = spec.partition(":")
        if kind in ("local", "llama-cpp"):
            params: dict[str, Any] = {"backend": "llama-cpp", "model": rest or "qwen0.5b"}
        elif kind == "openai":
            params = {"backend": "openai"}
            if rest:
                params["base_url"] = rest
        elif kind == "cohere":
            params = {"backend": "cohere"}
            if rest:
                params["model"] = rest
        else:
            raise ConfigError(f"LLM {spec!r}: unknown backend {kind!r} (local, local:<model or .gguf>, "
                              "openai:<base_url>, cohere[:model])")
    else:
        params = dict(spec)
    backend = params.pop("backend", None)
    if backend == "llama-cpp":
        from ragkit.llm.llama_cpp import LlamaCppLLM
        return LlamaCppLLM(**params)
    if backend == "openai":
        from ragkit.llm.openai_compat import OpenAICompatLLM
        return OpenAICompatLLM(**params)
    if backend == "cohere":
        from ragkit.llm.cohere import CohereLLM
        return CohereLLM(**params)
    raise ConfigError(f"LLM backend {backend!r} unknown (llama-cpp, openai, cohere)")


def yes_no_from_text(text: str) -> float | None:
    """Fallback for backends without logprobs: 1.0 / 0.0 from a reply that starts with yes / no, else None."""
    word = text.strip().lstrip("*\"'`").split(maxsplit=1)[0].strip(".,!:;*\"'`").lower() if text.strip() else ""
    return 1.0 if word == "yes" else 0.0 if word == "no" else None
