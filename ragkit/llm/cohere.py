"""Cohere's chat API through the ``cohere`` SDK (extra ``ragkit[cohere]``). The key comes from ``api_key`` or
``COHERE_API_KEY``; ``base_url`` points the SDK at another endpoint (tests use a local server that speaks the API)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

from ragkit.errors import ConfigError, PluginError
from ragkit.llm import Completion, Message, Usage, yes_no_from_text


class CohereLLM:
    def __init__(self, model: str = "command-r", *, api_key: str = "", base_url: str = "",
                 context_window: int = 128000, timeout: float = 60.0, max_retries: int = 2) -> None:
        self.model = self.model_id = model
        self._api_key = api_key or os.environ.get("COHERE_API_KEY", "")
        self.base_url = base_url or os.environ.get("CO_API_URL", "")
        self._window = context_window
        self.timeout, self.max_retries = timeout, max_retries
        self._client: Any = None

    def warm_up(self) -> "CohereLLM":
        if self._client is None:
            if not self._api_key:
                raise ConfigError("cohere LLM: no API key (set COHERE_API_KEY or api_key)")
            try:
                import cohere
            except ImportError:
                raise PluginError("cohere backend needs the cohere SDK: pip install 'ragkit[cohere]'") from None
            kw: dict[str, Any] = {"api_key": self._api_key, "timeout": self.timeout}
            if self.base_url:
                kw["base_url"] = self.base_url
            self._client = cohere.ClientV2(**kw)
        return self

    @property
    def client(self) -> Any:
        return self.warm_up()._client

    @property
    def context_window(self) -> int:
        return self._window

    def count_tokens(self, text: str) -> int:
        return max(1, math.ceil(len(text) / 3.5))

    def call(self, fn: str, **kw: Any) -> Any:
        """Call ``client.<fn>`` with retries on 429/5xx and one-line errors on auth/quota failures."""
        import time

        from ragkit.llm.cohere_errors import classify

        client = self.client  # configuration errors (no key, no SDK) surface as they are, not as API failures
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            try:
                # this loop is the only retry: the SDK's own retries (2 by default) would multiply with it
                result = getattr(client, fn)(model=self.model, request_options={"max_retries": 0}, **kw)
                if fn.endswith("_stream"):  # the HTTP call happens on the first event: fail (or retry) here
                    import itertools

                    events = iter(result)
                    first = next(events, None)
                    return itertools.chain([] if first is None else [first], events)
                return result
            except Exception as exc:  # the SDK raises typed errors per status; classify maps them
                kind, message = classify(exc, self.base_url or "api.cohere.com")
                if kind == "retry" and attempt < self.max_retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise PluginError(message) from None
        raise AssertionError("unreachable")

    def chat(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None, **extra: Any) -> Completion:
        resp = self.call("chat", messages=messages, max_tokens=max_tokens, temperature=temperature,
                         stop_sequences=stop or None, **extra)
        text = "".join(getattr(c, "text", "") or "" for c in (resp.message.content or []))
        tokens = getattr(getattr(resp, "usage", None), "tokens", None)
        usage = Usage(int(tokens.input_tokens or 0), int(tokens.output_tokens or 0)) if tokens else Usage()
        return Completion(text=text, usage=usage, finish_reason=str(getattr(resp, "finish_reason", "") or ""))

    def stream(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               stop: list[str] | None = None, usage: Usage | None = None) -> Iterator[str]:
        events = self.call("chat_stream", messages=messages, max_tokens=max_tokens, temperature=temperature,
                           stop_sequences=stop or None)
        for ev in events:
            if ev.type == "content-delta":
                text = ev.delta.message.content.text or ""
                if text:
                    yield text
            elif ev.type == "message-end" and usage is not None:
                tokens = getattr(getattr(ev.delta, "usage", None), "tokens", None)
                if tokens:
                    usage.prompt_tokens += int(tokens.input_tokens or 0)
                    usage.completion_tokens += int(tokens.output_tokens or 0)

    def yes_probability(self, messages: list[Message]) -> float:
        guess = yes_no_from_text(self.chat(messages, max_tokens=2).text)
        return float("nan") if guess is None else guess
