"""`ragkit ablate`: reuse (the corpus is embedded once), resume after an interruption, ladder steps that cannot
run are skipped with the reason, and the report (md/html/json + plots), the HTML opened in headless Chromium."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from ragkit.config import load_config
from ragkit.errors import PluginError
from ragkit.evaluate import ablate as ab
from ragkit.evaluate import variants as va
from ragkit.evaluate.runs import read_trec_run
from ragkit.plugins import Plugin, registry

DOCS = [
    ("keys", "Rotating API keys", "Press Rotate in Settings to rotate an API key; the old key works for a day."),
    ("revoke", "Revoking keys", "A revoked API key stops working within sixty seconds and cannot be restored."),
    ("retention", "Log retention", "Logs are retained for thirty days on the Starter plan, a year on Enterprise."),
    ("metrics", "Metric retention", "Metrics are kept for thirteen months at one-minute resolution."),
    ("backup", "Backups", "Back up the data directory nightly; snapshots live in the snapshots folder."),
    ("restore", "Restoring", "Restore a snapshot with the restore command while the server is stopped."),
    ("alerts", "Alert rules", "Alert rules notify the on-call channel when an error rate crosses a threshold."),
    ("dash", "Dashboards", "A dashboard holds at most forty panels; panels can be grouped in rows."),
    ("sso", "Single sign-on", "SAML single sign-on is available on the Enterprise plan only."),
    ("limits", "Rate limits", "The ingest API accepts six hundred requests per minute per organisation."),
    ("agents", "Agents", "The collector agent ships logs over TLS and buffers them on disk when offline."),
    ("billing", "Billing", "Invoices are issued monthly; usage above the plan is billed per gigabyte."),
]
QUERIES = [
    ("q1", "how do I rotate an api key", {"keys": 1}, "procedural"),
    ("q2", "how fast does a revoked key stop working", {"revoke": 1}, "factoid"),
    ("q3", "how long are logs kept on the starter plan", {"retention": 2, "metrics": 1}, "factoid"),
    ("q4", "restore a backup snapshot", {"restore": 2, "backup": 1}, "procedural"),
    ("q5", "maximum panels on a dashboard", {"dash": 1}, "factoid"),
    ("q6", "which plan has SAML", {"sso": 1}, "factoid"),
    ("q7", "requests per minute allowed by ingestion", {"limits": 1}, "factoid"),
    ("q8", "what happens to logs when the agent has no network", {"agents": 1}, "procedural"),
]


@pytest.fixture
def tiny_beir(tmp_path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, t, x in DOCS))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t, _, _ in QUERIES))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\t{d}\t{s}\n" for q, _, rel, _ in QUERIES for d, s in rel.items()))
    # the type of each question comes from a qa.jsonl beside the BEIR files (as in eval_sets/beacon)
    text = {i: x for i, _, x in DOCS}
    (root / "qa.jsonl").write_text("".join(json.dumps({"id": q, "question": t, "doc_ids": list(rel), "type": ty,
                                                       "reference_answer": text[next(iter(rel))]})
                                           + "\n" for q, t, rel, ty in QUERIES))
    return root


@pytest.fixture
def embed_spy(monkeypatch):
    """Every text the real MiniLM embedder is asked to embed (the model itself runs)."""
    from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder

    seen: list[str] = []
    original, original_queries = SentenceTransformerEmbedder.embed, SentenceTransformerEmbedder.embed_queries
    inside = []  # a query batch that falls back to the document path is counted once

    def spy(self, texts, batch_size=None):
        if not inside:
            seen.extend(texts)
        return original(self, texts, batch_size)

    def spy_queries(self, texts):  # queries take their own path (ONNX Runtime by default)
        seen.extend(texts)
        inside.append(1)
        try:
            return original_queries(self, texts)
        finally:
            inside.pop()

    monkeypatch.setattr(SentenceTransformerEmbedder, "embed", spy)
    monkeypatch.setattr(SentenceTransformerEmbedder, "embed_queries", spy_queries)
    return seen


BASE = ["chunker.name=document"]


def test_six_variants_embed_the_corpus_once_and_share_first_stage_runs(tiny_beir, tmp_path, embed_spy):
    ds = ab.load_ablation_dataset(tiny_beir)
    base = load_config(None, BASE)
    axes = [va.parse_vary(v, base) for v in ("retrieval=bm25,dense", "fusion=minmax", "rerank=rules",
                                              "sparse=rank-bm25")]
    variants = va.one_at_a_time(base, axes)
    assert [v.name for v in variants] == ["base", "bm25", "dense", "fusion=minmax", "rerankers=rules",
                                          "sparse=rank-bm25"]
    result = ab.Ablation(ds, base, variants, tmp_path / "out", cache_root=tmp_path / "cache",
                         settings=ab.AblationSettings(metrics=("ndcg@10", "recall@10"), k=10)).run()
    assert all(v["status"] == "done" for v in result["variants"]), result["variants"]
    query_texts = {t for _, t, _, _ in QUERIES}
    corpus_calls = Counter(t for t in embed_spy if t not in query_texts)
    # two indexes (bm25s and rank-bm25 shape different indexes) but one shared embedding cache:
    # every document text was embedded exactly once
    assert len(corpus_calls) == len(DOCS) and set(corpus_calls.values()) == {1}
    # and every query vector once, although four first-stage runs use the dense branch
    assert Counter(t for t in embed_spy if t in query_texts) == Counter(query_texts)
    r = result["reuse"]
    assert r["indexes_built"] == 2 and r["chunks_embedded"] == len(DOCS)
    # base, bm25, dense, minmax and the rank-bm25 index each need a first stage; the rules variant reuses base's
    assert r["first_stage_runs"] == 5 and r["first_stage_reused"] == 1
    by = {v["name"]: v for v in result["variants"]}
    assert by["rerankers=rules"]["first_stage_reused"] and not by["bm25"]["first_stage_reused"]
    # a reranker with no rules changes nothing: identical per-query scores -> p = 1, not significant
    same = by["rerankers=rules"]["vs_reference"]["ndcg@10"]
    assert same["p_value"] == 1.0 and same["delta"] == 0.0 and same["direction"] == "tie"
    # per-query-type breakdown from the dataset's type field
    assert result["dataset"]["groups"] == {"type:factoid": 5, "type:procedural": 3}
    assert set(by["dense"]["by_group"]) == {"type:factoid", "type:procedural"}
    # each variant's ranking is a TREC run file that reproduces its metrics
    from ragkit.evaluate.retrieval import evaluate_run

    qrels = {q.qid: q.relevant for q in ds.queries}
    for v in result["variants"]:
        path = tmp_path / "out" / v["run_file"]
        assert path.name == f"{va.slug(v['name'])}.trec.gz" and path.parent.name == "runs"
        run = read_trec_run(path)
        assert set(run) <= set(qrels) and all(len(docs) <= 10 for docs in run.values())
        first = gzip.open(path, "rt").readline().split()
        assert first[1] == "Q0" and first[3] == "1" and first[5] == va.slug(v["name"])
        mean, _ = evaluate_run(qrels, run, ("ndcg@10", "recall@10"))
        assert mean["ndcg@10"] == pytest.approx(v["metrics"]["ndcg@10"], abs=1e-6), v["name"]
    # the same inputs again (fresh, no resume) give the same numbers
    again = ab.Ablation(ds, base, va.one_at_a_time(base, axes), tmp_path / "out2", cache_root=tmp_path / "cache",
                        settings=ab.AblationSettings(metrics=("ndcg@10", "recall@10"), k=10)).run()
    strip = lambda res: [(v["name"], v["metrics"], v.get("vs_reference"), v.get("ci95")) for v in res["variants"]]  # noqa
    assert strip(again) == strip(result)
    assert again["reuse"]["chunks_embedded"] == 0 and again["reuse"]["indexes_built"] == 0


class Interrupting(Plugin):
    """A reranker that stops the whole ablation (like Ctrl-C) while ``armed``."""

    stage, name = "reranker", "test-interrupt"
    armed = True

    def process(self, query, hits):
        if Interrupting.armed:
            raise KeyboardInterrupt
        return hits[::-1]


@pytest.fixture
def interrupting():
    registry.register(Interrupting)
    Interrupting.armed = True
    yield Interrupting
    registry._classes.pop(("reranker", "test-interrupt"), None)


def test_interrupted_ablation_resumes_from_finished_variants(tiny_beir, tmp_path, interrupting):
    ds = ab.load_ablation_dataset(tiny_beir)
    base = load_config(None, BASE)

    def plan():
        return va.one_at_a_time(base, [va.parse_vary("retrieval=bm25", base),
                                       va.parse_vary("rerank=test-interrupt", base),
                                       va.parse_vary("retrieval=dense", base)])

    def ablation(out):
        return ab.Ablation(ds, base, plan(), out, cache_root=tmp_path / "cache",
                           settings=ab.AblationSettings(metrics=("ndcg@10",), k=10))

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        ablation(out).run()
    finished = sorted(p.name for p in (out / "variants").glob("*.json"))
    assert finished == ["base.json", "bm25.json"]  # written as each finished, before the interruption
    first = {p: (out / "variants" / p).read_text() for p in finished}
    interrupting.armed = False
    again = ablation(out)
    result = again.run()
    assert again.stats["variants_resumed"] == 2 and again.stats["variants_run"] == 2
    by = {v["name"]: v for v in result["variants"]}
    assert by["base"]["resumed"] and by["bm25"]["resumed"] and not by["dense"]["resumed"]
    assert by["rerankers=test-interrupt"]["status"] == "done"
    # reversing the ranking is a significant loss against the base
    assert by["rerankers=test-interrupt"]["vs_reference"]["ndcg@10"]["delta"] < 0
    assert {p: (out / "variants" / p).read_text() for p in finished} == first  # not recomputed
    # a changed setting invalidates the saved variants instead of reusing stale numbers
    other = ab.Ablation(ds, base, plan(), out, cache_root=tmp_path / "cache",
                        settings=ab.AblationSettings(metrics=("ndcg@10",), k=5))
    other.run()
    assert other.stats["variants_resumed"] == 0


class CountingInterrupt(Plugin):
    """A reranker that reverses the ranking and stops the ablation (like Ctrl-C) at its ``stop_at``-th query."""

    stage, name = "reranker", "test-count-interrupt"
    calls: list[str] = []
    stop_at: int | None = None

    def process(self, query, hits):
        if CountingInterrupt.stop_at is not None and len(CountingInterrupt.calls) == CountingInterrupt.stop_at:
            raise KeyboardInterrupt
        CountingInterrupt.calls.append(query)
        return hits[::-1]


def test_an_interrupted_variant_resumes_at_the_query_it_stopped_at(tiny_beir, tmp_path):
    registry.register(CountingInterrupt)
    try:
        ds = ab.load_ablation_dataset(tiny_beir)
        base = load_config(None, BASE)

        def ablation(out, **kw):
            plan = va.one_at_a_time(base, [va.parse_vary("rerank=test-count-interrupt", base)])
            return ab.Ablation(ds, base, plan, out, cache_root=tmp_path / "cache",
                               settings=ab.AblationSettings(metrics=("ndcg@10",), k=10), **kw)

        CountingInterrupt.calls, CountingInterrupt.stop_at = [], 3
        out = tmp_path / "out"
        with pytest.raises(KeyboardInterrupt):
            ablation(out).run()
        (log,) = (out / "variants").glob("*.queries.jsonl")  # the base (no reranker) finished before it
        assert len(log.read_text().splitlines()) == 1 + 3  # header + the three finished queries
        with log.open("a") as fh:
            fh.write('{"qid": "q4", "run": {"resto')  # torn by a kill mid-write: ignored
        CountingInterrupt.calls, CountingInterrupt.stop_at = [], None
        again = ablation(out)
        resumed = again.run()
        assert again.stats["queries_resumed"] == 3
        assert len(CountingInterrupt.calls) == len(QUERIES) - 3  # only the unfinished queries ran
        assert not log.exists() and log.with_name(log.name.replace(".queries.jsonl", ".json")).is_file()
        CountingInterrupt.calls = []
        whole = ablation(tmp_path / "whole").run()  # the same variant in one go gives the same numbers
        assert len(CountingInterrupt.calls) == len(QUERIES)
        pick = lambda res: [(v["name"], v["metrics"], v.get("per_query")) for v in res["variants"]]  # noqa: E731
        assert pick(resumed) == pick(whole)
        # a log left by another configuration is not trusted: --fresh (or a changed setting) recomputes
        CountingInterrupt.calls, CountingInterrupt.stop_at = [], 2
        with pytest.raises(KeyboardInterrupt):
            ablation(tmp_path / "third").run()
        CountingInterrupt.calls, CountingInterrupt.stop_at = [], None
        fresh = ablation(tmp_path / "third", fresh=True)
        fresh.run()
        assert fresh.stats["queries_resumed"] == 0 and len(CountingInterrupt.calls) == len(QUERIES)
    finally:
        registry._classes.pop(("reranker", "test-count-interrupt"), None)


class Refusing(Plugin):
    """A reranker that cannot run (as a missing model or key would): the variant is skipped at its first query."""

    stage, name = "reranker", "test-refuses"

    def process(self, query, hits):
        raise PluginError("reranker 'test-refuses': not configured")


def test_a_variant_skipped_at_its_first_query_leaves_no_query_log(tiny_beir, tmp_path):
    registry.register(Refusing)
    try:
        ds = ab.load_ablation_dataset(tiny_beir)
        base = load_config(None, BASE)
        plan = va.one_at_a_time(base, [va.parse_vary("rerank=test-refuses", base)])
        result = ab.Ablation(ds, base, plan, tmp_path / "out", cache_root=tmp_path / "cache",
                             settings=ab.AblationSettings(metrics=("ndcg@10",), k=10)).run()
        by = {v["name"]: v for v in result["variants"]}
        assert by["rerankers=test-refuses"]["status"] == "skipped"
        assert "not configured" in by["rerankers=test-refuses"]["reason"]
        assert not list((tmp_path / "out" / "variants").glob("*.queries.jsonl"))
    finally:
        registry._classes.pop(("reranker", "test-refuses"), None)


def test_ladder_lists_unavailable_steps_as_skipped_and_builds_on_the_last_step_that_ran(tiny_beir, tmp_path):
    ds = ab.load_ablation_dataset(tiny_beir)
    base = load_config(None, BASE)
    steps = va.ladder(rerank={"name": "llm", "depth": 10, "use_generator": True}, expand={"name": "no-such-transform"})
    result = ab.Ablation(ds, base, steps, tmp_path / "out", cache_root=tmp_path / "cache",
                         settings=ab.AblationSettings(metrics=("ndcg@10",), k=10)).run()
    by = {v["name"]: v for v in result["variants"]}
    assert [v["name"] for v in result["variants"]] == ["bm25", "dense", "hybrid-rrf", "hybrid-minmax", "+rerank",
                                                        "+rules", "+expand"]
    for name in ("bm25", "dense", "hybrid-rrf", "hybrid-minmax", "+rules"):
        assert by[name]["status"] == "done", by[name]
    # the llm reranker is asked to score with the generator's LLM, and the default (extractive) generator has none
    assert by["+rerank"]["status"] == "skipped" and "llm" in by["+rerank"]["reason"].lower()
    assert by["+expand"]["status"] == "skipped"
    assert "unknown transform plugin 'no-such-transform'" in by["+expand"]["reason"]
    assert by["+rules"]["reference"] == "hybrid-rrf"  # the skipped rerank step hands over its own reference
    assert by["dense"]["reference"] == "bm25" and "vs_reference" in by["dense"]


def test_answer_metrics_with_the_extractive_generator(tiny_beir, tmp_path):
    ds = ab.load_ablation_dataset(tiny_beir)
    base = load_config(None, BASE)
    variants = va.one_at_a_time(base, [va.parse_vary("retrieval=bm25,hybrid", base)])
    result = ab.Ablation(ds, base, variants, tmp_path / "out", cache_root=tmp_path / "cache",
                         settings=ab.AblationSettings(metrics=("ndcg@10",), k=10, answers=True)).run()
    # the answer metrics `ragkit eval --answers` reports, less the judge-only ones (no judge here)
    assert result["settings"]["metrics"] == ["ndcg@10", "answer_cites_gold", "answer_token_f1", "context_precision",
                                             "context_recall"]
    # hybrid is the default mode: that value is the base pipeline itself, not run twice
    assert result["variants"][2]["status"] == "skipped" and result["variants"][2]["reason"] == "same pipeline as 'base'"
    for v in result["variants"][:2]:
        # the reference answers are the gold documents' text, which the extractive answer quotes from
        assert v["metrics"]["answer_cites_gold"] >= 0.5 and v["metrics"]["answer_token_f1"] > 0.2
        assert v["metrics"]["context_recall"] >= 0.5  # the gold text is among the packed sources
        assert v["latency_ms"]["generate"]["p50"] > 0
    assert "answer_cites_gold" in result["variants"][1]["vs_reference"]


def test_query_groups_by_type_else_by_shared_tags():
    from ragkit.evaluate.datasets import Query

    typed = [Query("a", "x", {}, {"type": "t1", "tags": ["k"]}), Query("b", "y", {}, {"type": "t2"})]
    assert ab.query_groups(typed) == {"type:t1": [0], "type:t2": [1]}
    tagged = [Query(str(i), "x", {}, {"tags": ["common", f"own{i}"]}) for i in range(4)]
    assert ab.query_groups(tagged) == {"tag:common": [0, 1, 2, 3]}  # one-off tags are left out


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--enable-logging=stderr", "--v=0"]


def test_cli_report_opens_in_headless_chromium_with_its_plots(tiny_beir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("headless Chromium is needed for the report test: apt-get install -y chromium (.ci/run does)")
    out = tmp_path / "report"
    # in-process (the CLI's own subprocess tests cover `python -m ragkit`; this saves a second model load)
    from typer.testing import CliRunner

    from ragkit.cli import app

    args = ["ablate", "--dataset", tiny_beir, "--set", "chunker.name=document", "--vary", "retrieval=bm25,dense",
            "--vary", "fusion=minmax", "--k", "10", "--metrics", "ndcg@10,recall@10", "--out", out,
            "--cache-dir", tmp_path / "cache"]
    proc = CliRunner().invoke(app, [str(a) for a in args])
    assert proc.exit_code == 0, proc.output
    assert "report:" in proc.output and "bm25" in proc.output
    # stderr is not a terminal here: progress comes as plain lines (the bar would draw nothing in a log)
    plain = [line for line in proc.stderr.splitlines() if line.startswith("ablate: ")]
    assert plain[0] == "ablate: variant 1/4 base" and "ablate: variant 4/4 fusion=minmax" in plain
    assert any(line.startswith("ablate: dense finished (") for line in plain)
    assert any(" post 8/8 (" in line for line in plain), plain
    for name in ("report.md", "report.html", "results.json", "plots/ndcg_10.png", "plots/pareto.png",
                 "plots/by_type.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "results.json").read_text())
    assert summary["schema"] == ab.SCHEMA and [v["name"] for v in summary["variants"]] == [
        "base", "bm25", "dense", "fusion=minmax"]
    md = (out / "report.md").read_text()
    assert "![ndcg@10 per variant" in md and "| bm25" in md and "type:factoid" in md
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3 and "<script" not in html

    profile = tmp_path / "profile"
    shot = tmp_path / "shot.png"
    run = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,2600",
                          f"--screenshot={shot}", (out / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    console = [line for line in run.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.stdout.count("<img") == 3 and "<table>" in dom.stdout
    # the screenshot shows the plots: their bar / front colours are on the page, which has none of them itself
    import matplotlib.image as mpimg
    import numpy as np

    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int).reshape(-1, 3)
    def share(rgb):  # noqa: E306
        return float(np.mean(np.abs(pixels - np.array(rgb)).sum(axis=1) < 30))
    assert share((0x15, 0x65, 0xc0)) > 0.0005  # the reference bar (blue) of the metric plot
    assert share((0xef, 0x6c, 0x00)) > 0.00005  # the Pareto front (orange)
