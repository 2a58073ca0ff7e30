"""Ablations: run named variants of a pipeline config on one dataset and compare each with its reference.

A variant is a named diff of the base config (any section, plugin or parameter). Work is shared wherever a
variant does not change it:

* one index per distinct index-shaping config (``chunker``, ``embedder``, ``sparse``, ``dense``), all of them
  embedding through ONE shared embedding cache, so a chunk text is embedded once whatever index it goes in;
* one first-stage run (transforms -> branches -> fusion, per query) per distinct (index, query-time retrieval
  config); variants that differ only after it (rerankers, filters, generator, ``retrieval.k``) reuse its hits;
* query vectors are memoised across every first-stage run;
* cross-encoder scores are memoised across every variant (:mod:`ragkit.rerank.score_cache`): a (question,
  passage) pair is scored once per model, whatever rerank depth, blend or first stage asks for it again; blending,
  depth and top_n are applied to the memoised raw scores. A pair served from memory charges the time scoring it
  took, so each variant's rerank latency is that of scoring its full depth (see ``take_charges``).

Each finished variant is written to ``<out>/variants/<name>.json`` at once, and its ranking to
``<out>/runs/<name>.trec.gz`` (a TREC run file); a re-run with the same inputs loads finished variants instead of
running them again (resume after an interruption).

Variants are planned in :mod:`ragkit.evaluate.variants`, each with a ``parent``: a variant's config is its
parent's config plus its own overrides, and it is compared with its parent (the *reference*). When a step is skipped (its plugin is not installed, or it
needs an LLM or model that is not configured) the next step builds on, and is compared with, the last step
that ran: that is how ``--ladder`` climbs one optimization at a time. With ``answers``, each variant's answers
are scored like ``ragkit eval --answers`` scores them (:func:`ragkit.evaluate.answers.score_answer`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.config import Config
from ragkit.embedding.query_cache import QueryVectorCache
from ragkit.errors import ConfigError, PluginError, RagkitError
from ragkit.evaluate import default_cache_root
from ragkit.evaluate.answers import AnswerScorer, check_answer_metrics, default_answer_metrics, require_judge, \
    score_answer
from ragkit.evaluate.datasets import Dataset, read_jsonl
from ragkit.evaluate.judge import FailureLog
from ragkit.evaluate.retrieval import DEFAULT_METRICS, check_metrics, evaluate_run
from ragkit.evaluate.runner import SHARED_EMBEDDINGS, corpus_fingerprint, dataset_engine, dataset_index_path, \
    index_shape, load_dataset
from ragkit.evaluate.runs import doc_key_for, doc_run, for_ranx, write_trec_run
from ragkit.evaluate.stats import DEFAULT_SEED, compare, mean_ci, percentile
from ragkit.evaluate.variants import Variant, apply_overrides, check_plugins, config_hash, dedupe_names, slug
from ragkit.progress import ProgressLog
from ragkit.rerank.score_cache import RerankScoreCache
from ragkit.retrieve.pipeline import Retrieval

SCHEMA = "ragkit.ablate/1"


# --- dataset helpers --------------------------------------------------------------------------------------------

def attach_types(dataset: Dataset) -> None:
    """A BEIR-layout eval set with a qa.jsonl beside it (eval_sets/beacon): take each query's type/tags."""
    if any("type" in q.extra or "tags" in q.extra for q in dataset.queries):
        return
    qa = dataset.root / "qa.jsonl"
    if not qa.is_file():
        return
    extra = {str(r.get("id")): r for r in read_jsonl(qa)}
    for q in dataset.queries:
        row = extra.get(q.qid)
        if row:
            for key in ("type", "tags", "reference_answer"):
                if key in row:
                    q.extra.setdefault(key, row[key])


def query_groups(queries, min_size: int = 3) -> dict[str, list[int]]:
    """Query positions by ``type`` (``type:<t>``); without types, by ``tags`` (``tag:<t>``, tags shared by at
    least ``min_size`` queries, since free-form tags are often unique)."""
    groups: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        t = q.extra.get("type")
        if t:
            groups.setdefault(f"type:{t}", []).append(i)
    if not groups:
        for i, q in enumerate(queries):
            tags = q.extra.get("tags") or []
            for tag in [tags] if isinstance(tags, str) else tags:
                groups.setdefault(f"tag:{tag}", []).append(i)
        groups = {g: idx for g, idx in groups.items() if len(idx) >= min_size}
    return dict(sorted(groups.items()))


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# --- running ----------------------------------------------------------------------------------------------------

class VariantSkipped(Exception):
    pass


@dataclass
class AblationSettings:
    metrics: tuple[str, ...] = DEFAULT_METRICS
    primary: str | None = None
    k: int = 100
    limit: int | None = None
    answers: bool = False
    answer_k: int = 5
    answer_metrics: tuple[str, ...] | None = None  # None: every answer metric the judge (or its absence) allows
    max_failures: int | None = None  # judge failures allowed per variant (None: unlimited, counted)
    seed: int = DEFAULT_SEED
    alpha: float = 0.05
    resamples: int = 10_000
    split: str = "test"

    def __post_init__(self) -> None:
        self.metrics = tuple(self.metrics)
        check_metrics(self.metrics)
        if self.primary is None:
            self.primary = self.metrics[0]
        if self.primary not in self.metrics:
            raise ConfigError(f"primary metric {self.primary!r} is not among the metrics ({', '.join(self.metrics)})")


Progress = Callable[[str, str, int, int], None]  # (variant, phase, done, total)


class QueryLog:
    """Per-query progress of a running variant, so an interrupted slow variant (an LLM reranker: hours on
    SciFact) resumes at the query it stopped at (a :class:`ProgressLog` headed by the variant's fingerprint). A
    log written for another fingerprint (a changed config or dataset) is ignored and replaced; a torn last line
    (killed mid-write) is dropped. Removed once the variant's result is saved."""

    def __init__(self, path: Path, fingerprint: str, *, fresh: bool = False) -> None:
        self._log = ProgressLog(path, {"fingerprint": fingerprint})
        if fresh:
            self._log.remove()

    def load(self) -> dict[str, dict[str, Any]]:
        """The records of finished queries (by query id). The file is only (re)written once a query finishes,
        so a variant skipped at its first query leaves none behind."""
        return {rec.pop("qid"): rec for rec in self._log.read() if isinstance(rec.get("qid"), str)}

    def add(self, qid: str, record: dict[str, Any]) -> None:
        self._log.add({"qid": qid, **record})

    def close(self) -> None:
        self._log.close()

    def remove(self) -> None:
        self._log.remove()


class Ablation:
    def __init__(self, dataset: Dataset, base: Config, variants: list[Variant], out: Path, *,
                 settings: AblationSettings | None = None, cache_root: Path | None = None,
                 progress: Progress | None = None, fresh: bool = False, judge=None,
                 index: str | Path | None = None) -> None:
        """``judge``: a :class:`~ragkit.evaluate.judge.Judge` (from ``make_judge``) for the judge-only answer
        metrics, used with ``settings.answers``. ``index``: an existing index (a directory or store URL) to run
        every variant on instead of indexing the dataset's corpus; it is only read, and a variant whose
        index-shaping settings (chunker, embedder, sparse, dense) differ from ``base``'s is skipped."""
        if dataset.corpus is None and index is None:
            raise RagkitError(f"{dataset.root}: no corpus to index (give one with --corpus)")
        self.index = str(index) if index is not None else None
        self.dataset = dataset
        self.base = base
        self.variants = dedupe_names(variants)
        names = {v.name for v in self.variants}
        for v in self.variants:
            if v.parent is not None and v.parent not in names:
                raise ConfigError(f"variant {v.name!r}: unknown parent {v.parent!r}")
        self.out = Path(out)
        self.s = settings or AblationSettings()
        self.judge = judge
        self.answer_metrics: tuple[str, ...] = ()
        if self.s.answers:
            if judge is not None and not hasattr(judge, "yes_probability"):
                raise ConfigError("ragkit ablate scores answers one at a time: use the native judge backend")
            self.answer_metrics = tuple(self.s.answer_metrics) if self.s.answer_metrics is not None \
                else default_answer_metrics(judge)
            check_answer_metrics(self.answer_metrics)
            require_judge(self.answer_metrics, judge)
        self.cache_root = Path(cache_root) if cache_root else default_cache_root()
        # an existing index keeps its own embedding cache (None: the store's)
        self.embedding_cache = None if self.index else self.cache_root / "eval-indexes" / SHARED_EMBEDDINGS
        self.progress = progress
        self.fresh = fresh
        self.queries = dataset.queries[:self.s.limit] if self.s.limit else list(dataset.queries)
        if not self.queries:
            raise RagkitError(f"{dataset.root}: no queries")
        self.qrels = {q.qid: q.relevant for q in self.queries}
        # reuse bookkeeping (what the tests and the report look at)
        self.stats = {"indexes_built": 0, "indexes_reused": 0, "chunks_embedded": 0, "first_stage_runs": 0,
                      "first_stage_reused": 0, "variants_run": 0, "variants_resumed": 0, "query_vectors": 0,
                      "queries_resumed": 0, "rerank_pairs_scored": 0, "rerank_pairs_reused": 0}
        self._indexes: dict[str, Any] = {}
        self._first: dict[str, tuple[list, list[dict[str, float]]]] = {}
        self.max_first_stages: int | None = None  # first-stage runs kept in memory (None: all; tune bounds it)
        self._qcache = QueryVectorCache()
        # raw reranker scores shared by every variant (None: each variant scores its own head, as a server would)
        self.score_cache: RerankScoreCache | None = RerankScoreCache()
        self._base_shape = index_shape(base) if self.index else {}
        self._dataset_fp = config_hash({"root": str(dataset.root.resolve()),
                                        "corpus": corpus_fingerprint(dataset.corpus) if dataset.corpus else None,
                                        **({"index": [self.index, index_version(self.index)]} if self.index
                                           else {}),
                                        "queries": [q.qid for q in self.queries], "split": self.s.split,
                                        "qrels": self.qrels})

    # -- indexes and first stage --

    def _existing_index(self, cfg: Config):
        """The given index, opened read-only for this config (a variant that would reshape it is skipped)."""
        from ragkit.engine import Engine

        shape = index_shape(cfg)
        for section in shape:
            have, want = self._base_shape.get(section) or {}, shape[section]
            if want != have:
                diff = ", ".join(f"{k} {have.get(k)!r} -> {want.get(k)!r}" for k in sorted({*have, *want})
                                 if have.get(k) != want.get(k))
                raise VariantSkipped(f"changes the index's {section} ({diff}): the chunks and embeddings of an "
                                     "existing index are fixed (tune with --dataset to search them)")
        key = config_hash(shape)
        if key not in self._indexes:
            eng = Engine.open(self.index, cfg)
            gen = eng.reader()
            if gen is None:
                eng.close()
                raise RagkitError(f"{self.index}: no index there (build one with ragkit ingest)")
            info = {"path": str(eng.store.location), "chunks": gen.n_chunks,
                    "bytes": _dir_bytes(gen.path) if hasattr(gen, "path") else 0, "key": key, "existing": True}
            self._indexes[key] = (eng, info, doc_key_for(gen, self.queries))
            self.stats["indexes_reused"] += 1
        return self._indexes[key]

    def _index(self, cfg: Config):
        if self.index:
            return self._existing_index(cfg)
        key = config_hash(index_shape(cfg))
        if key not in self._indexes:
            existed = (dataset_index_path(self.dataset, cfg, self.cache_root) / "CURRENT").exists()
            cb = (lambda stage, d, n: self.progress("(index)", stage, d, n)) if self.progress else None
            eng, rep = dataset_engine(self.dataset, cfg, None, self.cache_root, cb,
                                      embedding_cache=self.embedding_cache)
            self.stats["indexes_reused" if existed and not rep.committed else "indexes_built"] += 1
            self.stats["chunks_embedded"] += rep.chunks_embedded
            gen = eng.reader()
            info = {"path": str(eng.store.location), "chunks": gen.n_chunks if gen else 0,
                    "bytes": _dir_bytes(gen.path) if gen is not None and hasattr(gen, "path") else 0, "key": key}
            self._indexes[key] = (eng, info, doc_key_for(gen, self.queries))
        return self._indexes[key]

    def _first_stage(self, name: str, cfg: Config, engine) -> tuple[list, list[dict[str, float]]]:
        """Per query: (hits, timings) before rerankers/filters, at candidate depth; shared by every variant with
        the same index and first-stage config (the engine's own first stage, query vectors memoised)."""
        cand = max(cfg.retrieval.candidates, self.s.k)
        data = cfg.model_dump(mode="json")
        data["rerankers"], data["filters"] = [], []
        shape = {k: v for k, v in data.items() if k != "generator" or data["transforms"]}  # transforms may use its LLM
        shape["retrieval"] = {k: v for k, v in data["retrieval"].items() if k != "k"}
        key = config_hash({"index": engine.store.location, "cfg": shape, "cand": cand})
        if key in self._first:
            self.stats["first_stage_reused"] += 1
            self._first[key] = self._first.pop(key)  # most recently used last
            return self._first[key]
        try:
            engine.warm_up(post=False, generator=bool(cfg.transforms))
        except (ConfigError, PluginError) as exc:  # a plugin that cannot load
            raise VariantSkipped(str(exc)) from None
        hits, timings = [], []
        for i, q in enumerate(self.queries):
            self._qcache.take_charge()
            t = time.perf_counter()
            try:
                r = engine.first_stage(q.text, k=cand, depth=cand)
            except RagkitError as exc:
                if i == 0:  # the first query is the probe (e.g. a transform that needs an LLM)
                    raise VariantSkipped(str(exc)) from None
                raise
            charge = self._qcache.take_charge()
            tm = {f"first:{k}": v for k, v in r.timings.items()}
            tm["first_stage"] = time.perf_counter() - t + charge
            if charge:  # the query vector came from the memo: add what computing it cost
                tm["first:dense"] = tm.get("first:dense", 0.0) + charge
            hits.append(r.hits)
            timings.append(tm)
            if self.progress:
                self.progress(name, "retrieve", i + 1, len(self.queries))
        self.stats["first_stage_runs"] += 1
        self._first[key] = (hits, timings)
        while self.max_first_stages is not None and len(self._first) > max(1, self.max_first_stages):
            del self._first[next(iter(self._first))]  # the least recently used
        return self._first[key]

    # -- one variant --

    def _fingerprint(self, v: Variant, cfg: Config) -> str:
        s = self.s
        key = {"dataset": self._dataset_fp, "config": cfg.model_dump(mode="json"), "metrics": s.metrics, "k": s.k,
               "answers": s.answers, "answer_k": s.answer_k, "schema": SCHEMA}
        if s.answers:  # which answer metrics, judged by whom
            key["answer_metrics"] = self.answer_metrics
            key["judge"] = self.judge.describe() if self.judge is not None else None
        return config_hash(key)

    def _run_variant(self, v: Variant, cfg: Config, checkpoint: "QueryLog | None" = None) -> dict[str, Any]:
        """Run one variant over the queries. With a ``checkpoint``, each finished query is appended to it and the
        queries it already holds (an interrupted earlier run of the same variant) are taken from it, not rerun."""
        from ragkit.engine import Engine

        t0 = time.perf_counter()
        try:
            index_eng, index_info, doc_key = self._index(cfg)
            engine = Engine.open(index_eng.store.location, cfg, embedding_cache=self.embedding_cache,
                                 query_cache=self._qcache)
        except (ConfigError, PluginError) as exc:
            raise VariantSkipped(str(exc)) from None
        try:
            try:
                for p in engine.processors:
                    p.warm_up()
                if self.s.answers:
                    engine.generator.warm_up()
            except RagkitError as exc:
                raise VariantSkipped(str(exc)) from None
            cache = self.score_cache
            if cache is not None:
                cache.attach(engine.processors)
                scored0, reused0 = cache.scored, cache.reused
            charged: list[float] = []  # per computed query: rerank seconds charged for scores served from memory
            before = self.stats["first_stage_runs"]
            first_hits, first_timings = self._first_stage(v.name, cfg, engine)
            self.stats["query_vectors"] = self._qcache.computed
            reused = self.stats["first_stage_runs"] == before
            run: dict[str, dict[str, float]] = {}
            timings: list[dict[str, float]] = []
            answers: dict[str, list[float]] = {m: [] for m in self.answer_metrics}
            scorer = self._scorer(engine) if self.s.answers else None
            saved = checkpoint.load() if checkpoint else {}
            probe = True  # the first query this run computes: a step that cannot run is skipped there
            for i, q in enumerate(self.queries):
                if q.qid in saved:
                    rec = saved[q.qid]
                    run[q.qid], tm = rec["run"], rec["timings"]
                    timings.append(tm)
                    if self.s.answers:
                        for m in answers:
                            answers[m].append(rec["answers"].get(m, float("nan")))
                    self.stats["queries_resumed"] += 1
                    continue
                if cache is not None:
                    cache.take_charges()  # drop what an earlier, failed call left
                try:  # the engine's own post stage, on a copy of the shared first-stage hits
                    post = engine.post_stage(q.text, Retrieval(first_hits[i]), self.s.k)
                except RagkitError as exc:
                    if probe:
                        raise VariantSkipped(str(exc)) from None
                    raise
                hits = post.hits
                tm = {**first_timings[i], **post.timings}
                if cache is not None:  # scores from memory: the stage is charged what scoring them took
                    owed = cache.take_charges()
                    for key, sec in owed.items():
                        tm[key] = tm.get(key, 0.0) + sec
                    charged.append(sum(owed.values()))
                run[q.qid] = doc_run(hits, doc_key)
                if self.s.answers:
                    t = time.perf_counter()
                    try:
                        ans = engine.answer(q.text, Retrieval(hits[:self.s.answer_k]))
                    except RagkitError as exc:
                        if probe:
                            raise VariantSkipped(str(exc)) from None
                        raise
                    tm["generate"] = time.perf_counter() - t
                    scores = score_answer(scorer, q, ans, doc_key=doc_key)
                    for m, vals in answers.items():
                        value = scores[m].value if m in scores else None
                        vals.append(float("nan") if value is None else float(value))
                probe = False
                tm["total"] = sum(v_ for k_, v_ in tm.items() if k_ in ("first_stage", "generate") or
                                  not k_.startswith("first:"))
                timings.append(tm)
                if checkpoint:
                    checkpoint.add(q.qid, {"run": run[q.qid], "timings": tm,
                                           "answers": {m: vals[-1] for m, vals in answers.items() if vals}})
                if self.progress:
                    self.progress(v.name, "post", i + 1, len(self.queries))
        finally:
            engine.close()
            if checkpoint:
                checkpoint.close()
        mean, per_query = evaluate_run(self.qrels, for_ranx(run), self.s.metrics)
        per_q = {m: [float(per_query[m].get(q.qid, 0.0)) for q in self.queries] for m in self.s.metrics}
        if self.s.answers:
            for m, vals in answers.items():
                if not all(np.isnan(vals)):
                    per_q[m] = vals
                    mean[m] = float(np.nanmean(vals))
        stages = sorted({k for tm in timings for k in tm})
        latency = {st: {"p50": round(percentile([tm.get(st, 0.0) * 1000 for tm in timings], 0.5, 0.0), 3),
                        "p95": round(percentile([tm.get(st, 0.0) * 1000 for tm in timings], 0.95, 0.0), 3)}
                   for st in stages}
        out = {"name": v.name, "status": "done", "metrics": {m: float(x) for m, x in mean.items()},
               "run": run, "per_query": per_q, "latency_ms": latency, "index": index_info,
               "first_stage_reused": bool(reused), "seconds": round(time.perf_counter() - t0, 3),
               "queries_resumed": len(saved),
               "load_average": _loadavg()}
        if cache is not None and (cache.scored > scored0 or cache.reused > reused0):
            self.stats["rerank_pairs_scored"] += cache.scored - scored0
            self.stats["rerank_pairs_reused"] += cache.reused - reused0
            out["rerank_scores"] = {
                "pairs_scored": cache.scored - scored0, "pairs_reused": cache.reused - reused0,
                "charged_ms": {"p50": round(percentile([c * 1000 for c in charged], 0.5, 0.0), 3),
                               "p95": round(percentile([c * 1000 for c in charged], 0.95, 0.0), 3),
                               "sum": round(sum(charged) * 1000, 3)}}
        if scorer is not None and (scorer.skipped or scorer.failures.total):
            out["answer_issues"] = {"skipped": dict(scorer.skipped), "judge_failures": scorer.failures.to_dict()}
        return out

    def _scorer(self, engine) -> AnswerScorer:
        """The answer scorer of one variant: its own embedder (judge fallbacks, answer relevance), its own
        failure count."""
        return AnswerScorer(self.judge, engine.embedder.embed, FailureLog(self.s.max_failures), self.answer_metrics)

    def evaluate(self, name: str, cfg: Config) -> dict[str, Any]:
        """Run one pipeline config over the queries, sharing indexes, first-stage runs and query vectors with
        every earlier call on this ablation (what ``ragkit tune`` does per trial). Returns the variant's result
        (``metrics``, ``per_query``, ``latency_ms``, ``index``, ``seconds``, ``run``), or ``{"status":
        "skipped", "reason": ...}`` when a plugin cannot run here (not installed, no model, needs an LLM)."""
        try:
            check_plugins(cfg)
            return self._run_variant(Variant(name), cfg)
        except (VariantSkipped, ConfigError, PluginError) as exc:
            return {"name": name, "status": "skipped", "reason": str(exc)}

    # -- the whole ablation --

    def close(self) -> None:
        for eng, _, _ in self._indexes.values():
            eng.close()
        self._indexes.clear()

    def run(self) -> dict[str, Any]:
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> dict[str, Any]:
        vdir = self.out / "variants"
        vdir.mkdir(parents=True, exist_ok=True)
        results: dict[str, dict[str, Any]] = {}
        resolved: dict[str, tuple[Config, str | None]] = {}  # name -> (config, reference that ran)
        seen: dict[str, str] = {}  # name -> fingerprint of the variants that ran (or tried to)
        started = time.perf_counter()
        self._load_start = _loadavg()
        for idx, v in enumerate(self.variants):
            # the config builds on the parent's; a skipped parent hands over its own base
            ref = v.parent
            while ref is not None and results.get(ref, {}).get("status") == "skipped":
                ref = results[ref].get("reference")
            entry: dict[str, Any] = {"name": v.name, "description": v.description, "overrides": v.overrides,
                                     "parent": v.parent, "reference": ref}
            if self.progress:
                self.progress(v.name, "start", idx, len(self.variants))
            try:
                if v.disabled:
                    raise VariantSkipped(v.disabled)
                if ref is not None and ref not in resolved:
                    raise VariantSkipped(f"builds on {ref!r}, which failed")
                parent_cfg = resolved[ref][0] if ref is not None else self.base
                try:
                    cfg = apply_overrides(parent_cfg, v.overrides)
                    check_plugins(cfg)
                except (ConfigError, PluginError) as exc:
                    raise VariantSkipped(str(exc)) from None
                fp = self._fingerprint(v, cfg)
                twin = next((n for n, f in seen.items() if f == fp), None)
                if twin is not None:
                    raise VariantSkipped(f"same pipeline as {twin!r}")
                resolved[v.name] = (cfg, ref)
                seen[v.name] = fp
                path = vdir / f"{slug(v.name)}.json"
                done = None
                if not self.fresh and path.is_file():
                    try:
                        prev = json.loads(path.read_text(encoding="utf-8"))
                        if prev.get("fingerprint") == fp and prev.get("status") == "done":
                            done = prev
                    except (OSError, ValueError):
                        done = None
                if done is not None:
                    self.stats["variants_resumed"] += 1
                    entry.update(done, resumed=True)
                else:
                    checkpoint = QueryLog(vdir / f"{slug(v.name)}.queries.jsonl", fp, fresh=self.fresh)
                    res = self._run_variant(v, cfg, checkpoint)
                    res["run_file"] = write_trec_run(self.out / "runs" / f"{slug(v.name)}.trec.gz", res.pop("run"),
                                                     slug(v.name)).relative_to(self.out).as_posix()
                    res["fingerprint"] = fp
                    res["config"] = cfg.model_dump(mode="json")
                    self.stats["variants_run"] += 1
                    tmp = path.with_suffix(".tmp")
                    tmp.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n", encoding="utf-8")
                    os.replace(tmp, path)  # a finished variant is on disk before the next one starts
                    checkpoint.remove()
                    entry.update(res, resumed=False)
                entry["reference"] = ref
            except VariantSkipped as exc:
                resolved.pop(v.name, None)
                entry.update(status="skipped", reason=str(exc))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a broken plugin: record it, keep going, re-run retries it
                resolved.pop(v.name, None)
                entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
            results[v.name] = entry
            if self.progress:
                self.progress(v.name, "end", idx + 1, len(self.variants))
        return self._summarise(results, time.perf_counter() - started)

    def _summarise(self, results: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
        s = self.s
        metrics = list(s.metrics) + ([m for m in self.answer_metrics
                                      if any(m in r.get("metrics", {}) for r in results.values())]
                                     if s.answers else [])
        groups = query_groups(self.queries)
        variants = []
        for name, r in results.items():
            item = {k: r.get(k) for k in ("name", "description", "status", "reason", "parent", "reference",
                                          "overrides", "metrics", "latency_ms", "index", "first_stage_reused",
                                          "resumed", "seconds", "answer_issues", "rerank_scores") if k in r}
            if r.get("run_file") and (self.out / r["run_file"]).is_file():
                item["run_file"] = r["run_file"]  # runs/<name>.trec.gz, relative to the report directory
            if r.get("status") == "done":
                pq = r["per_query"]
                item["ci95"] = {m: [round(x, 6) for x in mean_ci(np.array(pq[m]), seed=s.seed)]
                                for m in metrics if m in pq and not np.isnan(pq[m]).any()}
                ref = results.get(r.get("reference") or "")
                if ref and ref.get("status") == "done":
                    item["vs_reference"] = {
                        m: compare(np.array(pq[m]), np.array(ref["per_query"][m]), alpha=s.alpha,
                                   resamples=s.resamples, seed=s.seed).to_dict()
                        for m in metrics if m in pq and m in ref["per_query"] and not np.isnan(pq[m]).any()}
                if groups:
                    item["by_group"] = {g: {m: float(np.mean([pq[m][i] for i in idx])) for m in metrics if m in pq}
                                        for g, idx in groups.items()}
                item["config"] = r.get("config")
            variants.append(item)
        # the load while the variants ran (each records it when it finishes), not while this run resumed them
        load = [x for x in (r.get("load_average") for r in results.values()) if x is not None] or \
            [x for x in (self._load_start, _loadavg()) if x is not None]
        cpus = os.cpu_count() or 1
        notes = []
        if load and max(load) > cpus:
            notes.append(f"The CPU was shared while this ran (1-minute load average {max(load):.1f} on {cpus} "
                         "cores): latencies are pessimistic; compare them within this report, not across machines.")
        done = [v for v in variants if v["status"] == "done"]
        front = pareto_front([(v["name"], v["latency_ms"]["total"]["p50"], v["metrics"][s.primary]) for v in done])
        return {"schema": SCHEMA,
                "dataset": {"root": str(self.dataset.root), "corpus": str(self.dataset.corpus), "split": s.split,
                            "queries": len(self.queries),
                            "groups": {g: len(i) for g, i in groups.items()}},
                "settings": {"metrics": metrics, "primary": s.primary, "k": s.k, "limit": s.limit,
                             "answers": s.answers, "seed": s.seed, "alpha": s.alpha, "resamples": s.resamples,
                             "test": "paired randomization (sign-flip), two-sided",
                             "ci": "95% percentile bootstrap over queries",
                             **({"judge": self.judge.describe()} if s.answers and self.judge is not None else {})},
                "base_config": self.base.model_dump(mode="json"),
                "variants": variants,
                "pareto": front,
                "reuse": dict(self.stats),
                "machine": {"cpus": cpus, "load_average": [round(x, 2) for x in load]},
                "notes": notes,
                "seconds": round(seconds, 1),
                "variant_seconds": round(sum(r.get("seconds") or 0.0 for r in results.values()), 1)}


def index_version(index: str | Path) -> str | None:
    """The committed version of the index at ``index`` (None: nothing there)."""
    from ragkit.index import open_store

    return open_store(index).version()


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def pareto_front(points: list[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point beats on both latency (lower) and quality (higher)."""
    front = []
    for name, lat, q in points:
        dominated = any((l2 <= lat and q2 >= q) and (l2 < lat or q2 > q) for n2, l2, q2 in points if n2 != name)
        if not dominated:
            front.append(name)
    return sorted(front, key=lambda n: next(p[1] for p in points if p[0] == n))


def load_ablation_dataset(root: str | Path, split: str = "test", corpus: str | Path | None = None) -> Dataset:
    ds = load_dataset(root, split)
    if corpus is not None:
        corpus = Path(corpus)
        if not corpus.exists():
            raise RagkitError(f"{corpus}: corpus not found")
        ds.corpus = corpus
    attach_types(ds)
    return ds
