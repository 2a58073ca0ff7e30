"""``--judge-backend ragas``: faithfulness and answer relevance computed by ragas 0.4.3 (extra ``ragkit[ragas]``).

ragas talks to the judge through LangChain's ``ChatOpenAI``, so the judge must be an OpenAI-compatible endpoint
(``--judge openai:http://127.0.0.1:8080/v1 --judge-model NAME``, e.g. ``python -m llama_cpp.server``); its
embeddings are the engine's own MiniLM model. Nothing falls back to a hosted model: the LLM and the embeddings are
always passed explicitly, and ragas' usage analytics are switched off (``RAGAS_DO_NOT_TRACK``). LLM replies are
cached by ragas' disk cache under the eval cache directory. ragas turns a judge failure into NaN; every NaN is
counted per metric as a failure (kind ``nan``), never averaged. Context precision / recall stay ragkit's
reference-based ones (no judge).
"""

from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError, PluginError

RAGAS_METRICS = {"faithfulness": "faithfulness", "answer_relevance": "answer_relevancy"}


class RagasJudge:
    def __init__(self, spec: str, model: str = "", *, timeout: float | None = None,
                 cache_dir: str | Path | None = None, max_tokens: int = 1024) -> None:
        kind, _, base_url = spec.partition(":")
        if kind != "openai" or not base_url:
            raise ConfigError(f"--judge-backend ragas needs an OpenAI-compatible judge: --judge openai:URL "
                              f"--judge-model NAME (got --judge {spec!r})")
        if not model:
            raise ConfigError(f"--judge {spec}: name the model with --judge-model")
        self.base_url, self.model, self.timeout = base_url, model, timeout or 180
        self.cache_dir = cache_dir
        self.max_tokens = max_tokens  # a cap per judge reply: small models can ramble until the window is full
        self.calls = self.hits = 0
        self.seconds = 0.0

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "backend": "ragas", "base_url": self.base_url, "temperature": 0.0}

    def _ragas(self, embed):
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from langchain_core.embeddings import Embeddings
                from langchain_openai import ChatOpenAI
                from ragas.embeddings import LangchainEmbeddingsWrapper
                from ragas.llms import LangchainLLMWrapper
                from ragas.metrics import Faithfulness, ResponseRelevancy
                from ragas.run_config import RunConfig
        except ImportError as exc:
            raise PluginError(f"--judge-backend ragas needs ragas: pip install 'ragkit[ragas]' ({exc})") from None

        class MiniLM(Embeddings):  # the engine's embedder, as LangChain embeddings
            def embed_documents(self, texts):
                return [v.tolist() for v in embed(list(texts))]

            def embed_query(self, text):
                return embed([text])[0].tolist()

        cache = None
        if self.cache_dir:
            from ragas.cache import DiskCacheBackend

            cache = DiskCacheBackend(str(Path(self.cache_dir) / "ragas-cache"))
        run = RunConfig(timeout=int(self.timeout), max_retries=1, max_workers=1)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            llm = LangchainLLMWrapper(ChatOpenAI(base_url=self.base_url, model=self.model, api_key="none",
                                                 temperature=0.0, timeout=self.timeout, max_retries=1,
                                                 max_tokens=self.max_tokens),
                                      run_config=run, cache=cache)
            emb = LangchainEmbeddingsWrapper(MiniLM(), run_config=run)
        metrics = {"faithfulness": Faithfulness(llm=llm),
                   "answer_relevance": ResponseRelevancy(llm=llm, embeddings=emb, strictness=1)}
        return metrics, llm, emb, run

    def evaluate(self, report, engine, dataset, *, metrics: tuple[str, ...], mode: str | None = None,
                 max_failures: int | None = None, progress=None):
        import time

        from ragkit.evaluate.answers import JUDGE_METRICS
        from ragkit.evaluate.judge import FailureLog
        from ragkit.evaluate.runner import add_answer_metrics

        # answers, and the reference-based metrics, the native way (no judge)
        ref = tuple(m for m in metrics if m not in JUDGE_METRICS)
        add_answer_metrics(report, engine, dataset, judge=None, metrics=ref, mode=mode, progress=progress)
        wanted = [m for m in metrics if m in JUDGE_METRICS]
        if not wanted:
            return report
        from ragas import EvaluationDataset, SingleTurnSample, evaluate

        engine.embedder.warm_up()
        ragas_metrics, llm, emb, run = self._ragas(engine.embedder.embed)
        by_qid = {q.qid: q for q in dataset.queries}
        samples = []
        for row in report.rows:
            q = by_qid[row["qid"]]
            ans = engine.query(q.text, mode=mode)
            samples.append(SingleTurnSample(user_input=q.text, response=ans.text,
                                            retrieved_contexts=[h.chunk.text for h in ans.sources] or [""],
                                            reference=q.extra.get("reference_answer") or None))
        t = time.perf_counter()
        result = evaluate(EvaluationDataset(samples=samples), metrics=[ragas_metrics[m] for m in wanted], llm=llm,
                          embeddings=emb, run_config=run, show_progress=False, raise_exceptions=False)
        self.seconds = time.perf_counter() - t
        failures = FailureLog(max_failures)
        for m in wanted:
            vals = []
            for row, scores in zip(report.rows, result.scores):
                v = scores.get(RAGAS_METRICS[m])
                ok = v is not None and isinstance(v, (int, float)) and math.isfinite(v)
                row.setdefault("answer_metrics", {})[m] = round(float(v), 4) if ok else None
                if ok:
                    vals.append(float(v))
                else:
                    failures.record(m, "nan", row["qid"], "ragas returned no score (judge output unusable)")
            report.answer_metrics[m] = {"mean": statistics.fmean(vals) if vals else None, "n": len(vals),
                                        "queries": len(report.rows), "failures": failures.of(m),
                                        "failure_kinds": dict(failures.counts.get(m, {})), "skipped": 0}
        report.judge = {**self.describe(), "calls": None, "cache_hits": None, "seconds": round(self.seconds, 2),
                        "failures": failures.to_dict()}
        return report
