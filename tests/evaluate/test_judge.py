"""The judge: explicit configuration only, disk cache (a re-run makes no LLM call), failures counted per kind."""

from __future__ import annotations

import math

import pytest

from ragkit.errors import ConfigError
from ragkit.evaluate import answers
from ragkit.evaluate.answers import AnswerScorer, require_judge
from ragkit.evaluate.judge import FailureLog, Judge, JudgeCache, TooManyFailures, make_judge, make_judge_llm

from ..conftest import free_port

CONTEXT = ["Revocation takes effect within 60 seconds in every region. A revoked key cannot be restored.",
           "A dashboard can hold at most 40 panels."]
ANSWER = "Revocation takes effect within 60 seconds [1]. A revoked key cannot be restored [1]."


def test_judge_specs_are_explicit():
    with pytest.raises(ConfigError, match="no judge configured: --judge local"):
        make_judge_llm("")
    with pytest.raises(ConfigError, match="--judge-model"):
        make_judge_llm("openai:http://127.0.0.1:9/v1")
    with pytest.raises(ConfigError, match="unknown judge"):
        make_judge_llm("gpt4")
    with pytest.raises(ConfigError, match="faithfulness, answer_relevance need a judge"):
        require_judge(("faithfulness", "answer_relevance", "context_recall"), None)
    require_judge(("context_precision", "context_recall"), None)  # reference metrics need none
    assert make_judge_llm("local").model == "qwen1.5b" and make_judge_llm("local:smollm2").model == "smollm2"


def test_one_factory_builds_every_judge(tmp_path):
    assert make_judge(None) is None and make_judge("") is None  # no spec, no judge
    judge = make_judge("local:smollm2", cache_dir=tmp_path, temperature=0.5, timeout=30)
    assert isinstance(judge, Judge) and judge.llm.model == "smollm2"
    assert judge.temperature == 0.5 and judge.timeout == 30
    assert judge.cache.path == tmp_path / "judge-cache.sqlite"
    with pytest.raises(ConfigError, match="unknown"):
        make_judge("local", backend="bogus", cache_dir=tmp_path)
    with pytest.raises(ConfigError, match="OpenAI-compatible"):
        make_judge("local", backend="ragas", cache_dir=tmp_path)


def test_cache_makes_a_rerun_free_and_identical(small_llm, embedder, tmp_path):
    cache = JudgeCache(tmp_path / "judge.sqlite")
    first = Judge(small_llm, cache)
    a = AnswerScorer(first, embedder.embed, FailureLog(), n_questions=1).score("q1", "How fast is a key revoked?", ANSWER, CONTEXT,
                                                                CONTEXT[:1])
    assert first.calls == 3 and first.hits == 0  # two claims + one question-writing call
    assert 0.0 <= a["faithfulness"].value <= 1.0 and len(a["faithfulness"].detail["claims"]) == 2
    again = Judge(small_llm, JudgeCache(tmp_path / "judge.sqlite"))  # a new process would open the same file
    b = AnswerScorer(again, embedder.embed, FailureLog(), n_questions=1).score("q1", "How fast is a key revoked?", ANSWER, CONTEXT,
                                                                CONTEXT[:1])
    assert again.calls == 0 and again.hits == 3
    assert {m: v.value for m, v in a.items()} == {m: v.value for m, v in b.items()}
    # the key holds the prompt version: a new prompt is a cache miss, not a stale answer
    other = Judge(small_llm, cache)
    other.yes_probability("faithfulness", "faith-v999", [{"role": "user", "content": "Is 2 > 1? yes or no"}])
    assert other.calls == 1


def test_timeouts_are_counted_per_metric_and_never_averaged(small_llm, embedder):
    failures = FailureLog()
    scorer = AnswerScorer(Judge(small_llm, timeout=1e-9), embedder.embed, failures,
                          ("faithfulness", "context_recall"))
    out = scorer.score("q1", "How fast is a key revoked?", ANSWER, CONTEXT, CONTEXT[:1])
    assert out["faithfulness"].value is None
    assert dict(failures.counts["faithfulness"]) == {"timeout": 2} and failures.total == 2
    assert out["context_recall"].value == 1.0  # reference metrics do not depend on the judge
    strict = AnswerScorer(Judge(small_llm, timeout=1e-9), embedder.embed, FailureLog(max_failures=1),
                          ("faithfulness",))
    with pytest.raises(TooManyFailures, match="exceeded --max-failures 1 .*faithfulness: timeout=2"):
        strict.score("q1", "How fast is a key revoked?", ANSWER, CONTEXT, CONTEXT[:1])


def test_unreachable_judge_is_an_error_kind(embedder):
    llm = make_judge_llm(f"openai:http://127.0.0.1:{free_port()}/v1", "none", timeout=2)
    llm.max_retries = 0
    failures = FailureLog()
    out = AnswerScorer(Judge(llm), embedder.embed, failures, ("faithfulness",)).score("q", "q?", ANSWER, CONTEXT, [])
    assert out["faithfulness"].value is None and dict(failures.counts["faithfulness"]) == {"error": 2}
    assert "cannot connect" in failures.examples[0]["detail"]


def test_unparsable_reply_falls_back_to_similarity_and_still_counts(small_llm, embedder, monkeypatch):
    # a prompt that is no yes/no question: SmolLM2's first token is neither yes nor no
    monkeypatch.setattr(answers, "FAITHFULNESS_USER", "Context: {context}\nStatement: {claim}\n"
                                                      "Translate the statement into French.")
    failures = FailureLog()
    mv = AnswerScorer(Judge(small_llm), embedder.embed, failures, ("faithfulness",)).faithfulness(
        "q", "Revocation takes effect within 60 seconds in every region.", CONTEXT)
    assert dict(failures.counts["faithfulness"]) == {"unparsable": 1}
    claim = mv.detail["claims"][0]
    assert claim["source"] == "embedding-fallback" and claim["score"] > 0.9  # the claim is a context sentence
    assert math.isfinite(mv.value)


def test_openai_compatible_judge_against_a_real_llama_server(llama_server, embedder, tmp_path):
    judge = Judge(make_judge_llm(f"openai:{llama_server}", "smollm2"), JudgeCache(tmp_path / "j.sqlite"))
    failures = FailureLog()
    mv = AnswerScorer(judge, embedder.embed, failures, ("faithfulness",)).faithfulness("q", ANSWER, CONTEXT)
    assert judge.calls == 2 and judge.model_id == "smollm2"
    scored = [c for c in mv.detail["claims"] if c["source"] == "judge"]
    assert len(scored) + failures.of("faithfulness") == 2  # every claim is either judged or counted
    assert all(0.0 <= c["score"] <= 1.0 for c in scored)
