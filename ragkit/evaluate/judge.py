"""LLM judges for answer metrics: built from an explicit spec, cached on disk, failures counted.

A :class:`Judge` wraps one :class:`ragkit.llm.LLM` and offers the two calls the answer metrics make — a yes/no
probability and a short generation. Every call is keyed by (metric, prompt version, model id, temperature,
repeat index, messages) in a SQLite file, so re-running an evaluation makes no LLM call and gives identical
numbers. A call that fails (the backend raised, timed out, or the reply could not be read) raises
:class:`JudgeFailure`; the metrics catch it and record it in a :class:`FailureLog`, which aborts the run once
``max_failures`` is exceeded. Nothing here picks a judge on its own: no spec, no judge. :func:`make_judge` is
the one place a judge is built from a ``--judge`` spec (``ragkit eval``, ``ragkit ablate``, the benchmarks).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.errors import ConfigError, RagkitError

#: ``--judge local`` means this offline model (the best yes/no judge measured here, see benchmarks/judge_validity.md).
LOCAL_JUDGE_MODEL = "qwen1.5b"

JUDGE_HELP = ("--judge local (offline GGUF model), --judge local:qwen0.5b|local:/path/model.gguf, "
              "--judge openai:http://HOST/v1 --judge-model NAME, or --judge cohere[:model]")


class JudgeFailure(Exception):
    """One judge call gave no usable answer; ``kind`` is a short category (error, timeout, unparsable, nan)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind, self.detail = kind, detail


class TooManyFailures(RagkitError):
    """More judge failures than ``--max-failures`` allows."""


@dataclass
class FailureLog:
    """Judge failures per metric and kind. ``max_failures`` (None = unlimited) bounds the total."""

    max_failures: int | None = None
    counts: dict[str, Counter] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)

    def record(self, metric: str, kind: str, qid: str = "", detail: str = "") -> None:
        self.counts.setdefault(metric, Counter())[kind] += 1
        if len(self.examples) < 20:
            self.examples.append({"metric": metric, "kind": kind, "qid": qid, "detail": detail[:200]})
        if self.max_failures is not None and self.total > self.max_failures:
            raise TooManyFailures(f"judge failures exceeded --max-failures {self.max_failures} "
                                  f"({self.summary()}); last: {metric} on {qid or '?'}: {kind} {detail[:120]}")

    def of(self, metric: str) -> int:
        return sum(self.counts.get(metric, Counter()).values())

    @property
    def total(self) -> int:
        return sum(sum(c.values()) for c in self.counts.values())

    def summary(self) -> str:
        return ", ".join(f"{m}: " + " ".join(f"{k}={n}" for k, n in sorted(c.items()))
                         for m, c in sorted(self.counts.items())) or "none"

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_metric": {m: dict(c) for m, c in self.counts.items()},
                "examples": self.examples}


class JudgeCache:
    """SQLite key -> JSON value store; one file per cache directory, safe across processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS judge (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                         "model TEXT, metric TEXT, created REAL)")
        self._db.commit()
        self._lock = threading.Lock()

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> Any:
        with self._lock:
            row = self._db.execute("SELECT value FROM judge WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any, model: str = "", metric: str = "") -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO judge VALUES (?, ?, ?, ?, ?)",
                             (key, json.dumps(value), model, metric, time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM judge").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def make_judge_llm(spec: str, model: str = "", timeout: float | None = None, n_ctx: int = 4096):
    """The judge's LLM from a ``--judge`` spec. ``local`` is :data:`LOCAL_JUDGE_MODEL`; ``openai:URL`` needs
    ``model`` (``--judge-model``); ``cohere`` takes its key from ``COHERE_API_KEY``."""
    from ragkit.llm import make_llm

    if not spec:
        raise ConfigError(f"no judge configured: {JUDGE_HELP}")
    kind, _, rest = spec.partition(":")
    if kind == "local":
        params: dict[str, Any] = {"backend": "llama-cpp", "model": model or rest or LOCAL_JUDGE_MODEL,
                                  "n_ctx": n_ctx}
    elif kind == "openai":
        if not rest:
            raise ConfigError("--judge openai: give the endpoint, e.g. --judge openai:http://127.0.0.1:8080/v1")
        if not model:
            raise ConfigError(f"--judge {spec}: name the model with --judge-model")
        params = {"backend": "openai", "base_url": rest, "model": model}
        if timeout:
            params["timeout"] = timeout
    elif kind == "cohere":
        params = {"backend": "cohere"}
        if model or rest:
            params["model"] = model or rest
        if timeout:
            params["timeout"] = timeout
    else:
        raise ConfigError(f"--judge {spec!r}: unknown judge ({JUDGE_HELP})")
    return make_llm(params)


def make_judge(spec: str | None, model: str = "", *, backend: str = "native", temperature: float = 0.0,
               timeout: float | None = None, cache_dir: str | Path | None = None, n_ctx: int = 4096):
    """The judge a ``--judge`` spec names, or None without a spec.

    ``backend='native'``: a :class:`Judge` over :func:`make_judge_llm`, its replies cached in
    ``<cache_dir>/judge-cache.sqlite``; ``'ragas'``: a :class:`~ragkit.evaluate.ragas_judge.RagasJudge` (ragas'
    own cache under ``cache_dir``). ``cache_dir`` defaults to the eval cache root (``$RAGKIT_CACHE``)."""
    if not spec:
        return None
    if cache_dir is None:
        from ragkit.evaluate import default_cache_root

        cache_dir = default_cache_root()
    if backend == "ragas":
        from ragkit.evaluate.ragas_judge import RagasJudge

        return RagasJudge(spec, model, timeout=timeout, cache_dir=cache_dir)
    if backend != "native":
        raise ConfigError(f"--judge-backend {backend!r}: unknown (native, ragas)")
    return Judge(make_judge_llm(spec, model, timeout, n_ctx), JudgeCache(Path(cache_dir) / "judge-cache.sqlite"),
                 temperature=temperature, timeout=timeout)


class Judge:
    """An LLM used as a judge, with a disk cache. ``calls`` counts real LLM calls, ``hits`` cache hits."""

    def __init__(self, llm: Any, cache: JudgeCache | None = None, *, temperature: float = 0.0,
                 timeout: float | None = None) -> None:
        self.llm, self.cache = llm, cache
        self.temperature = temperature
        self.timeout = timeout  # seconds per call; a slower reply is discarded and counted as a timeout
        self.calls = 0
        self.hits = 0
        self._model_id: str | None = None
        self.seconds = 0.0

    @property
    def model_id(self) -> str:
        """The cache's model key, known without loading a local model (so a fully cached re-run loads none)."""
        if self._model_id is None:
            from ragkit.llm.llama_cpp import LlamaCppLLM

            if isinstance(self.llm, LlamaCppLLM) and not self.llm.repo_id:
                from ragkit.llm.models import resolve_gguf

                self._model_id = resolve_gguf(self.llm.model).name  # the name llama-cpp's warm_up gives it
            else:
                self._model_id = self.llm.model_id
        return self._model_id

    def describe(self) -> dict[str, Any]:
        return {"model": self.model_id, "backend": type(self.llm).__name__, "temperature": self.temperature}

    def _cached(self, metric: str, version: str, messages: list[dict], repeat: int, extra: Any, fn):
        key = JudgeCache.key(metric, version, self.model_id, self.temperature,
                             repeat if self.temperature > 0 else 0, extra, messages)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.hits += 1
                return hit["v"]
        t = time.perf_counter()
        try:
            value = fn()
        except RagkitError as exc:  # PluginError from a backend: connection, HTTP status, context overflow
            kind = "timeout" if "timeout" in str(exc).lower() or "timed out" in str(exc).lower() else "error"
            raise JudgeFailure(kind, str(exc)) from None
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - t
        if self.timeout and time.perf_counter() - t > self.timeout:
            raise JudgeFailure("timeout", f"judge call took {time.perf_counter() - t:.1f}s > {self.timeout}s")
        if self.cache is not None:  # a deterministic unparsable reply is cached too: a re-run sees the same
            self.cache.put(key, {"v": value}, self.model_id, metric)
        return value

    def yes_probability(self, metric: str, version: str, messages: list[dict], repeat: int = 0) -> float:
        """P(yes) in [0, 1]; raises JudgeFailure("unparsable") when the judge answered neither yes nor no."""
        value = self._cached(metric, version, messages, repeat, "yes_probability",
                             lambda: _finite_or_none(self.llm.yes_probability(messages)))
        if value is None:
            raise JudgeFailure("unparsable", "reply starts with neither yes nor no")
        return float(value)

    def generate(self, metric: str, version: str, messages: list[dict], *, max_tokens: int = 128,
                 repeat: int = 0) -> str:
        def call() -> str:
            seed = getattr(self.llm, "seed", None)
            if self.temperature > 0 and isinstance(seed, int):  # a different sample per repeat
                self.llm.seed = seed + repeat
            try:
                return self.llm.chat(messages, max_tokens=max_tokens, temperature=self.temperature).text
            finally:
                if isinstance(seed, int):
                    self.llm.seed = seed

        return self._cached(metric, version, messages, repeat, ["chat", max_tokens], call)


def _finite_or_none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)
