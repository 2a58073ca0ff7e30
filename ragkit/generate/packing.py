"""Prompt templates and context packing: which retrieved sources go into the prompt, in what order, and how much
of each, so that prompt + answer fit the model's context window."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError
from ragkit.generate.replies import NOT_FOUND
from ragkit.text import sentence_pieces
from ragkit.types import Event, Hit

PROMPTS = Path(__file__).parent / "prompts"
DEFAULT_TEMPLATE = "answer-v1"
DEFAULT_RETRY_TEMPLATE = "answer-retry-v1"
MESSAGE_SLACK = 8  # tokens a chat template adds around one message (role markers), when it cannot be measured


class PromptTemplate:
    """A Jinja2 file holding two messages, each introduced by a marker line ``=== system ===`` / ``=== user ===``.

    ``name`` is a built-in template (a file stem under ``ragkit/generate/prompts/``) or a path. The version recorded
    in every answer's trace is the file stem plus the first 8 hex digits of the file's sha256, so an edited
    template is never mistaken for the original."""

    MARKER = re.compile(r"^=== (system|user) ===[ \t]*$", re.M)

    def __init__(self, name: str = DEFAULT_TEMPLATE) -> None:
        path = PROMPTS / f"{name}.j2" if "/" not in name and not name.endswith((".j2", ".txt")) else Path(name)
        path = path.expanduser()
        if not path.is_file():
            builtin = ", ".join(sorted(p.stem for p in PROMPTS.glob("*.j2")))
            raise ConfigError(f"prompt template {name!r}: no such file (give a path or one of: {builtin})")
        source = path.read_text(encoding="utf-8")
        self.path = path
        self.version = f"{path.stem}@{hashlib.sha256(source.encode()).hexdigest()[:8]}"
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                                 trim_blocks=True, lstrip_blocks=True)
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"prompt template {path}: line {exc.lineno}: {exc.message}") from None
        if "user" not in self.MARKER.findall(self._template.render(query="", sources=[], not_found="")):
            raise ConfigError(f"prompt template {path}: needs a '=== user ===' marker line (and optionally "
                              "'=== system ===') before each message")

    def render(self, query: str, sources: list[dict[str, Any]], not_found: str = NOT_FOUND) -> list[dict[str, str]]:
        import jinja2

        try:
            text = self._template.render(query=query, sources=sources, not_found=not_found)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt template {self.path}: {exc.message}") from None
        parts = self.MARKER.split(text)
        return [{"role": role, "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2])]


@dataclass
class Packing:
    """The sources that made it into the prompt, in prompt order, and why (``events`` of kind ``pack``)."""

    sources: list[dict[str, Any]] = field(default_factory=list)  # {n, doc_id, title, text}
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    budget: int = 0
    events: list[Event] = field(default_factory=list)

    @property
    def numbers(self) -> list[int]:
        """The ``[n]`` of the packed sources, in prompt order."""
        return [s["n"] for s in self.sources]

    @property
    def decisions(self) -> list[str]:
        return [e.text for e in self.events]

    def note(self, text: str, **data: Any) -> None:
        self.events.append(Event("pack", text, data))


def prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens of ``messages`` as the model will see them: exact when the backend can render its chat template
    (llama.cpp), else the sum of the contents plus a few tokens per message."""
    exact = getattr(llm, "prompt_tokens", None)
    if callable(exact):
        return int(exact(messages))
    return sum(llm.count_tokens(m["content"]) + MESSAGE_SLACK for m in messages)


def lost_in_the_middle(items: list[Any]) -> list[Any]:
    """Best first and second-best last, weakest in the middle: 1 3 5 ... 6 4 2 (Liu et al., 2023)."""
    return items[0::2] + items[1::2][::-1]


def pack(query: str, hits: list[Hit], llm: Any, template: PromptTemplate, *, max_tokens: int,
         max_sources: int, order: str = "score", not_found: str = NOT_FOUND) -> Packing:
    """Add sources in score order while prompt + ``max_tokens`` fit ``llm.context_window``; the first source that
    does not fit whole is trimmed to its longest prefix of whole sentences that fits, and packing stops there."""
    window = int(llm.context_window)
    budget = window - max_tokens
    packed: list[dict[str, Any]] = []

    def measure(sources: list[dict[str, Any]]) -> tuple[int, list[dict[str, str]]]:
        shown = lost_in_the_middle(sources) if order == "lost-in-the-middle" else sources
        msgs = template.render(query, shown, not_found)
        return prompt_tokens(llm, msgs), msgs

    used, messages = measure([])
    if used > budget:
        raise ConfigError(f"the prompt alone takes {used} tokens and the answer {max_tokens}: more than the model's "
                          f"{window}-token context window; raise n_ctx or lower max_tokens")
    out = Packing(budget=budget)
    for i, hit in enumerate(hits[:max_sources]):
        meta = hit.chunk.metadata
        src = {"n": i + 1, "doc_id": hit.doc_id, "title": str(meta.get("title") or ""), "text": hit.chunk.text.strip()}
        n_used, msgs = measure(packed + [src])
        if n_used <= budget:
            packed.append(src)
            out.note(f"packed [{src['n']}] {hit.doc_id}: {n_used - used} tokens", action="packed", n=src["n"],
                     doc_id=hit.doc_id, tokens=n_used - used)
            used, messages = n_used, msgs
            continue
        pieces = sentence_pieces(src["text"])
        lo, hi, best = 1, len(pieces) - 1, None  # binary search the longest prefix of whole sentences that fits
        while lo <= hi:
            mid = (lo + hi) // 2
            trial = {**src, "text": "".join(pieces[:mid]).strip()}
            n_mid, msgs_mid = measure(packed + [trial])
            if n_mid <= budget:
                best, lo = (mid, trial, n_mid, msgs_mid), mid + 1
            else:
                hi = mid - 1
        if best is not None:
            mid, trial, n_mid, msgs_mid = best
            packed.append(trial)
            out.note(f"trimmed [{src['n']}] {hit.doc_id} to {mid}/{len(pieces)} sentences ({n_mid - used} tokens) "
                     "to fit the window", action="trimmed", n=src["n"], doc_id=hit.doc_id, tokens=n_mid - used,
                     sentences=mid, of=len(pieces))
            used, messages = n_mid, msgs_mid
        rest = len(hits[:max_sources]) - len(packed)
        if rest:
            out.note(f"dropped {rest} source(s) from [{len(packed) + 1}]: the {window}-token window minus "
                     f"{max_tokens} answer tokens is full ({used} prompt tokens)", action="dropped", count=rest)
        break
    if len(hits) > max_sources:
        out.note(f"left out {len(hits) - max_sources} hit(s) beyond max_sources={max_sources}", action="left_out",
                 count=len(hits) - max_sources)
    out.sources = lost_in_the_middle(packed) if order == "lost-in-the-middle" else packed
    if order == "lost-in-the-middle" and len(packed) > 2:
        out.note("order lost-in-the-middle: " + " ".join(f"[{s['n']}]" for s in out.sources), action="order",
                 order=[s["n"] for s in out.sources])
    out.messages, out.prompt_tokens = messages, used
    out.note(f"prompt {used} tokens + answer <= {max_tokens} tokens, window {window}", action="budget",
             prompt_tokens=used, max_tokens=max_tokens, window=window)
    return out
