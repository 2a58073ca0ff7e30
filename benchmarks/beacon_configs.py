"""Retrieval on the bundled Beacon set under pipeline configs, each against the first (paired tests per metric).

What a generator gets to see is the top few hits, so next to nDCG@10 this reports hit_rate@1 (a gold document
first: small models mostly quote source [1]) and recall@3 (the three sources `examples/beacon-answers.toml`
packs). Writes benchmarks/results/beacon_configs.json.

    python benchmarks/beacon_configs.py [--config BASE.toml --config OTHER.toml ...]

Default: the rules of `examples/beacon-answers.toml` without and with its two edition rules (`query` /
`query_not`), i.e. what the edition rules add.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from pathlib import Path

from _common import ROOT, versus, write_result

from ragkit import Engine
from ragkit.evaluate.datasets import load_beir, load_qa
from ragkit.evaluate.runner import evaluate_retrieval

METRICS = ("ndcg@10", "hit_rate@1", "recall@3", "mrr@10")
ANSWERS = ROOT / "examples" / "beacon-answers.toml"


def without_query_rules(cfg: dict) -> dict:
    """``cfg`` with every rule that depends on the question removed (the baseline of the default comparison)."""
    out = dict(cfg)
    out["rerankers"] = [{**r, "rules": [x for x in r.get("rules", []) if "query" not in x and "query_not" not in x]}
                        if r.get("name") == "rules" else r for r in cfg.get("rerankers", [])]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", action="append", default=[], help="a ragkit TOML (repeat; the first is the base)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--split", default="test", help="qrels to judge by: test (as first written) or audited "
                    "(eval_sets/beacon/README.md); audited writes beacon_configs_audited.json")
    args = ap.parse_args()
    if args.config:
        variants = {c: tomllib.loads(Path(c).read_text()) for c in args.config}
    else:
        full = tomllib.loads(ANSWERS.read_text())
        variants = {"beacon-answers.toml without the edition rules": without_query_rules(full),
                    "beacon-answers.toml": full}
    beacon = ROOT / "eval_sets" / "beacon"
    dataset = load_qa(beacon) if args.split == "test" else load_beir(beacon, args.split)
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "idx"
        for name, cfg in variants.items():
            cfg = {k: v for k, v in cfg.items() if k != "generator"}  # retrieval only
            eng = Engine.open(index, cfg)
            eng.ingest([ROOT / "corpora" / "beacon"])  # indexes once: later configs find every file unchanged
            rep = evaluate_retrieval(eng, dataset, k=args.k, metrics=METRICS)
            eng.close()
            rows[name] = {"metrics": {m: round(v, 4) for m, v in rep.metrics.items()},
                          "per_query": {r["qid"]: r["metrics"] for r in rep.rows}}
            print(name, rows[name]["metrics"], flush=True)
    base_name = next(iter(rows))
    base = rows[base_name]["per_query"]
    result = {"dataset": "eval_sets/beacon", "qrels": args.split, "k": args.k, "base": base_name, "variants": {}}
    for name, row in rows.items():
        entry = {"metrics": row["metrics"]}
        if name != base_name:
            qids = sorted(base)
            entry["versus_base"] = {m: versus([row["per_query"][q][m] for q in qids], [base[q][m] for q in qids], m)
                                    for m in METRICS}
            for m, vs in entry["versus_base"].items():
                print(f"  {m}: {vs}")
            entry["changed_at_1"] = [q for q in qids if row["per_query"][q]["hit_rate@1"]
                                     != base[q]["hit_rate@1"]]
        result["variants"][name] = entry
    name = "beacon_configs" if args.split == "test" else f"beacon_configs_{args.split}"
    print(f"wrote {write_result(name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
