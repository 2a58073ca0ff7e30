"""What every LLM-backed generator shares: its parameters and the flow of one answer. The pieces live beside it:
:mod:`~ragkit.generate.packing` (templates, context packing), :mod:`~ragkit.generate.citations` (the citation
check, attribution), :mod:`~ragkit.generate.replies` (refusals, echoes, lead-ins) and
:mod:`~ragkit.generate.policy` (the checks for small models, as one policy object). The backend plugins
(``llama_cpp.py``, ``openai.py``, ``cohere.py``) only say how to build their :class:`~ragkit.llm.LLM` (and Cohere
how to ground natively).

The flow of one answer::

    hits --abstain?--> "Not found in the indexed documents." + nearest sources   (no LLM call)
         --pack------> numbered sources that fit the window (whole sentences only)
         --template--> system + user messages
         --LLM-------> text deltas (streamed)
         --check-----> sentences that only restate the question dropped; invalid [n] removed (Answer.warnings);
                       a cited [n] moved to the source that holds the sentence when another one clearly does;
                       uncited sentences attributed by similarity or flagged (Answer.events)

Numbering: ``[n]`` always means ``Answer.sources[n - 1]`` (the retrieved hits in ranking order); only the sources
that were packed into the prompt are valid targets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragkit.generate.citations import check_citations, cited_numbers, citation_for
from ragkit.generate.packing import DEFAULT_RETRY_TEMPLATE, DEFAULT_TEMPLATE, Packing, PromptTemplate, pack
from ragkit.generate.policy import SmallModelPolicy
from ragkit.generate.replies import NOT_FOUND, is_not_found, not_found_reply, strip_lead_in
from ragkit.plugins import Plugin, warm_embedder
from ragkit.types import Answer, Event, Hit, Status


class GroundedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(256, ge=8, le=8192, description="answer budget in tokens (reserved in the window)")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    template: str = Field(DEFAULT_TEMPLATE, description="built-in prompt name or path to a .j2 template")
    max_sources: int = Field(5, ge=1, le=50, description="top hits considered for the prompt")
    order: Literal["score", "lost-in-the-middle"] = Field(
        "score", description="source order in the prompt: best first, or best at both ends")
    abstain_score: str = Field(
        "dense", description="which score the abstain rule reads: a stage name in Hit.scores (dense, bm25, rrf, "
                             "zscore, a reranker...) or 'final' (Hit.score)")
    abstain_below: float | None = Field(
        0.30, description="answer 'not found' without calling the LLM when the best hit's abstain_score is below "
                          "this (scale depends on the score kind; None disables)")
    nearest: int = Field(3, ge=0, le=20, description="sources listed when abstaining")
    retry_template: str | None = Field(
        DEFAULT_RETRY_TEMPLATE, description="when the model replies 'not found' although the abstain rule let the "
                                            "question through, ask once more with this prompt (built-in name or "
                                            "path); None disables")
    retry_min_support: float | None = Field(
        0.6, description="a retried reply is kept only if each of its sentences has a cosine (the engine's "
                         "embedder) >= this with some source sentence (else the answer is 'not found'); None "
                         "accepts it unchecked")
    retry_min_relevance: float | None = Field(
        0.35, description="a retried reply is kept only if it is about the question: cosine (the engine's "
                          "embedder) >= this between the question and the reply (else the answer is 'not found'); "
                          "None skips the check")
    compress: int | None = Field(
        None, ge=1, le=50, description="give the model only each source's N sentences most similar to the question "
                                       "(cosine, the engine's embedder; table rows as 'header: value' lines), in "
                                       "document order; None packs whole chunks")
    attribute_min: float | None = Field(
        0.6, description="a sentence the model left uncited gets the [n] of the packed source sentence most similar "
                         "to it (cosine, the engine's embedder) when the similarity is at least this; None disables")
    recite_margin: float | None = Field(
        0.05, description="a cited sentence whose closest source sentence (cosine, at least attribute_min) is in "
                          "another packed source, by at least this margin over the cited ones, cites that source "
                          "instead; None keeps the model's citations")
    drop_echoes: bool = Field(
        True, description="drop answer sentences that only restate the question (all words from the question, in "
                          "its order) or ask a question; a reply that is nothing else counts as declining (retry, "
                          "then 'not found')")


class GroundedGenerator(Plugin):
    """Base of the LLM-backed generators. Subclasses implement :meth:`_build_llm` (and may override
    :meth:`_generate` for native grounding, as Cohere does)."""

    stage = "generator"
    Params = GroundedParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._llm: Any = None
        self._template: PromptTemplate | None = None
        self._retry: PromptTemplate | None = None
        self._embed: Any = None
        self._resources: Any = None

    def bind(self, resources: Any) -> None:
        self._resources = resources
        self._embed = resources.embed_cached

    # -- wiring ---------------------------------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        """The backend's :class:`ragkit.llm.LLM`, shared with other stages through ``Resources.llm()``."""
        if self._llm is None:
            self._llm = self._build_llm()
        return self._llm

    def _build_llm(self) -> Any:
        raise NotImplementedError

    @property
    def policy(self) -> SmallModelPolicy:
        """The checks around the model, read from the current parameters and the bound embedder."""
        return SmallModelPolicy.from_params(self.params, self._embed)

    @property
    def template(self) -> PromptTemplate:
        if self._template is None:
            self._template = PromptTemplate(self.params.template)
        return self._template

    @property
    def retry_template(self) -> PromptTemplate | None:
        if self.params.retry_template is None:
            return None
        if self._retry is None:
            self._retry = PromptTemplate(self.params.retry_template)
        return self._retry

    def warm_up(self) -> None:
        _ = self.template, self.retry_template
        warm_embedder(self._resources)  # the policy's cosine checks embed
        warm = getattr(self.llm, "warm_up", None)
        if callable(warm):
            warm()

    # -- the stage calls --------------------------------------------------------------------------------------------
    def answer(self, query: str, hits: list[Hit]) -> Answer:
        result = None
        for item in self.stream(query, hits):
            if isinstance(item, Answer):
                result = item
        assert result is not None
        return result

    def stream(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        early = self.before_model(query, hits)
        if early is not None:
            yield early.text
            yield early
            return
        yield from self._generate(query, hits)

    # -- pieces -----------------------------------------------------------------------------------------------------
    def before_model(self, query: str, hits: list[Hit]) -> Answer | None:
        """The 'not found' answer when there is nothing to ask the model about (no hits, or the policy abstains)."""
        if not hits:
            return self.not_found(query, hits, [Event("abstain", "abstained: no sources retrieved",
                                                      {"reason": "no_sources"})], status="no_context")
        abstain = self.policy.abstain(hits)
        return None if abstain is None else self.not_found(query, hits, [abstain], status="abstained")

    def not_found(self, query: str, hits: list[Hit], events: list[Event], warnings: list[str] | None = None, *,
                  status: Status = "declined") -> Answer:
        near = hits[: self.params.nearest]
        return Answer(query=query, text=not_found_reply([h.doc_id for h in near]), citations=[], sources=near,
                      events=list(events), warnings=list(warnings or []), status=status)

    def _generate(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        from ragkit.llm import Usage

        p, policy = self.params, self.policy
        t = time.perf_counter()
        shown = policy.compress(query, hits, p.max_sources) if p.compress is not None else hits  # what it reads
        packing = pack(query, shown, self.llm, self.template, max_tokens=p.max_tokens, max_sources=p.max_sources,
                       order=p.order)
        t_pack = time.perf_counter() - t
        events = [Event("prompt", f"prompt {self.template.version}", {"template": self.template.version}),
                  *packing.events]
        if shown is not hits:
            events.insert(1, Event("compress", f"compress: each source cut to its {p.compress} sentences closest to "
                                               "the question", {"sentences": p.compress}))
        if not packing.sources:
            ans = self.not_found(query, hits, events + [Event("abstain", "abstained: no source fits the context "
                                                                         "window", {"reason": "window"})],
                                 ["no source fits the context window"], status="no_context")
            yield ans.text
            yield ans
            return
        usage = Usage()
        parts: list[str] = []
        t = time.perf_counter()
        retry = self.retry_template
        held = retry is not None  # hold the first characters back until they cannot be a refusal
        for delta in self.llm.stream(packing.messages, max_tokens=p.max_tokens, temperature=p.temperature,
                                     usage=usage):
            parts.append(delta)
            if not held:
                yield delta
                continue
            text = "".join(parts)
            if not policy.may_decline(text, query):
                held = False
                if policy.drop_echoes:
                    text = policy.without_echoes(text, query)[0] + (" " if text[-1:].isspace() else "")
                yield text
        raw = "".join(parts)
        why = policy.declines(raw, query)
        retried = False
        if held and retry is not None and why is not None:
            # The abstain rule let the question through (the sources scored well) but the model declined or only
            # restated the question: ask once more with the retry prompt; its reply is the answer (it may decline).
            raw, packing, retried = self._ask_again(query, shown, retry, why, packing, usage, events)
            yield raw
        elif held:  # a short reply that never left the hold (a refusal, an echo without a retry prompt, ...)
            yield policy.without_echoes(raw, query)[0] or NOT_FOUND
        t_llm = time.perf_counter() - t
        ans = self.finish(query, hits, raw, packing.sources, events, usage,
                          {"generate:pack": t_pack, "generate:llm": t_llm})
        ans.retried = retried
        yield ans

    def _ask_again(self, query: str, hits: list[Hit], retry: PromptTemplate, why: str, packing: Packing, usage: Any,
                   events: list[Event]) -> tuple[str, Packing, bool]:
        """Ask once more with the retry prompt (not streamed: the reply is only shown once it is checked against the
        sources). Returns the reply (``NOT_FOUND`` when the check rejects it), the packing it answers from, and
        whether the model was asked."""
        p, policy = self.params, self.policy
        repack = pack(query, hits, self.llm, retry, max_tokens=p.max_tokens, max_sources=p.max_sources,
                      order=p.order)
        if not repack.sources:
            return NOT_FOUND, packing, False
        events.append(Event("retry", f"the model {why}; asked again with prompt {retry.version}",
                            {"why": why, "template": retry.version}))
        raw = "".join(self.llm.stream(repack.messages, max_tokens=p.max_tokens, temperature=p.temperature,
                                      usage=usage))
        raw, lead = strip_lead_in(raw, repack.messages[-1]["content"])
        if lead:
            events.append(Event("lead_in", f"removed the prompt's own words from the start of the retried reply: "
                                           f"{lead!r}", {"removed": lead}))
        ok, event = policy.supported(raw, repack.sources)
        events.append(event)
        if ok:
            ok, event = policy.relevant(raw, query)
            if event is not None:
                events.append(event)
        return (raw if ok else NOT_FOUND), repack, True

    def finish(self, query: str, hits: list[Hit], raw: str, packed: list[dict[str, Any]], events: list[Event],
               usage: Any, timings: dict[str, float]) -> Answer:
        """The checked Answer from the model's complete reply ``raw`` to a prompt holding ``packed``."""
        policy = self.policy
        model = getattr(self.llm, "model_id", "?")
        events = events + [Event("llm", f"llm {model}: {usage.prompt_tokens} prompt + {usage.completion_tokens} "
                                        "completion tokens",
                                 {"model": model, "prompt_tokens": usage.prompt_tokens,
                                  "completion_tokens": usage.completion_tokens})]
        tokens = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
        numbers = [s["n"] for s in packed]
        if policy.drop_echoes and not is_not_found(raw):
            raw, echoes = policy.without_echoes(raw, query)
            events += echoes
            if not raw.strip():
                raw = NOT_FOUND
        checked = check_citations(raw, set(numbers), len(hits))
        text = checked.text
        if is_not_found(text):
            # the model declined (possibly with stray markers such as "[1] Not found ..."): a refusal cites nothing
            ans = self.not_found(query, hits, events + [Event("declined", "the model replied that the sources do "
                                                                          "not answer")], checked.warnings)
            ans.timings, ans.usage, ans.packed = timings, tokens, numbers
            return ans
        text, cites = policy.cite(text, checked.uncited, packed)
        cited = sorted(set(cited_numbers(text)))
        return Answer(query=query, text=text, citations=[citation_for(n, hits[n - 1]) for n in cited],
                      sources=hits, timings=timings, events=events + cites, warnings=checked.warnings, usage=tokens,
                      packed=numbers)
