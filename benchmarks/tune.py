"""`ragkit tune` on a BEIR dataset: the search selects on one split, the winner and the baseline are compared once
on another. Writes benchmarks/results/tune_<dataset>.json and the winner as benchmarks/tuned/<dataset>.toml.

    python benchmarks/tune.py scifact --dev-split train --test-split test --budget-ms 300 --max-minutes 30
    python benchmarks/tune.py nfcorpus --dev-split dev --test-split test --budget-ms 300 --max-minutes 30
    python benchmarks/tune.py beacon --questions benchmarks/tuned/beacon-synth.jsonl --test-split test \
        --budget-ms 150 --skip-stage none

`beacon` is the bundled set (eval_sets/beacon over corpora/beacon, the default pipeline as the baseline). With
--questions the search selects on synthetic questions only (from `ragkit finetune queries`, their source chunk's
document relevant) and the winner is proved on the real --test-split; every finished trial is then also scored on
the real questions, after the search (a diagnostic, never fed back into it), to measure how well the synthetic
ranking of configurations transfers (Spearman and Kendall correlations, where the real best ranked on synthetic dev).

The baseline is the default pipeline on the document chunker (hybrid, RRF), the configuration the SciFact and
NFCorpus rows of RESULTS.md use; the space is the shipped one (ragkit/evaluate/tune_space.toml) without the stages
given with --skip-stage (default: chunking, whose re-embedding costs minutes per option here). The search's work
directory (trials.jsonl: a re-run resumes) is .cache/tune/<dataset>/. For SciFact the best hand-built pipeline on
record is read from the results of the reranker-depth benchmark (not typed in).

--refit-cross-encoder PATH: the search runs with --cross-encoder (a model that never saw the dev questions it
selects on); the chosen pipeline is then proved on test, and written, with PATH instead: the same recipe trained
on more questions (the dev ones too, never a test one: its card is checked). See benchmarks/tune.md.

--cross-encoder PATH (default: .cache/finetune/reranker-supervised-4ep when it exists; "none" to leave it out) makes
the rerank stage that model at depth 10, 20, 50 x blend 0.2, 0.5, "none" competing. The shipped space's rerank
options name no local model, so without one they are skipped offline. The search scores each (question, passage)
pair once (depth 50 after depth 10 scores only the 40 new passages) and charges cached pairs their scoring time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from pathlib import Path

from _common import BEIR_OVERRIDES, CACHE, DATASETS, RESULTS, ROOT, write_result

from ragkit.config import load_config
from ragkit.evaluate import tune as tu
from ragkit.evaluate.ablate import Ablation, AblationSettings

# bundled sets: (questions, corpus), baseline = the default pipeline (no BEIR one-doc-one-chunk override)
BUNDLED = {"beacon": (ROOT / "eval_sets" / "beacon", ROOT / "corpora" / "beacon")}


def transfer(tuner: tu.Tuner, test, chosen_trial: int, metric: str = "ndcg@10") -> dict:
    """Every finished trial's configuration scored on the real test questions AFTER the search (the selection is
    already made): how the synthetic-dev ranking of configurations agrees with the real one."""
    from scipy.stats import kendalltau, spearmanr

    abl = Ablation(test, tuner.base, [], tuner.out / "transfer",
                   settings=AblationSettings(metrics=tuner.s.metrics, k=tuner.s.k, seed=tuner.s.seed, split="test"),
                   cache_root=tuner.cache_root)
    rows = []
    try:
        for t in tuner.trials:
            if t["status"] != "done":
                continue
            res = abl.evaluate(t["name"], tuner.config_of(t["choice"]))
            if res.get("status", "done") != "done":
                continue
            rows.append({"trial": t["n"], "name": t["name"], "eligible": t["eligible"],
                         "dev": round(t["metrics"][metric], 4), "real": round(res["metrics"][metric], 4)})
    finally:
        abl.close()
    dev, real = [r["dev"] for r in rows], [r["real"] for r in rows]
    rho, tau = spearmanr(dev, real), kendalltau(dev, real)

    def rank(values, i):  # 1 = best; ties share the best rank
        return 1 + sum(v > values[i] for v in values)

    best_real = max(range(len(rows)), key=lambda i: real[i])
    chosen = next(i for i, r in enumerate(rows) if r["trial"] == chosen_trial)
    return {"metric": metric, "configurations": len(rows),
            "spearman": round(float(rho.statistic), 4), "spearman_p": round(float(rho.pvalue), 4),
            "kendall_tau_b": round(float(tau.statistic), 4), "kendall_p": round(float(tau.pvalue), 4),
            "real_best": {**rows[best_real], "rank_on_dev": rank(dev, best_real)},
            "chosen": {**rows[chosen], "rank_on_real": rank(real, chosen)},
            "regret": round(real[best_real] - real[chosen], 4),
            "trials": rows}


def best_on_record(dataset: str) -> dict | None:
    """The best hand-built pipeline's test nDCG@10 on record, with where it comes from."""
    if dataset != "scifact":
        return None
    best = None
    for name in ("rerank_depth_scifact_4ep.json", "rerank_depth_scifact.json"):
        path = RESULTS / name
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        for depth, row in (data.get("depths") or {}).items():
            value = row.get("test_ndcg@10_at_chosen")
            if value is not None and (best is None or value > best["ndcg@10"]):
                best = {"ndcg@10": value, "source": f"benchmarks/results/{name}",
                        "pipeline": f"hybrid RRF + cross-encoder {data.get('model')} (fine-tuned on SciFact train), "
                                    f"depth {depth}, blend {row.get('blend_chosen_on_dev')}"}
    retrieval = RESULTS / "scifact_retrieval.json"
    if retrieval.is_file():
        data = json.loads(retrieval.read_text())
        name = data.get("best_fusion")
        if name:
            value = data["results"][name]["ndcg@10"]
            no_model = {"ndcg@10": value, "source": "benchmarks/results/scifact_retrieval.json",
                        "pipeline": f"{name} (no fine-tuned model)"}
            best = {**(best or no_model), "without_finetuned_model": no_model}
    return best


DEFAULT_CROSS_ENCODER = CACHE / "finetune" / "reranker-supervised-4ep"
CE_DEPTHS, CE_BLENDS = (10, 20, 50), (0.2, 0.5)


def with_cross_encoder(space: tu.Space, model: Path) -> None:
    """The rerank stage of ``space`` (if not skipped) becomes ``model`` at every depth x blend, "none" kept."""
    for stage in space.stages:
        if stage.name == "rerank":
            stage.options = [o for o in stage.options if o.label == tu.NONE] + [
                tu.Option(f"cross-encoder-{d}-blend-{b:g}", {"rerankers": [
                    {"name": "cross-encoder", "model": str(model), "depth": d, "blend": b}]})
                for d in CE_DEPTHS for b in CE_BLENDS]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset", help="a dataset under ../shared/datasets, or beacon (the bundled set)")
    ap.add_argument("--questions", default=None, help="synthetic dev questions (JSONL from ragkit finetune queries)")
    ap.add_argument("--dev-split", default="dev")
    ap.add_argument("--test-split", default="test")
    ap.add_argument("--budget-ms", type=float, default=300.0)
    ap.add_argument("--max-minutes", type=float, default=30.0)
    ap.add_argument("--strategy", default="greedy")
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--skip-stage", action="append", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--cross-encoder", default=str(DEFAULT_CROSS_ENCODER) if DEFAULT_CROSS_ENCODER.is_dir() else None,
                    help="a local CrossEncoder directory for the rerank stage ('none': the shipped options)")
    ap.add_argument("--refit-cross-encoder", default=None,
                    help="after the search, the chosen pipeline uses this model (trained the same way on more "
                         "questions, never a test one) in place of --cross-encoder: in the test run and the config")
    args = ap.parse_args()
    cross_encoder = None if args.cross_encoder in (None, "none") else Path(args.cross_encoder).expanduser().resolve()
    if cross_encoder is not None and not cross_encoder.is_dir():
        ap.error(f"--cross-encoder {args.cross_encoder}: no such model directory")
    refit = None
    if args.refit_cross_encoder:
        if cross_encoder is None:
            ap.error("--refit-cross-encoder needs --cross-encoder (the model the search runs with)")
        refit = {str(cross_encoder): str(Path(args.refit_cross_encoder).expanduser().resolve())}
    skip = ["chunking"] if args.skip_stage is None else [s for s in args.skip_stage if s != "none"]

    root, corpus = BUNDLED.get(args.dataset, (DATASETS / args.dataset, None))
    base = load_config(None, [] if corpus else BEIR_OVERRIDES)
    baseline_name = "default pipeline" + (" (hybrid RRF)" if corpus else " (document chunks, hybrid RRF)")
    space = tu.load_space(None, base, skip)
    if cross_encoder is not None:
        with_cross_encoder(space, cross_encoder)
    dev, test = tu.tune_datasets(root, dev_split=args.dev_split, test_split=args.test_split,
                                 questions=args.questions, corpus=corpus)
    settings = tu.TuneSettings(strategy=args.strategy, budget_ms=args.budget_ms, max_minutes=args.max_minutes,
                               trials=args.trials, seed=args.seed, metrics=("ndcg@10", "recall@100", "mrr@10"))
    work = CACHE / "tune" / args.dataset

    def progress(ev: dict) -> None:
        if ev["event"] == "trial":
            what = (f"{ev['objective']:.4f} p95 {ev['p95_ms']:.1f} ms" + ("" if ev["eligible"] else " OVER")
                    if ev["status"] == "done" else f"skipped ({ev.get('reason')})")
            print(f"trial {ev['n']}/~{ev['planned']} [{ev['stage']}] {ev['name']}: {what}"
                  f"{' (resumed)' if ev['resumed'] else ''} t={ev['elapsed']:.0f}s eta={ev['eta']:.0f}s", flush=True)
        elif ev["event"] == "final":
            print(f"final: winner and baseline on {ev['queries']} test questions", flush=True)

    t0 = time.perf_counter()
    tuner = tu.Tuner(dev, base, space, work, test=test, settings=settings, cache_root=CACHE, progress=progress,
                     fresh=args.fresh, refit=refit)
    result = tuner.run()
    wall = time.perf_counter() - t0
    moved = transfer(tuner, test, result["tune"]["winner"]["trial"]) if args.questions else None
    paths = tu.write_outputs(result, work)
    tuned = ROOT / "benchmarks" / "tuned" / f"{args.dataset}.toml"
    tuned.parent.mkdir(parents=True, exist_ok=True)
    # the committed copy names files in the repository relative to its root, as `ragkit query` is run from there
    tuned.write_text(Path(paths["config"]).read_text(encoding="utf-8").replace(f"{ROOT}/", ""), encoding="utf-8")
    t = result["tune"]
    if t.get("dev_excluded"):
        t["dev_excluded"]["models"] = {k.replace(f"{ROOT}/", ""): v for k, v in t["dev_excluded"]["models"].items()}
    test_res = t["test"]
    cmp = test_res["comparison"]["ndcg@10"]
    record = best_on_record(args.dataset)
    out = {
        "dataset": args.dataset, "test_split": args.test_split,
        "dev_split": f"synthetic ({args.questions})" if args.questions else args.dev_split,
        **({"questions": args.questions, "corpus": str(corpus.relative_to(ROOT))} if args.questions else {}),
        "dev_queries": t["dev_queries"], "dev_excluded": t.get("dev_excluded"), "test_queries": t["test_queries"],
        "strategy": t["strategy"], "budget_ms": t["budget_ms"], "max_minutes": t["max_minutes"], "seed": t["seed"],
        "skipped_stages": skip, "space_size": t["space_size"],
        "cross_encoder": str(cross_encoder).replace(f"{ROOT}/", "") if cross_encoder else None,
        "refit": {k.replace(f"{ROOT}/", ""): v.replace(f"{ROOT}/", "")
                  for k, v in t["winner"].get("refit", {}).items()},
        "rerank_pairs": {"scored": result["reuse"].get("rerank_pairs_scored", 0),
                         "reused": result["reuse"].get("rerank_pairs_reused", 0),
                         "latency": "a reused pair charges the time scoring it took (full-depth rerank latency)"},
        "trials": t["trials"], "trials_run": t["trials_run"], "trials_resumed": t["trials_resumed"],
        "trials_skipped": t["trials_skipped"], "trials_over_budget": t["trials_over_budget"],
        "stopped": t["stopped"], "search_seconds": t["search_seconds"], "wall_seconds": round(wall, 1),
        "winner": {"name": t["winner"]["name"], "choice": t["winner"]["choice"],
                   "config": f"benchmarks/tuned/{args.dataset}.toml",
                   "dev_ndcg@10": round(t["winner"]["dev_metrics"]["ndcg@10"], 4),
                   "dev_p95_ms": t["winner"]["dev_p95_ms"],
                   "test_ndcg@10": round(test_res["winner"]["metrics"]["ndcg@10"], 4),
                   "test_latency_ms": test_res["winner"]["latency_ms"]},
        "baseline": {"name": baseline_name,
                     "dev_ndcg@10": round(t["baseline"]["dev_metrics"]["ndcg@10"], 4),
                     "dev_p95_ms": t["baseline"]["dev_p95_ms"],
                     "test_ndcg@10": round(test_res["baseline"]["metrics"]["ndcg@10"], 4),
                     "test_latency_ms": test_res["baseline"]["latency_ms"]},
        "test_delta_ndcg@10": round(cmp["delta"], 4), "ci95": [round(cmp["ci_low"], 4), round(cmp["ci_high"], 4)],
        "p_value": round(cmp["p_value"], 4), "significant": cmp["significant"],
        "path": [{k: v for k, v in p.items()} for p in t["path"]],
        "trial_list": [{"name": v["description"], "stage": v.get("stage"), "status": v["status"],
                        "dev_ndcg@10": round(v["metrics"]["ndcg@10"], 4) if v["status"] == "done" else None,
                        "p95_ms": v["latency_ms"]["total"]["p95"] if v["status"] == "done" else None,
                        "eligible": v.get("eligible"), "reason": v.get("reason"),
                        "dev_vs_baseline": ({k: round(x, 4) if isinstance(x, float) else x
                                             for k, x in v["vs_reference"]["ndcg@10"].items()}
                                            if v.get("vs_reference") else None)} for v in result["variants"]],
        "dev_significant_wins": sum(1 for v in result["variants"]
                                    if (v.get("vs_reference") or {}).get("ndcg@10", {}).get("direction") == "win"),
        "best_on_record": record,
        **({"transfer": moved} if moved else {}),
        "load_average": result["machine"]["load_average"],
    }
    if record:
        out["goal_met"] = {"test_ndcg@10_at_least_record": out["winner"]["test_ndcg@10"] >= record["ndcg@10"],
                           "within_budget": t["winner"]["dev_p95_ms"] <= args.budget_ms,
                           "wall_time_at_most_60_min": wall <= 3600}
    path = write_result(f"tune_{args.dataset}", out)
    print(f"winner {out['winner']['name']}: test nDCG@10 {out['winner']['test_ndcg@10']} vs baseline "
          f"{out['baseline']['test_ndcg@10']} (Δ {cmp['delta']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}] "
          f"p={cmp['p_value']:.3f}); {t['trials']} trials, {wall:.0f} s; wrote {path} and {tuned}")
    if moved:
        print(f"transfer of {moved['configurations']} configurations, synthetic dev -> real test: Spearman "
              f"{moved['spearman']:+.3f}, Kendall {moved['kendall_tau_b']:+.3f}; the real best "
              f"({moved['real_best']['name']}) ranked {moved['real_best']['rank_on_dev']} on dev; the chosen one "
              f"ranked {moved['chosen']['rank_on_real']} on real (regret {moved['regret']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
