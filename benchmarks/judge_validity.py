"""Does the local faithfulness score separate supported answers from corrupted ones?

On the bundled eval set (eval_sets/beacon) every question's reference answer is the *supported* answer; three
corruptions of it are the *unsupported* ones:

- ``number``: one number of the answer replaced by another that is not in the context;
- ``negation``: the first auxiliary verb negated ("is" -> "is not", "can" -> "cannot"; an existing negation is
  removed); answers without one are left out of this type;
- ``wrong-doc``: the reference answer of another question whose gold documents are different.

All are scored against the same context: the question's gold context (its reference contexts; ``--distractors N``
adds its top-N hybrid hits, so the judge must find the support among other passages — several times the prompt
tokens, which the shared CPU did not allow for the numbers in benchmarks/RESULTS.md). The score is ragkit's faithfulness (mean P(yes) over the answer's
claims). Reported: ROC AUC of supported vs corrupted scores (all pairs, and per corruption type), the paired win
rate, and the AUC of the judge-free baseline (MiniLM similarity of each claim to its best context sentence).

    python benchmarks/judge_validity.py --models qwen0.5b qwen1.5b      # -> benchmarks/results/judge_validity.json

Judge calls are cached in .cache/judge-cache.sqlite: a re-run is fast and gives the same numbers.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import CACHE, ROOT, write_result

from ragkit import Engine
from ragkit.evaluate.answers import AnswerScorer, split_claims
from ragkit.evaluate.datasets import load_qa
from ragkit.evaluate.judge import FailureLog, make_judge

_NUM = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?![\w.]*\d)")
_NEG_REMOVE = [(r"\bcannot\b", "can"), (r"\bcan not\b", "can"), (r"\b(is|are|was|were|does|do|did|will|must|"
               r"should|has|have) not\b", r"\1"), (r"\bdoesn't\b", "does"), (r"\bdon't\b", "do"),
               (r"\bisn't\b", "is"), (r"\baren't\b", "are"), (r"\bnever\b", "always"), (r"\bno longer\b", "still")]
_NEG_ADD = [(r"\bcan\b", "cannot"), (r"\b(is|are|was|were|will|must|should)\b", r"\1 not"),
            (r"\b(does|do|did)\b", r"\1 not")]


def corrupt_number(answer: str, context: str, rng: random.Random) -> str | None:
    nums = list(_NUM.finditer(answer))
    if not nums:
        return None
    m = nums[0]
    old = m.group(1)
    value = float(old)
    cands = [value * 2, value + 7, value * 3 + 1, value + 13] if value else [5, 9, 12]
    for c in cands:
        new = str(int(c)) if c == int(c) and "." not in old else f"{c:.1f}"
        if new != old and not re.search(rf"(?<![\d.]){re.escape(new)}(?![\d])", context):
            return answer[: m.start(1)] + new + answer[m.end(1):]
    return None


def corrupt_negation(answer: str) -> str | None:
    for pattern, repl in _NEG_REMOVE + _NEG_ADD:
        out, n = re.subn(pattern, repl, answer, count=1)
        if n:
            return out
    return None


def build_pairs(eng: Engine, seed: int = 0, per_type: int = 0, distractors: int = 0) -> list[dict]:
    qa = load_qa(ROOT / "eval_sets" / "beacon")
    rng = random.Random(seed)
    items = []
    for q in qa.queries:
        refs = list(q.extra.get("reference_contexts") or [])
        hits = eng.retrieve(q.text, k=distractors, mode="hybrid").hits if distractors else []
        contexts = refs + [h.chunk.text for h in hits]
        items.append({"qid": q.qid, "question": q.text, "answer": q.extra["reference_answer"],
                      "contexts": contexts, "docs": set(q.relevant)})
    pairs = []
    for it in items:
        ctx = "\n".join(it["contexts"])
        num = corrupt_number(it["answer"], ctx, rng)
        if num:
            pairs.append({**it, "type": "number", "corrupted": num})
        neg = corrupt_negation(it["answer"])
        if neg:
            pairs.append({**it, "type": "negation", "corrupted": neg})
        others = [o for o in items if not (o["docs"] & it["docs"]) and o["qid"] != it["qid"]]
        other = rng.choice(others)
        pairs.append({**it, "type": "wrong-doc", "corrupted": other["answer"], "from": other["qid"]})
    if per_type:  # a deterministic, evenly spread sample of each type, kept in question order
        keep = set()
        for t in ("number", "negation", "wrong-doc"):
            idx = [i for i, p in enumerate(pairs) if p["type"] == t]
            keep.update(idx if len(idx) <= per_type else rng.sample(idx, per_type))
        pairs = [p for i, p in enumerate(pairs) if i in keep]
    return pairs


def auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC as the Mann-Whitney probability that a positive outscores a negative (ties count half)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["qwen0.5b"], help="offline judge models (local:<name>)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N pairs (a quick look)")
    ap.add_argument("--per-type", type=int, default=45, help="at most N pairs per corruption type (0: all)")
    ap.add_argument("--distractors", type=int, default=0, help="add the top-N hybrid hits to each gold context")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        eng = Engine.open(Path(tmp) / "idx")
        if args.distractors:  # the gold contexts alone need no index
            eng.ingest([ROOT / "corpora" / "beacon"])
        eng.warm_up()
        pairs = build_pairs(eng, per_type=args.per_type, distractors=args.distractors)
        if args.limit:
            pairs = pairs[: args.limit]
        print(f"{len(pairs)} pairs: {dict(Counter(p['type'] for p in pairs))}", flush=True)
        embed = eng.embedder.embed
        results: dict = {"pairs": len(pairs), "pair_types": dict(Counter(p["type"] for p in pairs)), "models": {}}

        for model in args.models:
            judge = make_judge(f"local:{model}", cache_dir=CACHE)
            failures = FailureLog()
            scorer = AnswerScorer(judge, embed, failures, ("faithfulness",))
            t = time.perf_counter()
            sup, cor = [], []
            for i, p in enumerate(pairs):  # supported then corrupted: both reuse the context's KV-cache prefix
                s = scorer.faithfulness(p["qid"], p["answer"], p["contexts"]).value
                c = scorer.faithfulness(p["qid"], p["corrupted"], p["contexts"]).value
                sup.append(s if s is not None else 0.5)
                cor.append(c if c is not None else 0.5)
                if (i + 1) % 10 == 0:
                    print(f"  {model}: {i + 1}/{len(pairs)} pairs, {judge.calls} calls, "
                          f"{time.perf_counter() - t:.0f}s", flush=True)
            res = summarize(pairs, sup, cor)
            res.update({"model_file": judge.model_id, "judge_calls": judge.calls, "cache_hits": judge.hits,
                        "judge_seconds": round(judge.seconds, 1), "failures": failures.to_dict(),
                        "seconds_per_call": round(judge.seconds / judge.calls, 3) if judge.calls else None})
            results["models"][model] = res
            print(f"{model}: AUC {res['auc']:.3f} per type {res['auc_by_type']} "
                  f"win rate {res['paired_win_rate']:.3f} failures {failures.total}", flush=True)
            write_result("judge_validity", {**results, "partial": True})  # keep what is measured so far
        # judge-free baseline: MiniLM similarity of each claim to its best context sentence, averaged
        # (one batch of unique texts: the CPU is the limit)
        from ragkit.evaluate.answers import sentences

        def claims_of(a: str) -> list[str]:
            return split_claims(a) or [a]

        texts = sorted({t for p in pairs for a in (p["answer"], p["corrupted"]) for t in claims_of(a)}
                       | {s for p in pairs for c in p["contexts"] for s in sentences(c)})
        vec = dict(zip(texts, embed(texts)))

        def sim_score(answer: str, contexts: list[str]) -> float:
            ctx = [vec[s] for c in contexts for s in sentences(c)]
            return statistics.fmean(max(float(vec[c] @ v) for v in ctx) for c in claims_of(answer))

        sup = [sim_score(p["answer"], p["contexts"]) for p in pairs]
        cor = [sim_score(p["corrupted"], p["contexts"]) for p in pairs]
        results["embedding_baseline"] = summarize(pairs, sup, cor)
        print("embedding baseline", results["embedding_baseline"]["auc"], flush=True)
        results["partial"] = False
        results["context"] = "gold (reference contexts)" + (f" + top-{args.distractors} hybrid hits"
                                                              if args.distractors else "")
        results["note"] = ("CPU shared with other jobs while measuring: seconds are pessimistic. A supported answer "
                           "is the eval set's reference answer; scores are mean P(yes) over claims; unscorable "
                           "answers count as 0.5 (none expected).")
        results["examples"] = [{k: p[k] for k in ("qid", "type", "answer", "corrupted")} for p in pairs[:6]]
        path = write_result("judge_validity", results)
        print(f"wrote {path}")
        eng.close()


def summarize(pairs: list[dict], sup: list[float], cor: list[float]) -> dict:
    types = sorted({p["type"] for p in pairs})
    uniq_sup = list({p["qid"]: s for p, s in zip(pairs, sup)}.values())  # each supported answer once
    by_type = {t: round(auc(uniq_sup, [c for p, c in zip(pairs, cor) if p["type"] == t]), 4) for t in types}
    return {"auc": round(auc(uniq_sup, cor), 4), "auc_by_type": by_type,
            "paired_win_rate": round(statistics.fmean((s > c) + 0.5 * (s == c) for s, c in zip(sup, cor)), 4),
            "mean_supported": round(statistics.fmean(uniq_sup), 4), "mean_corrupted": round(statistics.fmean(cor), 4)}


if __name__ == "__main__":
    sys.exit(main())
