"""The checks a grounded generator runs around its model, as one policy object.

They exist for small local models, which often decline a question their sources answer, restate the question
instead of answering, cite the neighbour of the source they copied, or leave a sentence uncited. Each threshold is
named for what it compares; every cosine is between vectors of the engine's embedder (normalised), so the values
suit whichever embedder the index uses only as far as its cosines are on a similar scale."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from ragkit.generate.citations import Embed, attribute, closest_source_sentences, recite
from ragkit.generate.replies import drop_echoes, is_not_found, may_be_echo, may_be_refusal
from ragkit.text import CITATION_MARKER, question_similarity, split_sentences
from ragkit.types import Event, Hit


@dataclass(frozen=True)
class SmallModelPolicy:
    abstain_score: str = "dense"
    """Which hit score the abstain rule reads: a stage name in ``Hit.scores`` or ``final`` (``Hit.score``)."""
    min_best_score: float | None = 0.30
    """Answer 'not found' without calling the model when the best hit's ``abstain_score`` is below this."""
    min_support_cosine: float | None = 0.6
    """A retried reply stands only if each of its sentences has at least this cosine with some source sentence."""
    min_relevance_cosine: float | None = 0.35
    """A retried reply stands only if its cosine with the question is at least this."""
    min_attribution_cosine: float | None = 0.6
    """An answer sentence is attributed to (or its citation moved to) a source only when the source holds a
    sentence with at least this cosine to it."""
    min_recite_gain: float | None = 0.05
    """A citation moves to another source only when that source's best sentence beats the cited sources' best by
    at least this cosine."""
    drop_echoes: bool = True
    """Drop answer sentences that only restate the question or ask one; a reply of nothing else declines."""
    compress_to: int | None = None
    """Give the model only each source's this many sentences most similar to the question (None: whole chunks)."""
    embed: Embed | None = field(default=None, compare=False, repr=False)
    """The engine's embedder; without it the cosine checks are skipped."""

    @classmethod
    def from_params(cls, p: Any, embed: Embed | None = None) -> SmallModelPolicy:
        """The policy a generator's parameters (``GroundedParams``) describe."""
        return cls(abstain_score=p.abstain_score, min_best_score=p.abstain_below,
                   min_support_cosine=p.retry_min_support, min_relevance_cosine=p.retry_min_relevance,
                   min_attribution_cosine=p.attribute_min, min_recite_gain=p.recite_margin,
                   drop_echoes=p.drop_echoes, compress_to=p.compress, embed=embed)

    def with_embed(self, embed: Embed | None) -> SmallModelPolicy:
        return replace(self, embed=embed)

    # -- before the model ---------------------------------------------------------------------------------------
    def abstain(self, hits: list[Hit]) -> Event | None:
        """Why to answer 'not found' without calling the model (the best hit scores too low), or None."""
        if self.min_best_score is None or not hits:
            return None
        if self.abstain_score == "final":
            best = max(h.score for h in hits)
        else:
            values = [h.scores[self.abstain_score] for h in hits if self.abstain_score in h.scores]
            if not values:
                return None  # e.g. bm25-only retrieval with the dense rule: no evidence either way
            best = max(values)
        if best < self.min_best_score:
            return Event("abstain", f"abstained: best {self.abstain_score} score {best:.4f} < abstain_below "
                                    f"{self.min_best_score}",
                         {"reason": "low_score", "score": self.abstain_score, "best": float(best),
                          "below": self.min_best_score})
        return None

    def compress(self, query: str, hits: list[Hit], max_sources: int) -> list[Hit]:
        """The first ``max_sources`` hits with their text cut to the ``compress_to`` sentences most similar to the
        question, kept in document order (contextual compression: less to read for a small model)."""
        keep, head = self.compress_to, hits[:max_sources]
        units = [split_sentences(h.chunk.text) for h in head]
        if keep is None or self.embed is None or not any(units):
            return hits
        out = []
        for h, us, mine in zip(head, units, question_similarity(self.embed, query, units)):
            best = sorted(sorted(range(len(us)), key=lambda i: -mine[i])[:keep])
            out.append(replace(h, chunk=replace(h.chunk, text="\n".join(us[i] for i in best) or h.chunk.text)))
        return out + hits[len(head):]

    # -- reading the reply --------------------------------------------------------------------------------------
    def may_decline(self, text: str, query: str) -> bool:
        """Whether a reply starting with ``text`` may still turn out to decline (streaming holds it back)."""
        return may_be_refusal(text) or (self.drop_echoes and may_be_echo(text, query))

    def declines(self, reply: str, query: str) -> str | None:
        """How a complete reply declines ("replied not found", "only restated the question"), or None."""
        if is_not_found(reply):
            return "replied not found"
        if self.drop_echoes and not drop_echoes(reply, query)[0].strip():
            return "only restated the question"
        return None

    def without_echoes(self, text: str, query: str) -> tuple[str, list[Event]]:
        """``text`` without the sentences that only restate the question (when ``drop_echoes``), one event each."""
        if not self.drop_echoes:
            return text, []
        text, echoes = drop_echoes(text, query)
        return text, [Event("echo", f"dropped a sentence that only restates the question: {e}", {"sentence": e})
                      for e in echoes]

    def supported(self, text: str, packed: list[dict[str, Any]]) -> tuple[bool, Event]:
        """Whether every sentence of a retried answer is close (cosine >= ``min_support_cosine``) to some sentence
        of the packed sources: the retry prompt asks the model to copy the answering sentence, so a reply that
        matches none of them is not grounded (a refusal, or text from nowhere). A rejection's event says why in
        ``data["reason"]`` (``unlike_sources``, ``nothing_to_compare``)."""
        def check(ok: bool, note: str, **data: Any) -> tuple[bool, Event]:
            return ok, Event("retry_check", note, {"check": "support", "accepted": ok, **data})

        if is_not_found(text):
            return check(True, "the retried reply is also 'not found'")
        if self.embed is None or self.min_support_cosine is None:
            return check(True, "retried reply accepted unchecked (no embedder bound or retry_min_support = None)")
        answer = [a for a in split_sentences(CITATION_MARKER.sub("", text)) if a.strip()]
        closest = closest_source_sentences(self.embed, answer, packed)
        if not closest:
            return check(False, "retried reply rejected: nothing to compare", reason="nothing_to_compare")
        worst = min(sim for _, sim in closest)
        if worst < self.min_support_cosine:
            return check(False, f"retried reply rejected: a sentence is unlike every source sentence (best cosine "
                                f"{worst:.2f} < retry_min_support {self.min_support_cosine}): {text.strip()[:160]}",
                         reason="unlike_sources", cosine=worst)
        return check(True, f"retried reply supported by the sources (every sentence >= cosine {worst:.2f})",
                     cosine=worst)

    def relevant(self, text: str, query: str) -> tuple[bool, Event | None]:
        """Whether a retried answer is about the question (cosine >= ``min_relevance_cosine``). The retry prompt
        presses the model to copy *some* source sentence, and a sentence can be supported by the sources without
        answering: "How do I reset my Windows password?" got a source's sentence about resetting 2FA."""
        floor = self.min_relevance_cosine
        if floor is None or self.embed is None or is_not_found(text):
            return True, None
        if self.drop_echoes:  # judged on what will be shown: a restated question is no evidence of relevance
            text = drop_echoes(text, query)[0]
        reply = re.sub(r"\s*" + CITATION_MARKER.pattern, "", text).strip()
        if not reply:
            return True, None  # nothing left but echoes: the generator turns the reply into 'not found'
        q, r = self.embed([query, reply])
        sim = float(q @ r)
        data = {"check": "relevance", "accepted": sim >= floor, "cosine": sim}
        if sim < floor:
            return False, Event("retry_check", f"retried reply rejected: not about the question (cosine {sim:.2f} "
                                               f"with the question < retry_min_relevance {floor}): {reply[:160]}",
                                {**data, "reason": "off_topic"})
        return True, Event("retry_check", f"retried reply is about the question (cosine {sim:.2f} with it)", data)

    def cite(self, text: str, uncited: list[str], packed: list[dict[str, Any]]) -> tuple[str, list[Event]]:
        """Citations fixed by similarity: a cited sentence held by another packed source moves there
        (:func:`~ragkit.generate.citations.recite`), an uncited one gets the source holding its closest sentence
        (:func:`~ragkit.generate.citations.attribute`)."""
        events: list[Event] = []
        if (self.min_recite_gain is not None and self.min_attribution_cosine is not None and self.embed is not None
                and packed):
            text, events = recite(self.embed, text, packed, self.min_attribution_cosine, self.min_recite_gain)
        text, more = attribute(self.embed, text, uncited, packed, self.min_attribution_cosine)
        return text, events + more
