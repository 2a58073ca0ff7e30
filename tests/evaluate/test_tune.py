"""`ragkit tune` on a small corpus with the real MiniLM embedder: greedy finds a planted best configuration, a
configuration over the latency budget is never chosen, the test questions are not seen by the search, an
interrupted search resumes to the same result, the winner's ragkit.toml loads, bad spaces fail in one line."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ragkit.config import load_config
from ragkit.engine import Engine
from ragkit.errors import ConfigError, RagkitError
from ragkit.evaluate import tune as tu
from ragkit.plugins import Plugin, registry

# Each topic has its gold document and a decoy that repeats the question's words (so the baseline often ranks the
# decoy first). A rules reranker boosting gold-* documents is the planted best option.
TOPICS = {
    "keys": ("Press Rotate in Settings to rotate an API key; the old key keeps working for one day.",
             "rotate api key rotate key how do I rotate an api key forum thread about rotating keys"),
    "revoke": ("A revoked API key stops working within sixty seconds and cannot be restored.",
               "revoked key stop working how fast revoked key question revoked keys stop"),
    "logs": ("Logs are retained for thirty days on the Starter plan and a year on Enterprise.",
             "how long are logs kept starter plan logs kept logs starter question"),
    "backup": ("Restore a snapshot with the restore command while the server is stopped.",
               "restore backup snapshot restore a backup snapshot how to restore backup"),
    "panels": ("A dashboard holds at most forty panels; panels can be grouped in rows.",
               "maximum panels dashboard panels on a dashboard maximum number question"),
    "saml": ("SAML single sign-on is available on the Enterprise plan only.",
             "which plan has saml saml plan sso which plan question"),
}
FILLER = [("alerts", "Alert rules notify the on-call channel when an error rate crosses a threshold."),
          ("billing", "Invoices are issued monthly; usage above the plan is billed per gigabyte."),
          ("agents", "The collector agent ships logs over TLS and buffers them on disk when offline.")]
DEV = [("d1", "how do I rotate an api key", "keys"), ("d2", "how fast does a revoked key stop working", "revoke"),
       ("d3", "how long are logs kept on the starter plan", "logs"), ("d4", "restore a backup snapshot", "backup")]
TEST = [("t1", "maximum panels on a dashboard", "panels"), ("t2", "which plan has SAML", "saml"),
        ("t3", "rotate the api key in settings", "keys"), ("t4", "how long do starter logs stay", "logs")]

BASE = ["chunker.name=document"]
GOLD = {"name": "rules", "source_priority": ["gold-*"], "priority_step": 100.0}
DECOY = {"name": "rules", "source_priority": ["decoy-*"], "priority_step": 100.0}


@pytest.fixture
def tiny(tmp_path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    docs = [(f"gold-{t}", g) for t, (g, _) in TOPICS.items()] + [(f"decoy-{t}", d) for t, (_, d) in TOPICS.items()]
    docs += FILLER
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": x}) + "\n"
                                               for i, x in docs))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t, _ in DEV + TEST))
    for split, qs in (("dev", DEV), ("test", TEST)):
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
            f"{q}\tgold-{topic}\t1\n" for q, _, topic in qs))
    return root


def write_space(path: Path, stages: list[dict]) -> Path:
    """A space file; the options' overrides as JSON inline values (JSON objects are valid TOML inline tables once
    the key/value separators are '=')."""
    def val(v):
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {val(x)}" for k, x in v.items()) + " }"
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, bool):
            return "true" if v else "false"
        return json.dumps(v)

    lines = []
    for st in stages:
        lines += ["[[stage]]", f"name = {json.dumps(st['name'])}", "option = ["]
        lines += [f"  {{ label = {json.dumps(label)}, set = {val(ov)} }}," for label, ov in st["options"]]
        lines += ["]", ""]
    path.write_text("\n".join(lines))
    return path


def planted_space(tmp_path: Path, extra_rerank: list | None = None) -> Path:
    return write_space(tmp_path / "space.toml", [
        {"name": "retrieval", "options": [("bm25", {"retrieval.mode": "bm25"}),
                                          ("dense", {"retrieval.mode": "dense"})]},
        {"name": "rerank", "options": [("decoy-first", {"rerankers": [DECOY]}),
                                       ("gold-first", {"rerankers": [GOLD]})] + (extra_rerank or [])},
        {"name": "filters", "options": [("one-per-doc", {"filters": [{"name": "max-per-doc", "max_chunks": 1}]}),
                                        ("drop-everything", {"filters": [{"name": "threshold",
                                                                          "min_score": 1e9}]})]},
    ])


def tuner(tiny: Path, tmp_path: Path, space: Path, out: str = "out", **settings) -> tu.Tuner:
    base = load_config(None, BASE)
    dev, test = tu.tune_datasets(tiny, dev_split="dev", test_split="test")
    s = tu.TuneSettings(metrics=("ndcg@10", "recall@10"), k=10, resamples=2000, **settings)
    return tu.Tuner(dev, base, tu.load_space(space, base), tmp_path / out, test=test, settings=s,
                    cache_root=tmp_path / "cache")


def test_greedy_finds_the_planted_best_configuration_and_writes_a_loadable_config(tiny, tmp_path):
    t = tuner(tiny, tmp_path, planted_space(tmp_path))
    result = t.run()
    tune = result["tune"]
    # every stage was searched in order; the planted reranker wins its stage and doing nothing wins the filters
    assert [p["stage"] for p in tune["path"]] == ["retrieval", "rerank", "filters"]
    assert tune["winner"]["choice"]["rerank"] == "gold-first"
    assert tune["winner"]["choice"]["filters"] in ("none", "one-per-doc")  # the same ranking: a tie, none first
    assert tune["winner"]["choice"]["filters"] == "none"
    assert tune["winner"]["dev_metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert tune["baseline"]["dev_metrics"]["ndcg@10"] < 1.0
    # greedy tried 1 baseline + (2 + 2 + 2) options; repeated pipelines are not run twice
    assert tune["trials"] == 7 and tune["trials_run"] == 7
    # the held-out comparison: winner and baseline on the test questions, paired
    test = tune["test"]
    assert test["queries"] == len(TEST) and test["winner"]["metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert test["comparison"]["ndcg@10"]["delta"] > 0 and 0 < test["comparison"]["ndcg@10"]["p_value"] <= 1
    paths = tu.write_outputs(result, tmp_path / "out")
    # the winner as ragkit.toml: the same config through the Python loader, and a working `query --config`
    cfg = load_config(paths["config"])
    assert cfg.model_dump(mode="json") == tune["winner"]["config"]
    assert [r.name for r in cfg.rerankers] == ["rules"] and cfg.rerankers[0].params["source_priority"] == ["gold-*"]
    md = paths["md"].read_text()
    assert "Held-out test: winner against the baseline" in md and "Search path" in md and "gold-first" in md
    assert paths["html"].read_text().startswith("<!DOCTYPE html>")
    eng = Engine.open(tmp_path / "idx", cfg)
    eng.ingest([tiny / "corpus.jsonl"])
    try:
        assert eng.retrieve("how do I rotate an api key").hits[0].doc_id == "gold-keys"
    finally:
        eng.close()


class Slow(Plugin):
    """A reranker that boosts the gold documents (the best quality of all) but takes 400 ms per query."""

    stage, name = "reranker", "test-slow-gold"

    def process(self, query, hits):
        time.sleep(0.4)
        for h in hits:
            if h.doc_id.startswith("gold-"):
                h.score *= 1000.0
        return sorted(hits, key=lambda h: -h.score)


@pytest.fixture
def slow():
    registry.register(Slow)
    yield Slow
    registry.unregister("reranker", "test-slow-gold")


def test_a_configuration_over_the_latency_budget_is_never_chosen(tiny, tmp_path, slow):
    space = planted_space(tmp_path, extra_rerank=[("slow-gold", {"rerankers": [{"name": "test-slow-gold"}]})])
    result = tuner(tiny, tmp_path, space, budget_ms=250.0).run()
    tune = result["tune"]
    trials = {v["description"]: v for v in result["variants"]}
    slow_trial = next(v for v in result["variants"] if v["description"].endswith("rerank=slow-gold"))
    assert slow_trial["metrics"]["ndcg@10"] == pytest.approx(1.0)  # as good as the winner...
    assert slow_trial["latency_ms"]["total"]["p95"] > 250 and not slow_trial["eligible"]  # ...but over budget
    assert tune["trials_over_budget"] >= 1 and "slow-gold" not in tune["winner"]["name"]
    assert tune["winner"]["choice"]["rerank"] == "gold-first" and tune["winner"]["dev_p95_ms"] <= 250
    assert trials  # the report lists it, marked
    assert "(over budget)" in tu.write_outputs(result, tmp_path / "out")["md"].read_text()


def test_the_search_never_sees_the_test_questions(tiny, tmp_path, monkeypatch):
    seen: list[str] = []
    original = Engine.first_stage

    def spy(self, query, **kw):
        seen.append(query)
        return original(self, query, **kw)

    monkeypatch.setattr(Engine, "first_stage", spy)
    t = tuner(tiny, tmp_path, planted_space(tmp_path))
    try:
        winner = t.search()
    finally:
        t.close()
    dev_texts, test_texts = {q for _, q, _ in DEV}, {q for _, q, _ in TEST}
    assert seen and set(seen) <= dev_texts and not set(seen) & test_texts
    n_search = len(seen)
    final = t.final(winner)
    # the test questions are read after the search only, for the winner and the baseline (which share one
    # first-stage run here: they differ only after it)
    assert set(seen[n_search:]) == test_texts and len(seen) - n_search == len(TEST)
    assert final["queries"] == len(TEST)


class Interrupt(Plugin):
    """A pass-through reranker that stops the whole search (like Ctrl-C) while ``armed``."""

    stage, name = "reranker", "test-tune-interrupt"
    armed = False

    def process(self, query, hits):
        if Interrupt.armed:
            raise KeyboardInterrupt
        return hits


def test_an_interrupted_search_resumes_to_the_same_result(tiny, tmp_path):
    registry.register(Interrupt)
    try:
        # the interrupting option sits in the middle of the rerank stage: trials before it are on disk
        space = planted_space(tmp_path, extra_rerank=[("pass-through", {"rerankers": [{"name": "test-tune-interrupt"}]})])
        full = tuner(tiny, tmp_path, space, out="full").run()["tune"]
        Interrupt.armed = True
        with pytest.raises(KeyboardInterrupt):
            tuner(tiny, tmp_path, space, out="resumed").run()
        done_before = len((tmp_path / "resumed" / "trials.jsonl").read_text().splitlines()) - 1
        assert 0 < done_before < full["trials"]
        Interrupt.armed = False
        resumed = tuner(tiny, tmp_path, space, out="resumed").run()["tune"]
    finally:
        Interrupt.armed = False
        registry.unregister("reranker", "test-tune-interrupt")
    assert resumed["trials_resumed"] == done_before and resumed["trials_run"] == full["trials"] - done_before
    for key in ("winner", "path", "trials"):
        a, b = resumed[key], full[key]
        if key == "winner":
            a, b = {k: v for k, v in a.items() if k != "dev_p95_ms"}, {k: v for k, v in b.items() if k != "dev_p95_ms"}
        if key == "path":
            a = [{k: v for k, v in p.items() if k != "p95_ms"} for p in a]
            b = [{k: v for k, v in p.items() if k != "p95_ms"} for p in b]
        assert a == b
    assert resumed["test"]["comparison"]["ndcg@10"] == full["test"]["comparison"]["ndcg@10"]


def test_a_log_of_another_search_is_refused(tiny, tmp_path):
    tuner(tiny, tmp_path, planted_space(tmp_path)).run()
    base = load_config(None, [*BASE, "retrieval.candidates=50"])
    dev, test = tu.tune_datasets(tiny, dev_split="dev", test_split="test")
    with pytest.raises(RagkitError, match="trials of another search"):
        tu.Tuner(dev, base, tu.load_space(planted_space(tmp_path), base), tmp_path / "out", test=test,
                 settings=tu.TuneSettings(metrics=("ndcg@10", "recall@10"), k=10),
                 cache_root=tmp_path / "cache").search()


@pytest.mark.parametrize("text,match", [
    ("[[stage]]\nname = 'x'\noption = [ { label = 'a', set = { 'fusion.name' = 'nosuch' } } ]\n",
     "stage 'x' option 'a': .*nosuch"),
    ("[[stage]]\nname = 'x'\noption = [ { label = 'a', set = { 'retrieval.nosuch' = 1 } } ]\n",
     "stage 'x' option 'a': .*unknown setting"),
    ("[[stage]\nname = 'x'\n", "malformed TOML"),
    ("[[stage]]\noption = []\n", "stage 1 has no name"),
    ("[[stage]]\nname = 'x'\n", "stage 'x': no options"),
    ("[[stage]]\nname = 'x'\noption = [ { label = 'a', set = {} }, { label = 'a', set = {} } ]\n", "used twice"),
    ("[[stage]]\nname = 'x'\ngrid = { 'retrieval.k' = [] }\n", "grid must map"),
    ("[[stages]]\nname = 'x'\n", "unknown key 'stages'"),
])
def test_a_bad_space_is_one_line_error(tmp_path, text, match):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        tu.load_space(path)
    assert "\n" not in str(info.value)


def test_the_default_space_loads_and_a_grid_expands():
    space = tu.load_space()
    names = [s.name for s in space.stages]
    assert names[:4] == ["chunking", "bm25", "retrieval", "fusion"] and all(s.options[0].label == "none" for s in space.stages)
    weights = next(s for s in space.stages if s.name == "fusion-weights")
    assert [o.overrides for o in weights.options[1:3]] == [{"fusion.weights.bm25": 0.25}, {"fusion.weights.bm25": 0.5}]
    bm25 = next(s for s in space.stages if s.name == "bm25")
    assert {o.overrides["sparse.k1"] for o in bm25.options[1:]} == {1.2, 1.5}


def test_settings_errors_are_one_line():
    with pytest.raises(ConfigError, match="--strategy 'random'"):
        tu.TuneSettings(strategy="random")
    with pytest.raises(RagkitError, match="unknown metric"):
        tu.parse_objective("ndcg@10:0.5,nosuch@3:0.5")
    assert tu.parse_objective("ndcg@10:0.7,recall@100:0.3") == {"ndcg@10": 0.7, "recall@100": 0.3}
    with pytest.raises(ConfigError, match="positive"):
        tu.parse_objective("ndcg@10:0")


def test_bayes_without_optuna_says_which_extra_to_install():
    try:
        import optuna  # noqa: F401
    except ImportError:
        with pytest.raises(RagkitError, match=r"pip install 'ragkit\[tune\]'"):
            tu.require_optuna()
    else:
        pytest.skip("optuna is installed")


def test_dev_fraction_divides_one_split_seeded_and_disjoint(tiny):
    dev, test = tu.tune_datasets(tiny, dev_split="dev", test_split="dev", seed=3)
    again, _ = tu.tune_datasets(tiny, dev_split="dev", test_split="dev", seed=3)
    assert {q.qid for q in dev.queries} == {q.qid for q in again.queries}
    assert not {q.qid for q in dev.queries} & {q.qid for q in test.queries}
    assert len(dev.queries) + len(test.queries) == len(DEV)


def test_synthetic_dev_questions_name_their_source_document(tiny, tmp_path):
    synth = tmp_path / "synth.jsonl"
    synth.write_text(json.dumps({"qid": "s1", "query": "rotating keys in settings", "source": "synthetic",
                                 "positives": [{"id": "c1", "doc_id": "gold-keys", "text": "..."}]}) + "\n")
    dev, test = tu.tune_datasets(tiny, test_split="test", questions=synth)
    assert [(q.qid, q.relevant) for q in dev.queries] == [("s1", {"gold-keys": 1})]
    assert len(test.queries) == len(TEST) and dev.corpus == test.corpus


def _cli(*args, check=True):
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ragkit", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_cli_tune_writes_a_config_that_ragkit_query_uses(tiny, tmp_path):
    space = planted_space(tmp_path)
    out = tmp_path / "tune"
    proc = _cli("tune", "--dataset", tiny, "--dev-split", "dev", "--test-split", "test", "--space", space,
                "--set", "chunker.name=document", "--metrics", "ndcg@10,recall@10", "--k", "10",
                "--cache-dir", tmp_path / "cache", "--out", out, "--json")
    data = json.loads(proc.stdout)
    assert data["tune"]["winner"]["choice"]["rerank"] == "gold-first"
    assert data["tune"]["test"]["winner"]["metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert {"config", "md", "html", "json"} <= set(data["outputs"]) and (out / "trials.jsonl").is_file()
    _cli("ingest", tiny / "corpus.jsonl", "--index", tmp_path / "idx", "--config", out / "ragkit.toml", "--json")
    q = _cli("query", "how fast does a revoked key stop working", "--index", tmp_path / "idx", "--config",
             out / "ragkit.toml", "--no-answer", "--json")
    hits = json.loads(q.stdout)["sources"]
    assert hits[0]["doc_id"] == "gold-revoke"
    # a bad space and a missing optional dependency are one-line errors, before any indexing
    bad = tmp_path / "bad.toml"
    bad.write_text("[[stage]]\nname = 'x'\noption = [ { label = 'a', set = { 'rerankers' = [{ name = 'nosuch' }] } } ]\n")
    proc = _cli("tune", "--dataset", tiny, "--space", bad, "--out", tmp_path / "t2", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: ") and "nosuch" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bayes_is_seeded_and_finds_the_planted_best(tiny, tmp_path):
    pytest.importorskip("optuna")
    space = planted_space(tmp_path)
    a = tuner(tiny, tmp_path, space, out="a", strategy="bayes", trials=8, seed=5).run()["tune"]
    b = tuner(tiny, tmp_path, space, out="b", strategy="bayes", trials=8, seed=5).run()["tune"]
    # 8 distinct configurations (a repeated suggestion is not run again); the baseline is the first
    assert a["trials"] == 8 and a["path"][0]["chosen"] == "baseline"
    assert [p["chosen"] for p in a["path"]] == [p["chosen"] for p in b["path"]]
    assert a["winner"]["choice"] == b["winner"]["choice"]
    assert a["winner"]["dev_metrics"]["ndcg@10"] >= a["baseline"]["dev_metrics"]["ndcg@10"]


# --- reranker score reuse ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory):
    """A real (2 MiniLM layers, weak) cross-encoder trained here in seconds (benchmarks/_tiny_ce.py)."""
    from _tiny_ce import beacon_pairs, train_cross_encoder

    from tests.conftest import ROOT

    pairs = beacon_pairs(ROOT / "eval_sets" / "beacon" / "qa.jsonl")[:40]
    return train_cross_encoder(pairs, tmp_path_factory.mktemp("ce") / "tiny", layers=2, max_length=64,
                               batch_size=8)


@pytest.fixture
def predicted(monkeypatch):
    """Every (question, passage) pair the real model scores, through a spy on CrossEncoder.predict."""
    from sentence_transformers import CrossEncoder

    seen: list[tuple[str, str]] = []
    original = CrossEncoder.predict

    def spy(self, sentences, *args, **kw):
        seen.extend(tuple(p) for p in sentences)
        return original(self, sentences, *args, **kw)

    monkeypatch.setattr(CrossEncoder, "predict", spy)
    return seen


def _ce(model, depth, blend=None):
    return {"rerankers": [{"name": "cross-encoder", "model": str(model), "depth": depth,
                           **({} if blend is None else {"blend": blend})}]}


def test_reranker_scores_are_reused_and_give_the_same_results(tiny, tmp_path, tiny_ce, predicted):
    from ragkit.evaluate.ablate import Ablation, AblationSettings
    from ragkit.evaluate.variants import apply_overrides

    base = load_config(None, BASE)
    dev, _ = tu.tune_datasets(tiny, dev_split="dev", test_split="test")
    n = len(dev.queries)
    # depth 2, then deeper, then another blend at a scored depth, then the same reranker after another first stage
    trials = [("d2", _ce(tiny_ce, 2)), ("d4", _ce(tiny_ce, 4)), ("d4-blend", _ce(tiny_ce, 4, 0.5)),
              ("d2-blend", _ce(tiny_ce, 2, 0.2)), ("bm25-d4", {"retrieval.mode": "bm25", **_ce(tiny_ce, 4)})]

    def run(reuse: bool) -> tuple[dict, list[int], Ablation]:
        abl = Ablation(dev, base, [], tmp_path / f"out-{reuse}", cache_root=tmp_path / "cache",
                       settings=AblationSettings(metrics=("ndcg@10", "recall@10"), k=10, split="dev"))
        if not reuse:
            abl.score_cache = None
        out, calls = {}, []
        try:
            for name, ov in trials:
                out[name] = abl.evaluate(name, apply_overrides(base, ov))
                assert out[name]["status"] == "done", out[name]
                calls.append(len(predicted))
        finally:
            abl.close()
        return out, calls, abl

    fresh, fresh_calls, _ = run(reuse=False)
    everything = list(predicted)
    # without the cache every trial scores its whole head (bm25 may find fewer than 4 passages for a question)
    assert fresh_calls[:4] == [2 * n, 6 * n, 10 * n, 12 * n] and 12 * n < fresh_calls[4] <= 16 * n
    predicted.clear()
    reused, calls, abl = run(reuse=True)
    # the model saw each distinct pair once: exactly the distinct pairs the uncached run scored
    assert len(predicted) == len(set(predicted)) == len(set(everything))
    assert calls[0] == 2 * n and calls[1] == 4 * n  # depth 4 after depth 2: two new passages per question
    assert calls[2] == calls[3] == 4 * n  # another blend, a shallower depth: nothing new to score
    assert calls[4] - calls[3] == len(set(everything)) - 4 * n  # after bm25: only passages dense did not bring
    assert abl.stats["rerank_pairs_scored"] == len(set(everything))
    assert abl.stats["rerank_pairs_reused"] == fresh_calls[-1] - len(set(everything))
    for name, _ in trials:  # the same rankings and metrics as scoring every trial afresh
        assert reused[name]["run"] == fresh[name]["run"], name
        assert reused[name]["metrics"] == fresh[name]["metrics"], name


def test_a_trial_served_from_the_score_cache_is_charged_its_rerank_time(tiny, tmp_path, tiny_ce, predicted):
    from ragkit.evaluate.ablate import Ablation, AblationSettings
    from ragkit.evaluate.variants import apply_overrides

    base = load_config(None, BASE)
    dev, _ = tu.tune_datasets(tiny, dev_split="dev", test_split="test")
    abl = Ablation(dev, base, [], tmp_path / "out", cache_root=tmp_path / "cache",
                   settings=AblationSettings(metrics=("ndcg@10",), k=10, split="dev"))
    try:
        first = abl.evaluate("d4", apply_overrides(base, _ce(tiny_ce, 4)))
        n_scored = len(predicted)
        cached = abl.evaluate("d4-blend", apply_overrides(base, _ce(tiny_ce, 4, 0.5)))
    finally:
        abl.close()
    assert len(predicted) == n_scored  # every score of the second trial came from memory...
    rs = cached["rerank_scores"]
    assert rs["pairs_scored"] == 0 and rs["pairs_reused"] == 4 * len(dev.queries)
    assert first["rerank_scores"]["pairs_scored"] == 4 * len(dev.queries)
    # ...but its rerank stage is charged what scoring them took: more than nothing, per query, in the total
    assert rs["charged_ms"]["p50"] > 0 and rs["charged_ms"]["sum"] > 0
    stage = cached["latency_ms"]["reranker:cross-encoder"]
    assert stage["p50"] >= rs["charged_ms"]["p50"] and stage["p95"] >= rs["charged_ms"]["p95"]
    assert cached["latency_ms"]["total"]["p50"] >= stage["p50"]


def test_tune_scores_each_pair_once_and_the_report_says_how_latency_is_charged(tiny, tmp_path, tiny_ce,
                                                                                predicted):
    space = write_space(tmp_path / "space.toml", [
        {"name": "retrieval", "options": [("bm25", {"retrieval.mode": "bm25"})]},
        {"name": "rerank", "options": [(f"ce-{d}-{b}", _ce(tiny_ce, d, b)) for d in (2, 4) for b in (0.2, 0.5)]},
    ])
    t = tuner(tiny, tmp_path, space)
    try:
        winner = t.search()
    finally:
        t.close()
    assert len(predicted) == len(set(predicted)) > 0  # no pair scored twice over the whole search
    assert t.reuse["rerank_pairs_scored"] == len(predicted) and t.reuse["rerank_pairs_reused"] > 0
    ce_trials = [x for x in t.trials if x["choice"]["rerank"] != "none"]
    assert len(ce_trials) == 4 and all(x["rerank_scores"]["charged_ms"]["sum"] > 0 for x in ce_trials[1:])
    summary = t.summary(winner, None)
    assert summary["reuse"]["rerank_pairs_scored"] == len(predicted)
    md = tu.write_outputs(summary, tmp_path / "out")["md"].read_text()
    assert "Reranker scores were reused" in md and "charges the time" in md


def test_questions_a_reranker_in_the_space_was_trained_on_are_kept_out_of_selection(tiny, tmp_path, tiny_ce):
    """A fine-tuned model's card names its training questions; the search selects on the other dev questions only
    (a model scores its own training questions too well), and the summary says how many were left out."""
    from ragkit.finetune.training import read_card, write_card

    model = tmp_path / "ce-with-card"
    shutil.copytree(tiny_ce, model)
    write_card(model, {"kind": "reranker", "train_questions": ["d1", "d2", "q-not-in-dev"]})
    assert read_card(model)["train_questions"] == ["d1", "d2", "q-not-in-dev"]
    space = write_space(tmp_path / "ce-space.toml", [
        {"name": "retrieval", "options": [("bm25", {"retrieval.mode": "bm25"})]},
        {"name": "rerank", "options": [("ce", _ce(model, 4, 0.5))]},
    ])
    t = tuner(tiny, tmp_path, space)
    try:
        winner = t.search()
    finally:
        t.close()
    assert sorted(q.qid for q in t.dev.queries) == ["d3", "d4"]
    assert all(len(x["per_query"]["ndcg@10"]) == 2 for x in t.trials if x["status"] == "done")
    summary = t.summary(winner, None)["tune"]
    assert summary["dev_queries"] == 2
    assert summary["dev_excluded"] == {"questions": 2, "models": {str(model): 2}}
    # a space without that model selects on every dev question
    plain = tuner(tiny, tmp_path, planted_space(tmp_path), out="plain")
    assert len(plain.dev.queries) == len(DEV) and plain.dev_excluded == {"questions": 0, "models": {}}
    write_card(model, {"kind": "reranker", "train_questions": [q for q, _, _ in DEV]})
    with pytest.raises(RagkitError, match="every dev question was used to train"):
        tuner(tiny, tmp_path, space, out="none-left")


def test_a_refit_model_is_used_only_after_the_search_and_never_one_trained_on_test(tiny, tmp_path, tiny_ce,
                                                                                    monkeypatch):
    """--refit OLD=NEW: the search selects with OLD (on dev questions OLD never saw); the chosen pipeline then runs
    on the test questions and is written with NEW (trained on more, e.g. the dev questions too). NEW is never
    loaded during the search, and a NEW trained on a test question is refused."""
    from sentence_transformers import CrossEncoder

    from ragkit.finetune.training import write_card

    searched, refit = tmp_path / "ce-searched", tmp_path / "ce-refit"
    shutil.copytree(tiny_ce, searched)
    shutil.copytree(tiny_ce, refit)
    write_card(searched, {"kind": "reranker", "train_questions": ["d1"]})
    write_card(refit, {"kind": "reranker", "train_questions": ["d1", "d2", "d3", "d4"]})
    loaded: list[str] = []
    original = CrossEncoder.__init__

    def spy(self, model_name_or_path, *args, **kw):
        loaded.append(str(model_name_or_path))
        return original(self, model_name_or_path, *args, **kw)

    monkeypatch.setattr(CrossEncoder, "__init__", spy)
    space = write_space(tmp_path / "refit-space.toml", [{"name": "rerank", "options": [("ce", _ce(searched, 4))]}])
    base = load_config(None, BASE)
    dev, test = tu.tune_datasets(tiny, dev_split="dev", test_split="test")
    s = tu.TuneSettings(metrics=("ndcg@10",), k=10, resamples=200)

    def make(mapping, out="refit"):
        return tu.Tuner(dev, base, tu.load_space(space, base), tmp_path / out, test=test, settings=s,
                        cache_root=tmp_path / "cache", refit=mapping)

    t = make(tu.parse_refit([f"{searched}={refit}"]))
    try:
        t.search()
    finally:
        t.close()
    assert sorted(q.qid for q in t.dev.queries) == ["d2", "d3", "d4"]  # only what the searched model never saw
    assert loaded and set(loaded) == {str(searched)}
    chosen = next(x for x in t.trials if x["choice"]["rerank"] == "ce")
    before = len(loaded)
    result = t.final(chosen)
    assert set(loaded[before:]) == {str(refit)}
    assert result["queries"] == len(TEST)
    summary = t.summary(chosen, result)
    assert summary["tune"]["winner"]["refit"] == {str(searched): str(refit)}
    written = load_config(tu.write_outputs(summary, tmp_path / "written")["config"])
    assert [r.model for r in written.rerankers] == [str(refit)]
    # a baseline without the model records no refit, and the mapping changes nothing else of the config
    base_trial = t.trials[0]
    assert t.summary(base_trial, None)["tune"]["winner"]["refit"] == {}
    assert t.chosen_config(base_trial["choice"]) == t.config_of(base_trial["choice"])

    write_card(refit, {"kind": "reranker", "train_questions": ["d1", "t2"]})
    with pytest.raises(RagkitError, match="trained on 1 test questions"):
        make({str(searched): str(refit)}, out="leaky")
    with pytest.raises(RagkitError, match="no such model directory"):
        make({str(searched): str(tmp_path / "missing")}, out="missing")
    with pytest.raises(ConfigError, match="OLD_MODEL=NEW_MODEL"):
        tu.parse_refit(["just-a-path"])


# --- tuning over an existing index with synthetic questions (no labels) ---------------------------------------

SYNTH = [("s1", "how do I rotate an api key", "gold-keys"), ("s2", "how fast does a revoked key stop working",
                                                             "gold-revoke"),
         ("s3", "how long are logs kept on the starter plan", "gold-logs"), ("s4", "restore a backup snapshot",
                                                                              "gold-backup"),
         ("s5", "maximum panels on a dashboard", "gold-panels"), ("s6", "which plan has SAML", "gold-saml"),
         ("s7", "rotate the api key in settings", "gold-keys"), ("s8", "how long do starter logs stay", "gold-logs")]


def write_synth(path: Path, rows=SYNTH) -> Path:
    """Questions as `ragkit finetune queries` writes them: each with its source chunk as the positive."""
    path.write_text("".join(json.dumps({"qid": q, "query": text, "source": "synthetic",
                                        "positives": [{"id": f"{doc}#0", "doc_id": doc, "text": "..."}],
                                        "negatives": []}) + "\n" for q, text, doc in rows))
    return path


@pytest.fixture
def tiny_index(tiny, tmp_path) -> Path:
    idx = tmp_path / "idx"
    with Engine.open(idx, load_config(None, BASE)) as eng:
        eng.ingest([tiny / "corpus.jsonl"])
    return idx


def index_space(tmp_path: Path) -> Path:
    return write_space(tmp_path / "space.toml", [
        {"name": "chunking", "options": [("sentence-64", {"chunker.name": "sentence", "chunker.chunk_size": 64})]},
        {"name": "retrieval", "options": [("bm25", {"retrieval.mode": "bm25"})]},
        {"name": "rerank", "options": [("decoy-first", {"rerankers": [DECOY]}),
                                       ("gold-first", {"rerankers": [GOLD]})]},
    ])


def test_tune_over_an_existing_index_with_synthetic_questions(tiny_index, tmp_path, monkeypatch):
    from ragkit.evaluate import ablate as ab

    synth = write_synth(tmp_path / "synth.jsonl")
    base = tu.index_base(tiny_index, load_config(None, []))
    # the base takes the index's own chunker (the config did not name one): the index is reused as it is
    assert base.chunker.name == "document"
    dev, test, source = tu.index_datasets(tiny_index, synth, seed=1)
    assert source == "held-out synthetic questions" and dev.corpus is None
    assert len(dev.queries) + len(test.queries) == len(SYNTH)
    assert not {q.qid for q in dev.queries} & {q.qid for q in test.queries}
    # nothing is embedded or indexed: any attempt to build a dataset index fails the test
    monkeypatch.setattr(ab, "dataset_engine", lambda *a, **k: pytest.fail("built an index in --index mode"))
    before = sorted(p.name for p in tiny_index.rglob("*"))
    s = tu.TuneSettings(metrics=("ndcg@10", "recall@10"), k=10, resamples=2000)
    result = tu.Tuner(dev, base, tu.load_space(index_space(tmp_path), base), tmp_path / "out", test=test,
                      settings=s, cache_root=tmp_path / "cache", index=tiny_index, test_source=source).run()
    t = result["tune"]
    chunking = next(v for v in result["variants"] if v["description"] == "chunking=sentence-64")
    assert chunking["status"] == "skipped" and "changes the index's chunker" in chunking["reason"]
    assert "fixed" in chunking["reason"]
    assert t["winner"]["choice"] == {"chunking": "none", "retrieval": "none", "rerank": "gold-first"}
    assert t["winner"]["dev_metrics"]["ndcg@10"] == pytest.approx(1.0)
    assert t["index"] == str(tiny_index) and t["test"]["source"] == "held-out synthetic questions"
    assert t["test"]["queries"] == len(test.queries) and t["test"]["winner"]["metrics"]["ndcg@10"] == \
        pytest.approx(1.0)
    assert all(v["index"]["existing"] and v["index"]["path"] == str(tiny_index)
               for v in result["variants"] if v["status"] == "done")
    assert sorted(p.name for p in tiny_index.rglob("*")) == before  # the index is only read
    paths = tu.write_outputs(result, tmp_path / "out")
    assert load_config(paths["config"]).chunker.name == "document"
    md = paths["md"].read_text()
    assert "(held-out synthetic questions)" in md and "synthetic like the dev ones" in md
    assert "changes the index's chunker" in md  # the skipped trial and its reason are in the report


def test_index_mode_with_a_dataset_proves_on_its_real_test_questions(tiny, tiny_index, tmp_path):
    synth = write_synth(tmp_path / "synth.jsonl")
    dev, test, source = tu.index_datasets(tiny_index, synth, dataset=tiny, test_split="test")
    assert len(dev.queries) == len(SYNTH) and [q.qid for q in test.queries] == [q for q, _, _ in TEST]
    assert source == "real questions (tiny, test split)"


def test_index_mode_errors_are_one_line(tiny_index, tmp_path):
    synth = write_synth(tmp_path / "synth.jsonl")
    with pytest.raises(RagkitError, match="no index there"):
        tu.index_base(tmp_path / "nothing", load_config(None, []))
    with pytest.raises(RagkitError, match="no index there"):
        tu.index_datasets(tmp_path / "nothing", synth)
    with pytest.raises(RagkitError, match="index was built with chunker"):
        tu.index_base(tiny_index, load_config(None, ["chunker.name=sentence"]))
    other = write_synth(tmp_path / "other.jsonl", [("x1", "what is the refund policy", "refunds.md"),
                                                    *SYNTH[:2]])
    with pytest.raises(RagkitError, match=r"1 of 3 questions name only documents the index .* does not hold "
                                          r"\(e.g. x1: 'refunds.md'\)"):
        tu.index_datasets(tiny_index, other)
    with pytest.raises(RagkitError, match="questions file not found"):
        tu.index_datasets(tiny_index, tmp_path / "missing.jsonl")


def test_cli_tune_over_an_index(tiny_index, tmp_path):
    synth = write_synth(tmp_path / "synth.jsonl")
    space = index_space(tmp_path)
    out = tmp_path / "tune"
    proc = _cli("tune", "--index", tiny_index, "--questions", synth, "--space", space, "--metrics",
                "ndcg@10,recall@10", "--k", "10", "--cache-dir", tmp_path / "cache", "--out", out)
    assert "held-out synthetic questions" in proc.stdout and "gold-first" in proc.stdout
    assert (out / "ragkit.toml").is_file()
    for args, msg in ((["--index", tmp_path / "nothing", "--questions", synth], "no index there"),
                      (["--index", tiny_index], "--index needs --questions"),
                      ([], "give --dataset")):
        proc = _cli("tune", *args, "--out", tmp_path / "t2", check=False)
        assert proc.returncode != 0 and proc.stderr.strip().startswith("error: ") and msg in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
