"""``generator.cohere``: Cohere's chat with ``documents=`` (extra ``ragkit[cohere]``). Cohere grounds the answer
itself and returns citations as character spans with the ids of the documents they rest on; ragkit sends each
packed source as document id ``"n"`` and turns every citation into an ``[n]`` marker after its span, so the answer
reads (and is checked) like the other generators'. The key comes from ``api_key`` or ``COHERE_API_KEY``;
``base_url`` points at another deployment (tests use a local server that speaks the v2 API)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from pydantic import Field, SecretStr

from ragkit.generate.grounded import GroundedGenerator, GroundedParams
from ragkit.generate.packing import Packing, pack
from ragkit.generate.replies import NOT_FOUND
from ragkit.types import Answer, Event, Hit


class CohereGenerator(GroundedGenerator):
    stage, name = "generator", "cohere"

    class Params(GroundedParams):
        model: str = Field("command-r", description="Cohere chat model")
        api_key: SecretStr = Field(SecretStr(""), description="prefer the COHERE_API_KEY environment variable")
        base_url: str = Field("", description="another endpoint speaking Cohere's API (default api.cohere.com)")
        context_window: int = Field(128000, ge=1024)
        timeout: float = Field(60.0, gt=0)

    def _build_llm(self) -> Any:
        from ragkit.llm.cohere import CohereLLM

        p = self.params
        return CohereLLM(p.model, api_key=p.api_key.get_secret_value(), base_url=p.base_url,
                         context_window=p.context_window, timeout=p.timeout)

    def _request(self, query: str, hits: list[Hit]) -> tuple[dict[str, Any], Packing, list[Event], float]:
        """Pack the sources and build the chat request: the template's system part as the instruction, the bare
        question as the user turn, and the packed sources as documents with ids "1".."n"."""
        p = self.params
        t = time.perf_counter()
        # the template's size is an upper bound of what Cohere receives (sources go as documents, not prompt text)
        packing = pack(query, hits, self.llm, self.template, max_tokens=p.max_tokens, max_sources=p.max_sources,
                       order=p.order)
        system = next((m["content"] for m in packing.messages if m["role"] == "system"), "")
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": query}]
        documents = [{"id": str(s["n"]), "data": {"title": s["title"] or s["doc_id"], "snippet": s["text"]}}
                     for s in packing.sources]
        events = [Event("prompt", f"prompt {self.template.version} (system part; sources sent as Cohere documents)",
                        {"template": self.template.version}), *packing.events]
        request = dict(messages=messages, documents=documents, max_tokens=p.max_tokens, temperature=p.temperature)
        return request, packing, events, time.perf_counter() - t

    def _generate(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        from ragkit.llm import Usage

        request, packing, events, t_pack = self._request(query, hits)
        usage = Usage()
        parts: list[str] = []
        spans: list[tuple[int, list[str]]] = []
        t = time.perf_counter()
        for ev in self.llm.call("chat_stream", **request):
            kind = getattr(ev, "type", "")
            if kind == "content-delta":
                text = ev.delta.message.content.text or ""
                if text:
                    parts.append(text)
                    yield text
            elif kind == "citation-start":
                cit = ev.delta.message.citations
                if cit is not None:
                    spans.append(_span(cit))
            elif kind == "message-end":
                tokens = getattr(getattr(getattr(ev, "delta", None), "usage", None), "tokens", None)
                if tokens:
                    usage.prompt_tokens += int(tokens.input_tokens or 0)
                    usage.completion_tokens += int(tokens.output_tokens or 0)
        t_llm = time.perf_counter() - t
        raw = "".join(parts)
        events.append(_spans_event(spans))
        yield self.finish(query, hits, with_markers(raw, spans), packing.sources, events, usage,
                          {"generate:pack": t_pack, "generate:llm": t_llm})

    def answer(self, query: str, hits: list[Hit]) -> Answer:
        """Non-streaming: one ``/v2/chat`` call (``message.citations`` in the response)."""
        early = self.before_model(query, hits)
        if early is not None:
            return early
        from ragkit.llm import Usage

        request, packing, events, t_pack = self._request(query, hits)
        t = time.perf_counter()
        resp = self.llm.call("chat", **request)
        t_llm = time.perf_counter() - t
        msg = resp.message
        raw = "".join(getattr(c, "text", "") or "" for c in (msg.content or []))
        spans = [_span(c) for c in (msg.citations or [])]
        tokens = getattr(getattr(resp, "usage", None), "tokens", None)
        usage = Usage(int(tokens.input_tokens or 0), int(tokens.output_tokens or 0)) if tokens else Usage()
        events.append(_spans_event(spans))
        return self.finish(query, hits, with_markers(raw, spans), packing.sources, events, usage,
                           {"generate:pack": t_pack, "generate:llm": t_llm})


def _spans_event(spans: list[tuple[int, list[str]]]) -> Event:
    return Event("cohere", f"cohere returned {len(spans)} citation span(s)", {"spans": len(spans)})


def _span(citation: Any) -> tuple[int, list[str]]:
    ids = [str(getattr(s, "id", "") or "") for s in (citation.sources or [])]
    return int(citation.end or 0), [i for i in ids if i]


def with_markers(text: str, spans: list[tuple[int, list[str]]]) -> str:
    """Insert `` [n]`` after each cited span (``end`` is a character offset into ``text``). ragkit names its
    documents "1".."n"; any other id cannot be a ragkit source and is skipped."""
    by_end: dict[int, list[str]] = {}
    for end, ids in spans:
        by_end.setdefault(max(0, min(end, len(text))), []).extend(ids)
    out = text
    for end in sorted(by_end, reverse=True):
        ids = list(dict.fromkeys(by_end[end]))
        at = end - 1 if end > 0 and out[end - 1] in ".!?" else end  # "... 90 days [2]." rather than "days. [2]"
        marker = "".join(f"[{i}]" for i in ids if i.isdigit())
        if not marker:
            continue
        marker = " " + marker
        out = out[:at] + marker + out[at:]
    return out if out.strip() else NOT_FOUND
