"""A local GGUF model through llama-cpp-python (extra ``ragkit[local-llm]``).

One ``Llama`` object per (file, context size, threads) is shared by every user in the process — the generator,
the LLM reranker and the judge load the weights once. llama.cpp contexts are not thread-safe, so calls on one
model are serialised by a lock. Consecutive prompts that share a prefix reuse its evaluated KV cache (llama-cpp-python
keeps the longest common token prefix), which is why scorers put the shared instruction + question first.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator
from typing import Any

from ragkit.errors import ConfigError, PluginError
from ragkit.llm import Completion, Message, Usage
from ragkit.llm.models import resolve_gguf

_LOADED: dict[tuple, tuple[Any, threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()


@atexit.register
def _close_all() -> None:
    """Free the models before interpreter teardown (llama-cpp-python's __del__ fails once its globals are gone)."""
    while _LOADED:
        llm, _ = _LOADED.popitem()[1]
        try:
            llm.close()
        except Exception:  # best effort at exit
            pass

YES_WORDS = ("yes", "Yes", " yes", " Yes", "YES")
NO_WORDS = ("no", "No", " no", " No", "NO")


class LlamaCppLLM:
    def __init__(self, model: str = "qwen0.5b", *, repo_id: str = "", filename: str = "", n_ctx: int = 4096,
                 n_threads: int = 2, seed: int = 0, n_batch: int = 512) -> None:
        self.model = model
        self.repo_id, self.filename = repo_id, filename
        self.n_ctx, self.n_threads, self.seed, self.n_batch = n_ctx, n_threads, seed, n_batch
        self.model_id = f"{repo_id}/{filename}" if repo_id else str(model)
        self._llm: Any = None
        self._lock: threading.Lock | None = None

    # -- loading ----------------------------------------------------------------------------------------------
    def warm_up(self) -> "LlamaCppLLM":
        if self._llm is not None:
            return self
        try:
            from llama_cpp import Llama
        except ImportError:
            raise PluginError("llama-cpp backend needs llama-cpp-python: pip install 'ragkit[local-llm]'") from None
        if self.repo_id:
            key: tuple = ("hub", self.repo_id, self.filename, self.n_ctx, self.n_threads)
        else:
            path = resolve_gguf(self.model)
            key = (str(path), self.n_ctx, self.n_threads)
            self.model_id = path.name
        with _LOAD_LOCK:
            if key not in _LOADED:
                kw = dict(n_ctx=self.n_ctx, n_threads=self.n_threads, n_batch=self.n_batch, seed=self.seed,
                          logits_all=False, verbose=False)
                try:
                    if self.repo_id:  # online users only: llama-cpp-python downloads from the hub
                        llm = Llama.from_pretrained(repo_id=self.repo_id, filename=self.filename, **kw)
                    else:
                        llm = Llama(model_path=key[0], **kw)
                except ValueError as exc:
                    raise ConfigError(f"model {self.model_id!r}: llama.cpp could not load it: {exc}") from None
                _LOADED[key] = (llm, threading.Lock())
            self._llm, self._lock = _LOADED[key]
        return self

    @property
    def context_window(self) -> int:
        # llama.cpp may round the context up (to 256 tokens at least) but llama-cpp-python sizes its token buffer
        # by the requested n_ctx, so the smaller of the two is what a prompt plus its reply may use.
        actual = self.warm_up()._llm.n_ctx()
        return min(actual, self.n_ctx) if self.n_ctx > 0 else actual

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def tokenize(self, text: str) -> list[int]:
        return self.warm_up()._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    # -- prompting --------------------------------------------------------------------------------------------
    def render(self, messages: list[Message]) -> str:
        """The chat template of the GGUF applied to ``messages``, ending with the assistant's turn opened."""
        llm = self.warm_up()._llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = llm.detokenize([llm.token_eos()]).decode("utf-8", "ignore")
        bos = llm.detokenize([llm.token_bos()]).decode("utf-8", "ignore") if llm.token_bos() >= 0 else ""
        fmt = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return fmt(messages=messages).prompt

    def prompt_tokens(self, messages: list[Message]) -> int:
        """Exact prompt length of ``messages``: the chat template rendered and tokenized as ``stream`` does."""
        self.warm_up()
        return len(self._llm.tokenize(self.render(messages).encode("utf-8"), add_bos=True, special=True))

    def chat(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
             stop: list[str] | None = None) -> Completion:
        usage = Usage()
        text = "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature, stop=stop,
                                   usage=usage))
        return Completion(text=text, usage=usage, finish_reason=getattr(self, "_last_finish", ""))

    def stream(self, messages: list[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               stop: list[str] | None = None, usage: Usage | None = None) -> Iterator[str]:
        self.warm_up()
        prompt = self.render(messages)
        n_prompt = len(self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))  # = prompt_tokens()
        room = self.context_window - n_prompt
        if room <= 0:
            raise PluginError(f"prompt of {n_prompt} tokens does not fit the model's {self.context_window}-token "
                              "context window")
        n_out = 0
        with self._lock:
            parts = self._llm.create_completion(prompt, max_tokens=min(max_tokens, room), temperature=temperature,
                                                top_k=1 if temperature == 0 else 40, seed=self.seed,
                                                stop=stop or [], stream=True)
            for part in parts:
                choice = part["choices"][0]
                if choice.get("finish_reason"):
                    self._last_finish = choice["finish_reason"]
                delta = choice.get("text") or ""
                if delta:
                    n_out += 1
                    yield delta
        if usage is not None:
            usage.prompt_tokens += n_prompt
            # llama-cpp-python streams one piece per token (multi-byte characters may merge two)
            usage.completion_tokens += n_out

    def _answer_ids(self, words: tuple[str, ...]) -> list[int]:
        """Vocabulary ids of the single tokens that spell one of ``words`` (case and leading-space variants)."""
        ids = set()
        for w in words:
            toks = self._llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)
            if len(toks) == 1:
                ids.add(toks[0])
        return sorted(ids)

    def yes_probability(self, messages: list[Message]) -> float:
        """P("yes") / (P("yes") + P("no")) for the first token of the reply, from the model's next-token logits.

        The logits are captured through a logits processor on a one-token completion, so no ``logits_all`` context
        (which costs memory per prompt token) is needed and the KV-cache prefix reuse of ``create_completion`` still
        applies. NaN when neither word is among the model's 20 likeliest first tokens: the judge did not answer the
        question, and callers count that as a failure.
        """
        import numpy as np
        from llama_cpp import LogitsProcessorList

        self.warm_up()
        prompt = self.render(messages)
        captured: list[np.ndarray] = []

        def keep(_ids: Any, scores: Any) -> Any:
            captured.append(np.array(scores, dtype=np.float64, copy=True))
            return scores

        with self._lock:
            yes_ids, no_ids = self._answer_ids(YES_WORDS), self._answer_ids(NO_WORDS)
            self._llm.create_completion(prompt, max_tokens=1, temperature=0.0, top_k=1,
                                        logits_processor=LogitsProcessorList([keep]))
        if not captured:
            return float("nan")
        logits = captured[0]
        top20 = set(np.argpartition(-logits, 20)[:20].tolist())
        if not top20.intersection(yes_ids + no_ids):
            return float("nan")
        probs = np.exp(logits - logits.max())
        p_yes, p_no = float(probs[yes_ids].sum()), float(probs[no_ids].sum())
        return p_yes / (p_yes + p_no)
