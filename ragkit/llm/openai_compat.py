"""Any OpenAI-compatible chat endpoint through the official ``openai`` SDK: OpenAI, Azure OpenAI, vLLM, Ollama,
llama.cpp's server. ``base_url`` and ``model`` are required (no default endpoint: nothing calls a hosted model
unless the user names it); the key comes from ``api_key`` or ``OPENAI_API_KEY`` ("none" for local servers)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from ragkit.errors import ConfigError, PluginError
from ragkit.llm import Completion, Message, Usage, yes_no_from_text


class OpenAICompatLLM:
    def __init__(self, base_url: str = "", model: str = "", *, api_key: str = "", context_window: int = 8192,
                 timeout: float = 60.0, max_retries: int = 2, seed: int | None = 0) -> None:
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL", "")
        self.model = model or os.environ.get("OPENAI_MODEL", "")
        if not self.base_url:
            raise ConfigError("openai LLM: base_url is required (e.g. http://127.0.0.1:8080/v1 or "
                              "https://api.openai.com/v1)")
        if not self.model:
            raise ConfigError(f"openai LLM at {self.base_url}: model is required")
        self.model_id = self.model
        self._api_key = api_key or os.environ.get("OPENAI_API_KEY") or "none"
        self._window = context_window
        self.timeout, self.max_retries, self.seed = timeout, max_retries, seed
        self._client: Any = None

    def warm_up(self) -> "OpenAICompatLLM":
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise PluginError("openai backend needs the openai SDK: pip install openai") from None
            self._client = openai.OpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout,
                                         max_retries=self.max_retries)
        return self

    @property
    def context_window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        # the endpoint's tokenizer is not reachable through the API: a conservative estimate (~3.5 chars/token)
        return max(1, math.ceil(len(text) / 3.5))

    def _call(self, **kw: Any) -> Any:
        import openai

        self.warm_up()
        try:
            return self._client.chat.completions.create(model=self.model, **kw)
        except openai.AuthenticationError as exc:
            raise PluginError(f"openai LLM at {self.base_url}: authentication failed (check api_key / "
                              f"OPENAI_API_KEY): {exc.status_code}") from None
        except openai.RateLimitError:
            raise PluginError(f"openai LLM at {self.base_url}: rate limit or quota exceeded (429)") from None
        except openai.APIConnectionError as exc:
            raise PluginError(f"openai LLM at {self.base_url}: cannot connect ({exc.__class__.__name__})") from None
        except openai.APIStatusError as exc:
            raise PluginError(f"openai LLM at {self.base_url}: HTTP {exc.status_code}: {exc.message}") from None

    def chat(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None) -> Completion:
        resp = self._call(messages=messages, max_tokens=max_tokens, temperature=temperature, stop=stop or None,
                          seed=self.seed)
        choice = resp.choices[0]
        u = resp.usage
        return Completion(text=choice.message.content or "",
                          usage=Usage(u.prompt_tokens, u.completion_tokens) if u else Usage(),
                          finish_reason=choice.finish_reason or "")

    def stream(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               stop: list[str] | None = None, usage: Usage | None = None) -> Iterator[str]:
        parts = self._call(messages=messages, max_tokens=max_tokens, temperature=temperature, stop=stop or None,
                           seed=self.seed, stream=True, stream_options={"include_usage": True})
        n = 0
        reported = False
        for part in parts:
            if part.choices:
                delta = part.choices[0].delta.content or ""
                if delta:
                    n += 1
                    yield delta
            if getattr(part, "usage", None) and usage is not None:
                usage.prompt_tokens += part.usage.prompt_tokens
                usage.completion_tokens += part.usage.completion_tokens
                reported = True
        if usage is not None and not reported:
            usage.prompt_tokens += sum(self.count_tokens(m["content"]) for m in messages)
            usage.completion_tokens += n

    def yes_probability(self, messages: list[Message]) -> float:
        resp = self._call(messages=messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10,
                          seed=self.seed)
        choice = resp.choices[0]
        lp = getattr(choice, "logprobs", None)
        if lp and lp.content:
            top = {t.token: t.logprob for t in (lp.content[0].top_logprobs or [])}
            p_yes = sum(math.exp(v) for k, v in top.items() if k.strip().lower() == "yes")
            p_no = sum(math.exp(v) for k, v in top.items() if k.strip().lower() == "no")
            if p_yes + p_no > 0:
                return p_yes / (p_yes + p_no)
        guess = yes_no_from_text(choice.message.content or "")
        return float("nan") if guess is None else guess
