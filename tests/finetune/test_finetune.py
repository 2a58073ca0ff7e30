"""ragkit finetune: filters, labelled data, metrics, and a tiny real end-to-end run (SmolLM2 writes the questions,
MiniLM is trained as a cross-encoder and as an adapted embedder, and both load where ragkit uses them)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ragkit.errors import RagkitError
from ragkit.finetune.data import Example, Passage, labelled_examples, read_examples, training_set
from ragkit.finetune.synth import SynthSettings, check_question, filter_reason, parse_questions
from ragkit.finetune.training import ranking_metrics

from ..conftest import ROOT, read_jsonl
from ..test_cli import ragkit

PASSAGE = "Open Settings > API keys and press Rotate next to the key. The previous key keeps working for 24 hours."


@pytest.mark.parametrize("question,reason", [
    ("Rotate keys?", "too-short"),
    ("The previous key keeps working for 24 hours?", "copied"),
    ("Is it true that the previous key keeps working for 24 hours?", "copied"),
    ("Settings menu rotation of keys and agents", "not-a-question"),
    ("How long does an old API key stay valid after rotation?", "duplicate"),
    ("Where do I go to rotate an API key?", None),
])
def test_text_filters(question, reason):
    seen = {"how long does an old api key stay valid after rotation"}
    assert filter_reason(question, PASSAGE, SynthSettings(), seen) == reason


def test_parse_questions_strips_list_markers():
    reply = "Here are the questions:\n1. What is X?\n- Why is Y?\nQ3: How is Z?\n\n4) Who is W?"
    assert parse_questions(reply, 3) == ["What is X?", "Why is Y?", "How is Z?"]


def test_round_trip_drops_a_question_whose_chunk_is_not_retrieved(mini_index):
    chunk = next(c for c in mini_index.reader().iter_chunks() if c.doc_id == "selfhosted/api-keys.md")
    s = SynthSettings(round_trip_k=1)
    reason, rank, _ = check_question(mini_index, "How many days are logs retained on the Enterprise plan?", chunk,
                                     s, set())
    assert (reason, rank) == ("round-trip", None)
    reason, rank, hits = check_question(mini_index, "Which flag disables the grace period on self-hosted servers?",
                                        chunk, s, set())
    assert (reason, rank) == (None, 1) and hits[0].chunk_id == chunk.chunk_id


def test_ranking_metrics_first_stage_and_scored():
    ex = Example("q", "question", [Passage("p", "gold", rank=3)],
                 [Passage("a", "x", rank=1), Passage("b", "y", rank=2)])
    assert ranking_metrics([ex], None) == {"mrr@10": round(1 / 3, 4), "ndcg@10": 0.5}
    assert ranking_metrics([ex], lambda q, texts: [1.0 if t == "gold" else 0.0 for t in texts])["mrr@10"] == 1.0
    # an unretrieved positive ties with nothing and ranks last
    ex.positives[0].rank = None
    assert ranking_metrics([ex], None)["mrr@10"] == round(1 / 3, 4)


def test_malformed_training_file_names_the_line(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"qid": "1", "query": "q", "positives": [{"id": "a", "text": "t"}]}) + "\n{oops\n")
    with pytest.raises(RagkitError, match=r"t.jsonl:2: not a training example"):
        read_examples(path)


def _tiny_beir(root):
    root.mkdir()
    docs = {"d1": ("Aspirin", "Aspirin reduces the risk of heart attack in adults with prior events."),
            "d2": ("Statins", "Statins lower LDL cholesterol and reduce cardiovascular mortality."),
            "d3": ("Vitamin D", "Vitamin D supplements did not prevent fractures in older adults."),
            "d4": ("Exercise", "Regular aerobic exercise lowers resting blood pressure."),
            "d5": ("Sleep", "Short sleep duration is associated with weight gain in children.")}
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": t, "text": x}) + "\n"
                                               for k, (t, x) in docs.items()))
    qs = {"1": "Does aspirin prevent heart attacks?", "2": "Do statins reduce deaths?",
          "3": "Does vitamin D prevent fractures?"}
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in qs.items()))
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n3\td3\t1\n")
    return root


def test_beir_train_split_with_mined_negatives(tmp_path):
    root = _tiny_beir(tmp_path / "beir")
    exs = labelled_examples(root, "train")
    assert [(e.qid, e.positives[0].doc_id) for e in exs] == [("1", "d1"), ("2", "d2")]
    assert exs[0].positives[0].text.startswith("Aspirin\n\nAspirin reduces")
    exs, notes = training_set([root], split="train", cache_dir=tmp_path / "cache", negatives=2)
    assert "hard negatives mined" in notes[0]
    for ex in exs:
        assert len(ex.negatives) == 2
        assert all(n.doc_id != ex.positives[0].doc_id and n.rank for n in ex.negatives)


def test_cli_refuses_the_test_split(tmp_path):
    root = _tiny_beir(tmp_path / "beir")
    proc = ragkit("finetune", "reranker", "--train", root, "--split", "test", "--out", tmp_path / "m", check=False)
    assert proc.returncode == 2 and "--split test" in proc.stderr


@pytest.mark.parametrize("args,message", [
    (["queries", "--index", "{tmp}/nowhere", "--out", "{tmp}/q.jsonl"], "no index here"),
    (["reranker", "--train", "{tmp}/missing.jsonl", "--out", "{tmp}/m"], "training data not found"),
    (["reranker", "--train", "{tmp}/t.jsonl", "--out", "{tmp}/m", "--loss", "hinge"], "loss 'hinge': unknown"),
    (["reranker", "--train", "{tmp}/t.jsonl", "--out", "{tmp}/m", "--base", "{tmp}/no-model"], "cannot load"),
    (["embedder", "--train", "{tmp}/t.jsonl", "--out", "{tmp}/m", "--batch-size", "1"], "--batch-size >= 2"),
])
def test_finetune_errors_are_one_line(tmp_path, args, message):
    rows = [{"qid": str(i), "query": f"question {i}?", "positives": [{"id": f"d{i}", "text": f"passage {i}"}],
             "negatives": [{"id": f"n{i}", "text": f"other {i}"}]} for i in range(3)]
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = ragkit("finetune", *[a.format(tmp=tmp_path) for a in args], check=False)
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_ablate_axes_for_finetuned_models():
    from ragkit.config import load_config
    from ragkit.evaluate.variants import axis_values

    base = load_config({"rerankers": [{"name": "cross-encoder", "model": "x", "depth": 50}, {"name": "rules"}]})
    (l0, o0), (l1, o1) = axis_values("rerank.model", "none,models/reranker", base)
    assert o0 == {"rerankers": [{"name": "rules"}]}
    assert o1["rerankers"][0] == {"name": "cross-encoder", "model": "models/reranker", "depth": 50}
    (_, e0), (_, e1) = axis_values("embedding.model", "base,models/embedder", base)
    assert e0 == {"embedder.model": "all-MiniLM-L6-v2"} and e1 == {"embedder.model": "models/embedder"}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, smollm2_path):
    """Index four Beacon guides, let SmolLM2 write questions, train both models for a few steps."""
    root = tmp_path_factory.mktemp("finetune")
    docs = root / "docs"
    docs.mkdir()
    for name in ("api-keys.md", "alert-rules.md", "dashboards.md", "sending-metrics.md"):
        shutil.copy(ROOT / "corpora" / "beacon" / "guides" / name, docs / name)
    ragkit("ingest", docs, "--index", root / "idx", "--json")
    synth = root / "synth.jsonl"
    first = json.loads(ragkit("finetune", "queries", "--index", root / "idx", "--out", synth, "--n", "4",
                              "--per-chunk", "2", "--llm", f"local:{smollm2_path}", "--json").stdout)
    second = json.loads(ragkit("finetune", "queries", "--index", root / "idx", "--out", synth, "--n", "8",
                               "--per-chunk", "2", "--llm", f"local:{smollm2_path}", "--json").stdout)
    rr = json.loads(ragkit("finetune", "reranker", "--train", synth, "--out", root / "rr", "--heldout", "0.25",
                           "--negatives", "3", "--json").stdout)
    emb = json.loads(ragkit("finetune", "embedder", "--train", synth, "--out", root / "emb", "--lora",
                            "--batch-size", "4", "--heldout", "0", "--json").stdout)
    return root, first, second, rr, emb


def test_synthetic_questions_are_resumable_and_carry_negatives(tiny_run):
    root, first, second, _, _ = tiny_run
    assert first["kept"] >= 4 and second["resumed_from"] == first["kept"] and second["kept"] >= 8
    progress = read_jsonl(root / "synth.jsonl.progress.jsonl")
    chunk_ids = [r["chunk_id"] for r in progress[1:]]
    assert len(chunk_ids) == len(set(chunk_ids))  # the second run skipped what the first had done
    rows = read_jsonl(root / "synth.jsonl")
    assert len(rows) == second["kept"] == sum(r["kept"] for r in progress[1:])
    for r in rows:
        (pos,) = r["positives"]
        assert pos["rank"] <= 20 and r["negatives"]
        assert all(n["doc_id"] != pos["doc_id"] for n in r["negatives"])
    # same settings but another seed cannot be mixed into the same file
    proc = ragkit("finetune", "queries", "--index", root / "idx", "--out", root / "synth.jsonl", "--n", "9",
                  "--seed", "1", "--llm", "local:smollm2", check=False)
    assert proc.returncode == 2 and "other settings" in proc.stderr
    # a file not written by this command is never appended to
    foreign = root / "notes.jsonl"
    foreign.write_text("my own notes\n")
    proc = ragkit("finetune", "queries", "--index", root / "idx", "--out", foreign, "--llm", "local:smollm2",
                  check=False)
    assert proc.returncode == 2 and "was not written by ragkit finetune queries" in proc.stderr
    assert foreign.read_text() == "my own notes\n"


def test_a_run_killed_mid_write_resumes_from_what_its_records_account_for(tiny_run, smollm2_path, tmp_path):
    root, _, second, _, _ = tiny_run
    out, side = tmp_path / "synth.jsonl", tmp_path / "synth.jsonl.progress.jsonl"
    shutil.copy(root / "synth.jsonl", out)
    shutil.copy(root / "synth.jsonl.progress.jsonl", side)
    good = out.read_bytes()
    # a kill after a chunk's examples were written but before its record, and one in the middle of a line
    with open(out, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(read_jsonl(out)[0]) + "\n" + '{"qid": "synth-x", "query": "What is')
    with open(side, "a", encoding="utf-8") as fh:
        fh.write('{"chunk_id": "x", "gener')
    again = json.loads(ragkit("finetune", "queries", "--index", root / "idx", "--out", out, "--n", "8",
                              "--per-chunk", "2", "--llm", f"local:{smollm2_path}", "--json").stdout)
    assert again["resumed_from"] == second["kept"] and again["chunks_processed"] == 0  # n = 8 was already met
    assert out.read_bytes() == good  # the unaccounted example and the torn line are gone
    assert len(read_examples(out)) == second["kept"]


def test_trained_reranker_loads_in_the_cross_encoder_plugin_and_changes_the_ranking(tiny_run):
    from ragkit import Engine

    root, _, _, card, _ = tiny_run
    assert card["kind"] == "reranker" and card["steps"] >= 1 and (root / "rr" / "loss.png").is_file()
    assert set(card["heldout"]) == {"first_stage", "trained"}
    # the card names the questions it trained on (what `ragkit tune` keeps out of selection): 75% of them here
    asked = {r["qid"] for r in read_jsonl(root / "synth.jsonl")}
    assert set(card["train_questions"]) < asked and len(card["train_questions"]) == card["train_examples"]
    plain = Engine.open(root / "idx")
    reranked = Engine.open(root / "idx", {"rerankers": [{"name": "cross-encoder", "model": str(root / "rr")}]})
    changed = 0
    for q in ("How do I create an API key?", "How do alert rules fire?", "Which metrics can I send?"):
        a = [h.chunk_id for h in plain.retrieve(q, k=10).hits]
        hits = reranked.retrieve(q, k=10).hits
        assert all("cross-encoder" in h.scores for h in hits)
        changed += a != [h.chunk_id for h in hits]
    plain.close()
    reranked.close()
    assert changed >= 1


def test_adapted_embedder_loads_and_reembeds_the_index(tiny_run):
    from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder

    root, _, _, _, card = tiny_run
    assert card["kind"] == "embedder" and card["method"].startswith("lora")
    assert card["trainable_parameters"] < card["total_parameters"] / 10
    assert set(card["train_questions"]) == {r["qid"] for r in read_jsonl(root / "synth.jsonl")}  # nothing held out
    assert (root / "emb" / "lora-adapter" / "adapter_config.json").is_file()
    base, tuned = SentenceTransformerEmbedder(), SentenceTransformerEmbedder(model=str(root / "emb"))
    texts = ["How do I rotate an API key?", "Dashboards show metrics over time."]
    a, b = base.embed(texts), tuned.embed(texts)
    assert a.shape == b.shape and np.abs(a - b).max() > 1e-4 and (a * b).sum(1).min() > 0.8
    assert tuned.model_id.startswith(str(root / "emb") + "@")
    rep = json.loads(ragkit("ingest", root / "docs", "--index", root / "idx", "--rebuild", "--set",
                            f"embedder.model={root / 'emb'}", "--json").stdout)
    assert rep["committed"] and rep["chunks_embedded"] == rep["chunks_total"]
    hits = json.loads(ragkit("query", "How do I create an API key?", "--index", root / "idx", "--no-answer",
                             "--mode", "dense", "--json").stdout)
    assert hits["sources"]


def test_model_id_follows_the_weights(tmp_path, tiny_run):
    from ragkit.embedding.sentence_transformers import SentenceTransformerEmbedder

    root = tiny_run[0]
    copy = tmp_path / "emb"
    shutil.copytree(root / "emb", copy)
    before = SentenceTransformerEmbedder(model=str(copy)).model_id
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # rewritten in place, as a retraining would
    assert SentenceTransformerEmbedder(model=str(copy)).model_id != before
