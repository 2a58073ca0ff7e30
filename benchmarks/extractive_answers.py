"""How many sentences should the extractive answerer quote? Its answers against reference answers, per setting.

The default generator (`extractive`, no LLM) quotes the `max_sentences` source sentences most similar to the
question. More sentences contain the answer more often and say more besides; this measures the trade on two sets
with reference answers:
- COVID-QA (`../shared/datasets/covidqa`, experts' answer spans in 98 full articles; a seeded sample),
- the bundled Beacon set (68 questions, reference answers written with the corpus).

Per setting: SQuAD-style token F1 against the reference answer, the share of answers citing a gold document, the
answer's length in words and, on COVID-QA, whose references are spans of the articles, the share of answers that
contain the span (lower-cased words, in order; its upper bound "in the sources" is the share of questions whose
five hits hold it). Every setting answers from the same retrieved hits (hybrid, top 5); each is compared with the
default (3) by a paired randomization test.

    python benchmarks/extractive_answers.py [--limit 300] [--seed 0]
Writes benchmarks/results/extractive_answers.json. COVID-QA is indexed once into .cache (about 4 minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path

from _common import CACHE, DATASETS, ROOT, versus, write_result

from ragkit import Engine
from ragkit.evaluate.answers import sample_queries, words
from ragkit.evaluate.datasets import doc_keyer, load_qa
from ragkit.evaluate.runner import dataset_engine
from ragkit.plugins import registry

SETTINGS = (1, 2, 3, 5)
DEFAULT = 3
K = 5


def contains(answer: str, reference: str) -> bool:
    ref = " ".join(words(reference))
    return bool(ref) and ref in " ".join(words(answer))


def token_f1(answer: str, reference: str) -> float:
    a, r = words(answer), words(reference)
    common = sum((Counter(a) & Counter(r)).values())
    if not common:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


def measure(eng: Engine, queries: list, spans: bool) -> dict:
    """``spans``: the reference answers are spans of the corpus (COVID-QA), so containing one is a measure."""
    gens = {}
    for n in SETTINGS:
        gens[n] = registry.create("generator", {"name": "extractive", "max_sentences": n})
        gens[n].bind(eng.resources)
    rows = {n: [] for n in SETTINGS}
    in_sources = []
    key = doc_keyer({d.doc_id for d in eng.reader().documents()}, {d for q in queries for d in q.relevant})
    for q in queries:
        reference = q.extra.get("reference_answer", "")
        hits = eng.retrieve(q.text, k=K).hits
        if spans:
            in_sources.append(any(contains(h.chunk.text, reference) for h in hits))
        for n, gen in gens.items():
            ans = gen.answer(q.text, hits)
            text = ans.text if ans.status == "answered" else ""
            rows[n].append({**({"contains": float(contains(text, reference))} if spans else {}),
                            "f1": token_f1(text, reference),
                            "cites_gold": float(any((key(c.doc_id) if key else c.doc_id) in q.relevant
                                                    for c in ans.citations)),
                            "words": len(words(text))})
    out = {"questions": len(queries), "by_setting": {}}
    if spans:
        out["reference_in_sources"] = round(statistics.mean(in_sources), 4)
    for n in SETTINGS:
        summary = {m: round(statistics.mean(r[m] for r in rows[n]), 4) for m in rows[n][0]}
        if n != DEFAULT:
            for m in ("contains", "f1")[0 if spans else 1:]:
                summary[f"vs_default_{m}"] = versus([r[m] for r in rows[n]], [r[m] for r in rows[DEFAULT]], m)
        out["by_setting"][str(n)] = summary
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=300, help="COVID-QA questions (seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results = {"k": K, "retrieval": "hybrid", "default_max_sentences": DEFAULT}

    covid = load_qa(DATASETS / "covidqa")
    eng, _ = dataset_engine(covid, None, None, CACHE)
    eng.warm_up()
    sample = sample_queries(covid.queries, args.limit, args.seed)
    results["covidqa"] = {"sample": f"{len(sample)} of {len(covid.queries)}, seed {args.seed}",
                          **measure(eng, sample, spans=True)}
    eng.close()

    with tempfile.TemporaryDirectory() as tmp:
        eng = Engine.open(Path(tmp) / "idx")
        eng.ingest([ROOT / "corpora" / "beacon"])
        eng.warm_up()
        results["beacon"] = measure(eng, load_qa(ROOT / "eval_sets" / "beacon").queries, spans=False)
        eng.close()

    for name in ("covidqa", "beacon"):
        r = results[name]
        print(f"{name}: {r['questions']} questions" + (f", reference in the top {K} sources "
                                                       f"{r['reference_in_sources']:.1%}" if "reference_in_sources" in r
                                                       else ""))
        for n, s in r["by_setting"].items():
            shown = [f"{m} {s[m]:.3f}" for m in ("contains", "f1", "cites_gold") if m in s]
            shown.append(f"words {s['words']:.1f}")
            shown += [f"{m} {v[f'delta_{m}']:+.3f} (p={v['p_value']})" for m in ("contains", "f1")
                      if (v := s.get(f"vs_default_{m}"))]
            print(f"  max_sentences={n}: " + "  ".join(shown))
    print(f"wrote {write_result('extractive_answers', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
