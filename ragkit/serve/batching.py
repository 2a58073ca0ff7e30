"""Micro-batching for ``ragkit serve``: the query embeddings (and cross-encoder pairs) of concurrent requests are
computed in one model call instead of one call each.

A :class:`MicroBatcher` owns ``workers`` threads. A request thread ``submit``s its items (one query text, or one
request's (query, passage) pairs) and blocks; a free worker takes the first waiting submission, keeps collecting for
at most ``window_ms`` or until ``max_batch`` submissions are in (it stops waiting as soon as every request that is
still inside retrieval has submitted, so a lone request never waits), runs the model once on all of them and hands
each request its own rows. While the model runs, new submissions queue up and form the next batch.

While batching is installed, torch runs each model call on one thread, and the workers (one per CPU core by
default) run calls side by side: parallel across batches instead of inside one. Splitting one small forward pass
over cores needs every core at each of its many synchronisation points, which on a busy machine costs far more
than the split saves (a single query took 10x the CPU with 2 intra-op threads as with 1 on a loaded 2-core box).

Each submission's queue wait and the batch's compute time are recorded for the request thread
(:func:`take_timings`), so the server reports them per request; :meth:`MicroBatcher.stats` counts batches.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

_local = threading.local()  # per request thread: timings of its submissions, batchers it may still submit to


def take_timings() -> dict[str, float]:
    """Seconds this thread spent in batchers since the last call: ``<name>_wait`` (queued until its batch started)
    and ``<name>_batch`` (the batch's model call), summed over its submissions; then cleared."""
    out = getattr(_local, "timings", None) or {}
    _local.timings = {}
    return out


def _record(name: str, wait: float, compute: float) -> None:
    timings = getattr(_local, "timings", None)
    if timings is None:
        timings = _local.timings = {}
    timings[f"{name}_wait"] = timings.get(f"{name}_wait", 0.0) + wait
    timings[f"{name}_batch"] = timings.get(f"{name}_batch", 0.0) + compute


@dataclass
class _Job:
    items: Sequence[Any]
    submitted: float = field(default_factory=time.perf_counter)
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None
    started: float = 0.0
    seconds: float = 0.0


class MicroBatcher:
    """Runs ``fn(items) -> results`` (one result per item, in order: a list or an array's rows) over the items of
    several submissions at once."""

    def __init__(self, fn: Callable[[list[Any]], Any], *, name: str, window_ms: float, max_batch: int,
                 workers: int = 1) -> None:
        self.fn, self.name = fn, name
        self.window = window_ms / 1000.0
        self.max_batch, self.workers = max_batch, workers
        self._cond = threading.Condition()
        self._queue: list[_Job] = []
        self._expected = 0  # requests inside retrieval that have not submitted here yet
        self._stopped = True
        self._threads: list[threading.Thread] = []
        self._collecting = False
        self._stats = {"batches": 0, "requests": 0, "items": 0, "largest": 0, "batched_requests": 0}

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start(self) -> "MicroBatcher":
        with self._cond:
            if self._threads:
                return self
            self._stopped = False
            self._threads = [threading.Thread(target=self._run, name=f"ragkit-batch-{self.name}-{i}", daemon=True)
                             for i in range(self.workers)]
            for t in self._threads:
                t.start()
        return self

    def stop(self) -> None:
        """Finish what is queued, then end the workers; later submissions run alone in their own thread."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(timeout=30)

    # --- request side -----------------------------------------------------------------------------------------

    def expect(self) -> None:
        """The calling request may submit soon: the worker waits for it (within the window) before running."""
        flags = _flags()
        if self in flags:
            return
        with self._cond:
            self._expected += 1
        flags.add(self)

    def unexpect(self) -> None:
        """The calling request will not submit (any more)."""
        flags = _flags()
        if self not in flags:
            return
        flags.discard(self)
        with self._cond:
            self._expected -= 1
            self._cond.notify_all()

    def submit(self, items: Sequence[Any]) -> Any:
        """The results for ``items`` (computed in a batch with other requests' items when the worker runs)."""
        job = _Job(list(items))
        flags = _flags()
        with self._cond:
            if self in flags:
                flags.discard(self)
                self._expected -= 1
            running = bool(self._threads) and not self._stopped
            if running:
                self._queue.append(job)
                self._cond.notify_all()
        if not running:
            self._execute([job])
        job.done.wait()
        _record(self.name, job.started - job.submitted, job.seconds)
        if job.error is not None:
            raise job.error
        return job.result

    def stats(self) -> dict[str, Any]:
        """Counters since start: batches run, requests and items through them, the largest batch (requests), and
        how many requests shared their batch with at least one other."""
        with self._cond:
            return {"window_ms": self.window * 1000, "max_batch": self.max_batch, "workers": self.workers,
                    **self._stats}

    # --- worker -----------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue or self._collecting:  # one worker collects a batch at a time
                    if self._stopped and not self._queue:
                        return
                    self._cond.wait()
                self._collecting = True
                deadline = self._queue[0].submitted + self.window
                while len(self._queue) < self.max_batch and self._expected > 0 and not self._stopped:
                    remaining = deadline - time.perf_counter()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
                self._collecting = False
                self._cond.notify_all()  # the next free worker may start collecting what is left
            self._execute(batch)

    def _execute(self, batch: list[_Job]) -> None:
        flat = [item for job in batch for item in job.items]
        t = time.perf_counter()
        try:
            results = self.fn(flat) if flat else []
            error = None
        except BaseException as exc:  # every request of the batch gets the error
            results, error = None, exc
        seconds = time.perf_counter() - t
        with self._cond:
            s = self._stats
            s["batches"] += 1
            s["requests"] += len(batch)
            s["items"] += len(flat)
            s["largest"] = max(s["largest"], len(batch))
            if len(batch) > 1:
                s["batched_requests"] += len(batch)
        at = 0
        for job in batch:
            n = len(job.items)
            job.started, job.seconds, job.error = t, seconds, error
            if error is None:
                job.result = results[at:at + n]
            at += n
            job.done.set()


def _flags() -> set:
    flags = getattr(_local, "expected", None)
    if flags is None:
        flags = _local.expected = set()
    return flags


WINDOW_MS = 5.0  # how long a batch waits for more requests, where a batch makes each of its items cheaper


class Batching:
    """The server's batchers over one engine: query embeddings, and each cross-encoder reranker's pairs.
    ``install`` routes the engine's query embedding and the rerankers' scoring through them; ``uninstall`` puts
    the direct calls back."""

    def __init__(self, engine: Any, *, window_ms: float | str = "auto", max_batch: int, workers: int = 0) -> None:
        """``workers``: model calls run at once per batcher (0: one per CPU core). ``window_ms="auto"``: no wait
        for query embeddings through ONNX Runtime, whose cost per query is the same in a batch as alone
        (benchmarks/batch_scaling.py), so waiting for batch-mates only adds latency; :data:`WINDOW_MS` for the
        torch query path and for reranker pairs."""
        self.engine = engine
        kw = {"max_batch": max_batch, "workers": workers or os.cpu_count() or 1}
        window = WINDOW_MS if window_ms == "auto" else float(window_ms)
        # asked only for auto: it loads the embedder's query path where nothing has yet
        onnx = window_ms == "auto" and getattr(engine.embedder, "query_path", None) == "onnx"
        self.embed = MicroBatcher(self._embed_texts, name="embed", window_ms=0.0 if onnx else window, **kw)
        self.rerank: dict[str, MicroBatcher] = {}
        for i, plugin in enumerate(self._batchable()):
            self.rerank[f"rerank{i}"] = MicroBatcher(plugin.score, name="rerank", window_ms=window, **kw)
        self._torch_threads: int | None = None

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        emb = self.engine.embedder  # queries as Engine.embed_query would embed them (ONNX or torch)
        return (getattr(emb, "embed_queries", None) or emb.embed)(texts)

    def _embed_one(self, text: str) -> np.ndarray:
        return self.embed.submit([text])[0]

    def install(self) -> "Batching":
        torch = sys.modules.get("torch")  # loaded with the models (engine.warm_up); untouched otherwise
        if torch is not None:
            self._torch_threads = torch.get_num_threads()
            torch.set_num_threads(1)
        self.embed.start()
        self.engine.query_encoder = self._embed_one
        for batcher, plugin in zip(self.rerank.values(), self._batchable()):
            batcher.start()
            plugin.scorer = batcher.submit
        return self

    def uninstall(self) -> None:
        self.engine.query_encoder = None
        for plugin in self._batchable():
            plugin.scorer = None
        self.embed.stop()
        for batcher in self.rerank.values():
            batcher.stop()
        if self._torch_threads is not None:
            sys.modules["torch"].set_num_threads(self._torch_threads)
            self._torch_threads = None

    def _batchable(self) -> list[Any]:
        """Rerankers whose model call can take several requests' pairs: a ``score(pairs)`` method and a ``scorer``
        slot that, when set, replaces it in ``process``."""
        return [p for p in self.engine.rerankers if hasattr(p, "scorer") and callable(getattr(p, "score", None))]

    @contextmanager
    def request(self, dense: bool) -> Iterator[None]:
        """Around one request's retrieval: the batchers it may submit to wait for it (within their window)."""
        mine = ([self.embed] if dense else []) + list(self.rerank.values())
        for b in mine:
            b.expect()
        try:
            yield
        finally:
            for b in mine:
                b.unexpect()

    def stats(self) -> dict[str, Any]:
        return {"query_embeddings": self.embed.stats(),
                **({"rerank": [b.stats() for b in self.rerank.values()]} if self.rerank else {})}
