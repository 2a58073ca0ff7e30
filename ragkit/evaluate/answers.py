"""Answer metrics: gold citations and token F1, faithfulness and answer relevance (with a judge), context precision /
recall (with references). ``ragkit eval --answers`` and ``ragkit ablate --answers`` both score an answer with
:func:`score_answer`.

- **answer_cites_gold**: 1 when the answer cites at least one of the query's judged (gold) documents, else 0.
- **answer_token_f1**: token F1 between the answer and the query's reference answer (skipped without one).

- **faithfulness**: the answer is split into claims (its sentences, ``[n]`` citation markers removed); the judge is
  asked, per claim, whether the context supports it, and the claim's score is P(yes) from the judge's first reply
  token. The answer's score is the **mean** over its claims (ragas' definition is the fraction of supported claims;
  the mean of P(yes) is its soft version). When the judge answers neither yes nor no the claim is scored by
  embedding similarity instead (best cosine between the claim and a context sentence, MiniLM) and the failure is
  counted all the same.
- **answer_relevance** (ragas' method): the judge writes ``n_questions`` questions the answer would answer; the
  score is the mean cosine similarity (MiniLM) between them and the real question.
- **context_precision / context_recall** (with references, no judge): the reference contexts (or the reference
  answer) are cut into sentences; a retrieved context *covers* a reference sentence when it holds at least 80% of
  its words. Recall = share of reference sentences covered by some retrieved context; precision = ragas' average
  precision over the ranked contexts, a context being relevant when it covers a reference sentence or at least
  half of its words occur in the references.

Every metric value is ``None`` when it could not be computed, and the reason is counted: judge failures in the
:class:`~ragkit.evaluate.judge.FailureLog`, answers without claims / questions without references as ``skipped``
(a reason names its metrics before the colon).
"""

from __future__ import annotations

import math
import random
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ragkit.errors import ConfigError
from ragkit.evaluate.judge import JUDGE_HELP, FailureLog, Judge, JudgeFailure

JUDGE_METRICS = ("faithfulness", "answer_relevance")
REFERENCE_METRICS = ("context_precision", "context_recall")
GOLD_METRICS = ("answer_cites_gold", "answer_token_f1")
ANSWER_METRICS = GOLD_METRICS + JUDGE_METRICS + REFERENCE_METRICS
PROMPT_VERSIONS = {"faithfulness": "faith-v1", "answer_relevance": "relevance-v1"}

FAITHFULNESS_SYSTEM = "You check facts. Reply with one word: yes or no."
FAITHFULNESS_USER = ("Context:\n{context}\n\nStatement: {claim}\n\n"
                     "Is the statement supported by the context above? Answer yes or no.")
RELEVANCE_SYSTEM = "You write short questions."
RELEVANCE_USER = ("Text:\n{answer}\n\nWrite {n} different questions that the text above answers. "
                  "One question per line, nothing else.")

_CITE = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_SENT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_TOKEN = re.compile(r"\w+")


def check_answer_metrics(metrics: tuple[str, ...]) -> None:
    for m in metrics:
        if m not in ANSWER_METRICS:
            raise ConfigError(f"unknown answer metric {m!r} (known: {', '.join(ANSWER_METRICS)})")


def needs_judge(metrics: tuple[str, ...]) -> list[str]:
    return [m for m in metrics if m in JUDGE_METRICS]


def default_answer_metrics(judge: Any) -> tuple[str, ...]:
    """Every answer metric, without the judge-only ones when there is no judge."""
    return ANSWER_METRICS if judge is not None else tuple(m for m in ANSWER_METRICS if m not in JUDGE_METRICS)


def require_judge(metrics: tuple[str, ...], judge: Any) -> None:
    """The no-judge error: judge-only metrics requested and no judge configured (never a silent fallback)."""
    wanted = needs_judge(metrics)
    if wanted and judge is None:
        raise ConfigError(f"{', '.join(wanted)} need a judge and none is configured: {JUDGE_HELP}; "
                          "or keep to --answer-metrics context_precision,context_recall")


def split_claims(answer: str, min_words: int = 3) -> list[str]:
    """The answer's sentences with citation markers removed; fragments under ``min_words`` words are dropped."""
    text = _CITE.sub("", answer or "").strip()
    parts = [p.strip(" -*•\t") for p in _SENT.split(text)]
    return [p for p in parts if len(p.split()) >= min_words]


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENT.split(text or "") if s.strip()]


def fit_context(contexts: list[str], count_tokens: Callable[[str], int], budget: int) -> str:
    """Numbered contexts, best first, cut to ``budget`` tokens (the last one truncated by characters)."""
    out, used = [], 0
    for i, c in enumerate(contexts, 1):
        block = f"[{i}] {' '.join(c.split())}"
        n = count_tokens(block)
        if used + n > budget:
            room = budget - used
            if room > 30:
                out.append(block[: int(len(block) * room / n)])
            break
        out.append(block)
        used += n
    return "\n\n".join(out)


def token_f1(prediction: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (lower-cased ``\\w+`` tokens, counted with multiplicity)."""
    p, r = _TOKEN.findall(prediction.lower()), _TOKEN.findall(reference.lower())
    if not p or not r:
        return 0.0
    common = sum(min(p.count(w), r.count(w)) for w in set(p) & set(r))
    if not common:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def reference_texts(query) -> list[str]:
    """A query's reference contexts, else its reference answer, else none."""
    refs = list(query.extra.get("reference_contexts") or [])
    if not refs and query.extra.get("reference_answer"):
        refs = [query.extra["reference_answer"]]
    return refs


def skipped_count(skipped: Counter, metric: str) -> int:
    """How many queries ``metric`` skipped. A reason names its metrics before the colon, several sharing a stem
    as ``context_precision/recall``."""
    n = 0
    for reason, count in skipped.items():
        first, *more = reason.split(":")[0].split("/")
        if metric == first or metric in {f"{first.rsplit('_', 1)[0]}_{x}" for x in more}:
            n += count
    return n


def parse_questions(text: str) -> list[str]:
    qs = []
    for line in (text or "").splitlines():
        line = re.sub(r"^\s*(?:[-*•]|\d+[.):]|Q\d*[.:]|Question\s*\d*[.:])\s*", "", line).strip().strip('"')
        if len(line.split()) >= 3 and line.endswith("?"):
            qs.append(line)
    return qs


@dataclass
class MetricValue:
    value: float | None
    detail: dict[str, Any] = field(default_factory=dict)


class AnswerScorer:
    """Scores one (question, answer, contexts, references) with the requested metrics.

    ``embed`` maps texts to L2-normalised vectors (the engine's MiniLM embedder)."""

    def __init__(self, judge: Judge | None, embed: Callable[[list[str]], np.ndarray], failures: FailureLog,
                 metrics: tuple[str, ...] = ANSWER_METRICS, *, n_questions: int = 3, context_tokens: int = 1500,
                 skipped: Counter | None = None) -> None:
        check_answer_metrics(metrics)
        require_judge(metrics, judge)
        self.judge, self.embed, self.failures, self.metrics = judge, embed, failures, metrics
        self.n_questions, self.context_tokens = n_questions, context_tokens
        self.skipped = skipped if skipped is not None else Counter()

    @staticmethod
    def _count_tokens(text: str) -> int:
        # an estimate (~3.5 characters per token), not the judge's tokenizer: the prompt must be known without
        # loading the judge, so that a fully cached re-run loads no model; the budget leaves ample headroom
        return max(1, math.ceil(len(text) / 3.5))

    # -- faithfulness -------------------------------------------------------------------------------------------
    def faithfulness(self, qid: str, answer: str, contexts: list[str], repeat: int = 0) -> MetricValue:
        claims = split_claims(answer)
        if not claims:
            self.skipped["faithfulness: answer has no claims"] += repeat == 0
            return MetricValue(None, {"claims": []})
        context = fit_context(contexts, self._count_tokens, self.context_tokens)
        scored = []
        for claim in claims:
            msgs = [{"role": "system", "content": FAITHFULNESS_SYSTEM},
                    {"role": "user", "content": FAITHFULNESS_USER.format(context=context, claim=claim)}]
            try:
                p = self.judge.yes_probability("faithfulness", PROMPT_VERSIONS["faithfulness"], msgs, repeat)
                scored.append({"claim": claim, "score": round(p, 4), "source": "judge"})
            except JudgeFailure as f:
                self.failures.record("faithfulness", f.kind, qid, f.detail)
                if f.kind == "unparsable":
                    scored.append({"claim": claim, "score": round(self._similarity(claim, contexts), 4),
                                   "source": "embedding-fallback"})
                else:
                    scored.append({"claim": claim, "score": None, "source": f"failed: {f.kind}"})
        values = [c["score"] for c in scored if c["score"] is not None]
        return MetricValue(statistics.fmean(values) if values else None, {"claims": scored})

    def _similarity(self, claim: str, contexts: list[str]) -> float:
        sents = [s for c in contexts for s in sentences(c)] or contexts
        if not sents:
            return 0.0
        vecs = self.embed([claim] + sents)
        return float(max(0.0, (vecs[1:] @ vecs[0]).max()))

    # -- answer relevance ---------------------------------------------------------------------------------------
    def answer_relevance(self, qid: str, question: str, answer: str, repeat: int = 0) -> MetricValue:
        text = _CITE.sub("", answer or "").strip()
        if not split_claims(text):
            self.skipped["answer_relevance: answer has no claims"] += repeat == 0
            return MetricValue(None, {"questions": []})
        msgs = [{"role": "system", "content": RELEVANCE_SYSTEM},
                {"role": "user", "content": RELEVANCE_USER.format(answer=text, n=self.n_questions)}]
        try:
            reply = self.judge.generate("answer_relevance", PROMPT_VERSIONS["answer_relevance"], msgs,
                                        max_tokens=40 * self.n_questions, repeat=repeat)
        except JudgeFailure as f:
            self.failures.record("answer_relevance", f.kind, qid, f.detail)
            return MetricValue(None, {"questions": []})
        qs = parse_questions(reply)[: self.n_questions]
        if not qs:
            self.failures.record("answer_relevance", "unparsable", qid, f"no question in reply: {reply[:120]!r}")
            return MetricValue(None, {"questions": [], "reply": reply[:300]})
        vecs = self.embed([question] + qs)
        sims = vecs[1:] @ vecs[0]
        return MetricValue(float(np.mean(sims)), {"questions": qs, "similarities": [round(float(s), 4) for s in sims]})

    # -- with references -----------------------------------------------------------------------------------------
    def context_scores(self, contexts: list[str], references: list[str]) -> tuple[MetricValue, MetricValue]:
        units = [words(s) for r in references for s in sentences(r)]
        units = [u for u in units if u]
        if not units:
            self.skipped["context_precision/recall: no reference contexts"] += 1
            return MetricValue(None), MetricValue(None)
        ref_bag = Counter(w for u in units for w in u)
        bags = [Counter(words(c)) for c in contexts]

        def covers(bag: Counter, unit: list[str]) -> bool:
            need = Counter(unit)
            have = sum(min(n, bag[w]) for w, n in need.items())
            return have >= 0.8 * len(unit)

        covered = [any(covers(b, u) for b in bags) for u in units]
        relevant = []
        for b in bags:
            total = sum(b.values())
            in_refs = sum(min(n, ref_bag[w]) for w, n in b.items())
            relevant.append(any(covers(b, u) for u in units) or (total > 0 and in_refs >= 0.5 * total))
        hits, ap = 0, 0.0
        for i, rel in enumerate(relevant, 1):
            if rel:
                hits += 1
                ap += hits / i
        precision = ap / hits if hits else 0.0
        recall = sum(covered) / len(units)
        return (MetricValue(precision, {"relevant": relevant}),
                MetricValue(recall, {"covered": sum(covered), "reference_sentences": len(units)}))

    # -- all of them ----------------------------------------------------------------------------------------------
    def score(self, qid: str, question: str, answer: str, contexts: list[str], references: list[str],
              repeat: int = 0) -> dict[str, MetricValue]:
        out: dict[str, MetricValue] = {}
        if "faithfulness" in self.metrics:
            out["faithfulness"] = self.faithfulness(qid, answer, contexts, repeat)
        if "answer_relevance" in self.metrics:
            out["answer_relevance"] = self.answer_relevance(qid, question, answer, repeat)
        if repeat == 0 and ("context_precision" in self.metrics or "context_recall" in self.metrics):
            prec, rec = self.context_scores(contexts, references)
            if "context_precision" in self.metrics:
                out["context_precision"] = prec
            if "context_recall" in self.metrics:
                out["context_recall"] = rec
        return out


def score_answer(scorer: AnswerScorer, query, answer, *, doc_key: Callable[[str], str] | None = None,
                 repeat: int = 0) -> dict[str, MetricValue]:
    """The scorer's metrics for one :class:`~ragkit.types.Answer` to one dataset query, in the scorer's order.

    The contexts are the answer's sources; the references :func:`reference_texts`. ``doc_key`` maps an indexed
    document id to the id the query's judgments use. The deterministic metrics (gold citations, token F1,
    context precision / recall) are scored on ``repeat`` 0 only."""
    contexts = [h.chunk.text for h in answer.sources]
    out = scorer.score(query.qid, query.text, answer.text, contexts, reference_texts(query), repeat)
    if repeat == 0 and "answer_cites_gold" in scorer.metrics:
        cited = {(doc_key(c.doc_id) if doc_key else c.doc_id) for c in answer.citations}
        out["answer_cites_gold"] = MetricValue(float(bool(cited & set(query.relevant))), {"cited": sorted(cited)})
    if repeat == 0 and "answer_token_f1" in scorer.metrics:
        ref = query.extra.get("reference_answer")
        if not ref:
            scorer.skipped["answer_token_f1: no reference answer"] += 1
        out["answer_token_f1"] = MetricValue(token_f1(answer.text, ref) if ref else None)
    return {m: out[m] for m in scorer.metrics if m in out}


def sample_queries(queries: list, limit: int | None, seed: int | None = 0) -> list:
    """``limit`` queries drawn with ``seed`` (kept in dataset order); all of them without a limit."""
    if not limit or limit >= len(queries):
        return list(queries)
    if seed is None:
        return list(queries[:limit])
    keep = set(random.Random(seed).sample(range(len(queries)), limit))
    return [q for i, q in enumerate(queries) if i in keep]


def evaluate_answers(engine, queries: list, scorer: AnswerScorer, *, k: int | None = None, mode: str | None = None,
                     repeats: int = 1, doc_key: Callable[[str], str] | None = None,
                     progress=None) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Answer every query with the engine's generator and score it ``repeats`` times (:func:`score_answer`).

    Returns (aggregate per metric, one row per query). The aggregate holds the mean over the queries that got a
    value, how many did (``n``), the judge failures and skipped queries (never averaged away), and with
    ``repeats > 1`` the mean of each repeat and their standard deviation (``spread``)."""
    rows = []
    per_repeat: dict[str, list[list[float]]] = {m: [[] for _ in range(repeats)] for m in scorer.metrics}
    for i, q in enumerate(queries):
        ans = engine.query(q.text, k=k, mode=mode)
        values: dict[str, list[float]] = {m: [] for m in scorer.metrics}
        details: dict[str, Any] = {}
        for r in range(repeats):
            for m, mv in score_answer(scorer, q, ans, doc_key=doc_key, repeat=r).items():
                if mv.value is not None and math.isfinite(mv.value):
                    values[m].append(mv.value)
                    per_repeat[m][r].append(mv.value)
                if r == 0:
                    details[m] = mv.detail
        rows.append({"qid": q.qid, "query": q.text, "answer": ans.text,
                     "sources": [h.doc_id for h in ans.sources],
                     "answer_metrics": {m: (round(statistics.fmean(v), 4) if v else None) for m, v in values.items()},
                     "answer_details": details,
                     "answer_latency_ms": round(ans.timings.get("total", 0.0) * 1000, 2)})
        if progress:
            progress("answers", i + 1, len(queries))
    agg: dict[str, dict[str, Any]] = {}
    for m in scorer.metrics:
        vals = [row["answer_metrics"][m] for row in rows if row["answer_metrics"][m] is not None]
        skipped = skipped_count(scorer.skipped, m)
        entry: dict[str, Any] = {"mean": statistics.fmean(vals) if vals else None, "n": len(vals),
                                 "queries": len(rows), "failures": scorer.failures.of(m),
                                 "failure_kinds": dict(scorer.failures.counts.get(m, {})), "skipped": skipped}
        if m == "faithfulness":
            entry["embedding_fallback_claims"] = sum(
                1 for row in rows for c in row["answer_details"].get(m, {}).get("claims", [])
                if c["source"] == "embedding-fallback")
        if repeats > 1:
            means = [statistics.fmean(v) for v in per_repeat[m] if v]
            entry["repeat_means"] = [round(x, 4) for x in means]
            entry["spread"] = statistics.pstdev(means) if len(means) > 1 else 0.0
        agg[m] = entry
    return agg, rows
