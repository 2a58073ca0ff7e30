"""Answer metrics: claims, reference-based context precision/recall, the corrupted-answer separation with a real
local judge, and `ragkit eval --answers` end to end."""

from __future__ import annotations

import json
import statistics
from collections import Counter

from ragkit.evaluate.answers import ANSWER_METRICS, AnswerScorer, parse_questions, sample_queries, skipped_count, \
    split_claims, token_f1
from ragkit.evaluate.judge import FailureLog, Judge

from ..conftest import ROOT, read_jsonl
from ..test_cli import ragkit


def test_claims_are_sentences_without_citation_markers():
    assert split_claims("Keys rotate daily [1]. The old key works for 24 hours [1, 2]!\nOk. See the audit log [3].") \
        == ["Keys rotate daily.", "The old key works for 24 hours!", "See the audit log."]
    assert split_claims("") == [] and split_claims("Yes.") == []
    assert parse_questions("1. How do keys rotate?\n- What is kept?\nHere are questions:\nQ3: Why?") == \
        ["How do keys rotate?", "What is kept?"]


def test_context_precision_and_recall_with_references(embedder):
    scorer = AnswerScorer(None, embedder.embed, FailureLog(), ("context_precision", "context_recall"))
    refs = ["Invitations are valid for 7 days. An expired invitation can be resent."]
    noise, half, full = "Dashboards hold at most 40 panels.", "Invitations are valid for 7 days.", refs[0]
    p, r = scorer.context_scores([noise, half], refs)
    assert r.value == 0.5 and p.value == 0.5  # relevant at rank 2 only: AP = (1/2) / 1
    p, r = scorer.context_scores([full, noise], refs)
    assert r.value == 1.0 and p.value == 1.0
    p, r = scorer.context_scores([noise], refs)
    assert r.value == 0.0 and p.value == 0.0
    p, r = scorer.context_scores([full], [])
    assert p.value is None and r.value is None and scorer.skipped  # no references: counted, not scored as 0


def test_limit_is_a_seeded_sample_in_dataset_order():
    qs = list(range(100))
    a, b = sample_queries(qs, 10, 0), sample_queries(qs, 10, 0)
    assert a == b == sorted(a) and len(set(a)) == 10 and a != qs[:10]
    assert sample_queries(qs, 10, 1) != a and sample_queries(qs, 10, None) == qs[:10]
    assert sample_queries(qs, None) == qs


def test_supported_answers_score_higher_than_corrupted_ones(qwen_llm, embedder):
    """A handful of eval-set pairs with the Qwen 0.5B judge (the validity benchmark does >= 100 with both models)."""
    from judge_validity import corrupt_negation, corrupt_number

    rows = read_jsonl(ROOT / "eval_sets" / "beacon" / "qa.jsonl")[:4]
    scorer = AnswerScorer(Judge(qwen_llm), embedder.embed, FailureLog(), ("faithfulness",))
    supported, corrupted = [], []
    for i, row in enumerate(rows):
        ctx = row["reference_contexts"]
        supported.append(scorer.faithfulness(row["id"], row["reference_answer"], ctx).value)
        bad = [corrupt_number(row["reference_answer"], " ".join(ctx), None), corrupt_negation(row["reference_answer"]),
               rows[(i + 2) % len(rows)]["reference_answer"]]
        corrupted += [scorer.faithfulness(row["id"], b, ctx).value for b in bad if b]
    assert scorer.failures.total == 0
    assert statistics.fmean(supported) > statistics.fmean(corrupted)


def _qa_dataset(root):
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "101.txt").write_text("The incubation period of the virus is five days on average. "
                                           "Most patients show symptoms within two weeks.")
    (root / "docs" / "102.txt").write_text("Masks reduce transmission in crowded indoor spaces.")
    rows = [{"id": "a", "question": "What is the average incubation period?", "reference_answer": "five days",
             "reference_contexts": ["The incubation period of the virus is five days on average."], "doc_ids": ["101"]},
            {"id": "b", "question": "Do masks reduce transmission indoors?", "reference_answer": "yes",
             "reference_contexts": ["Masks reduce transmission in crowded indoor spaces."], "doc_ids": ["102"]}]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_cli_no_judge_is_a_one_line_error(tmp_path):
    proc = ragkit("eval", "--dataset", _qa_dataset(tmp_path / "qa"), "--answers", check=False)
    assert proc.returncode == 2
    line, = proc.stderr.strip().splitlines()
    assert "faithfulness, answer_relevance need a judge" in line and "--judge local" in line


def test_cli_answers_with_a_local_judge_twice(tmp_path, smollm2_path):
    ds = _qa_dataset(tmp_path / "qa")
    args = ("eval", "--dataset", ds, "--answers", "--judge", f"local:{smollm2_path}", "--cache-dir", tmp_path / "c",
            "--k", "5", "--limit", "1", "--json")
    first = json.loads(ragkit(*args, "--out", tmp_path / "r.json", "--markdown", tmp_path / "r.md").stdout)
    am = first["answer_metrics"]
    assert set(am) == set(ANSWER_METRICS)
    for m, a in am.items():  # every query is either scored, a counted judge failure, or a counted skip
        assert a["queries"] == 1 and a["n"] + a["failures"] + a["skipped"] >= 1, (m, a)
    assert am["context_recall"]["mean"] == 1.0
    assert first["judge"]["calls"] > 0 and first["judge"]["cache_hits"] == 0
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert rows[0]["answer"] and set(rows[0]["answer_metrics"]) == set(am)
    assert "| faithfulness |" in (tmp_path / "r.md").read_text()
    second = json.loads(ragkit(*args).stdout)
    assert second["judge"]["calls"] == 0 and second["judge"]["cache_hits"] == first["judge"]["calls"]
    assert second["answer_metrics"] == am


def test_token_f1_and_skip_reasons_per_metric():
    assert token_f1("Five days, on average.", "five days") == 2 * (2 / 4) * 1.0 / (2 / 4 + 1.0)
    assert token_f1("", "five days") == 0.0 and token_f1("nothing shared", "five days") == 0.0
    skipped = Counter({"context_precision/recall: no reference contexts": 2, "answer_relevance: answer has no "
                       "claims": 1, "answer_token_f1: no reference answer": 3})
    assert skipped_count(skipped, "context_recall") == skipped_count(skipped, "context_precision") == 2
    assert skipped_count(skipped, "answer_relevance") == 1 and skipped_count(skipped, "answer_token_f1") == 3
    assert skipped_count(skipped, "answer_cites_gold") == 0


def test_eval_answers_report_the_gold_metrics_ablate_reports(tmp_path):
    """`ragkit eval --answers` scores with the same function as `ragkit ablate --answers`: gold citations (the QA
    set names documents by stem, the index by file name) and token F1, besides the reference-based metrics."""
    from ragkit.evaluate.runner import add_answer_metrics, dataset_engine, evaluate_retrieval, load_dataset

    ds = load_dataset(_qa_dataset(tmp_path / "qa"))
    eng, _ = dataset_engine(ds, None, ["chunker.name=document"], tmp_path / "cache")
    with eng:
        report = evaluate_retrieval(eng, ds, k=5)
        wanted = ("answer_cites_gold", "answer_token_f1", "context_precision", "context_recall")
        add_answer_metrics(report, eng, ds, metrics=wanted)
    am = report.answer_metrics
    assert list(am) == list(wanted)
    assert am["answer_cites_gold"]["mean"] == 1.0 and am["answer_cites_gold"]["n"] == 2  # "101.txt" cites "101"
    assert am["answer_token_f1"]["n"] == 2 and am["answer_token_f1"]["mean"] > 0
    assert am["context_recall"]["mean"] == 1.0
    row = report.rows[0]
    assert row["answer_details"]["answer_cites_gold"]["cited"] and set(row["answer_metrics"]) == set(wanted)


def test_cli_ablate_judge_options_need_answers(tmp_path):
    for extra in (["--judge", "local"], ["--answer-metrics", "faithfulness"]):
        proc = ragkit("ablate", "--dataset", tmp_path, "--vary", "retrieval=bm25,dense", *extra, check=False)
        assert proc.returncode == 2
        line, = proc.stderr.strip().splitlines()
        assert extra[0] in line and "add --answers" in line
