"""--judge-backend ragas: ragas 0.4.3 against a real llama.cpp server (SmolLM2, one sample: code path, not quality).

SmolLM2 often writes output ragas cannot parse; then ragas gives NaN, which must show up as a counted failure."""

from __future__ import annotations

import json

import pytest

from ragkit.errors import ConfigError
from ragkit.evaluate.ragas_judge import RagasJudge
from ragkit.evaluate.runner import dataset_engine, evaluate_retrieval, load_dataset

from .test_answers import _qa_dataset


def test_ragas_needs_an_openai_compatible_judge():
    with pytest.raises(ConfigError, match="needs an OpenAI-compatible judge"):
        RagasJudge("local")
    with pytest.raises(ConfigError, match="--judge-model"):
        RagasJudge("openai:http://127.0.0.1:9/v1")


@pytest.mark.slow  # ragas makes several JSON-producing calls per sample: minutes on a contended CPU
def test_ragas_scores_or_counts_every_sample(llama_server, tmp_path):
    pytest.importorskip("ragas", reason="ragas is in ragkit[dev]; install with pip install -e '.[dev]'")
    ds = load_dataset(_qa_dataset(tmp_path / "qa"))
    eng, _ = dataset_engine(ds, None, None, tmp_path / "cache")
    report = evaluate_retrieval(eng, ds, k=5, limit=1, metrics=("hit_rate@5",))
    judge = RagasJudge(f"openai:{llama_server}", "smollm2", timeout=120, cache_dir=tmp_path / "cache",
                       max_tokens=160)
    judge.evaluate(report, eng, ds, metrics=("faithfulness", "answer_relevance", "context_recall"))
    eng.close()
    am = report.answer_metrics
    for m in ("faithfulness", "answer_relevance"):
        assert am[m]["queries"] == 1 and am[m]["n"] + am[m]["failures"] == 1, am[m]
        v = report.rows[0]["answer_metrics"][m]
        assert (v is None) == (am[m]["failures"] == 1) and (v is None or 0.0 <= v <= 1.0)
    assert am["context_recall"]["n"] == 1 and report.judge["backend"] == "ragas"
    json.dumps(report.to_dict())  # the report stays serialisable
