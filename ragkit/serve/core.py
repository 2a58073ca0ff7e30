"""What every endpoint shares: the server state, JSON errors, who is asking (auth + tenant filter), request
limits, tenant-fenced retrieval and an answer generated in a worker thread under a deadline and a token cap."""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from ragkit.config import ServeConfig
from ragkit.errors import ConfigError, IndexDirError, RagkitError
from ragkit.filter_expr import Filter, to_filter
from ragkit.retrieve.pipeline import Retrieval
from ragkit.serve.auth import ANONYMOUS, ApiKey, KeyRing
from ragkit.serve.batching import Batching, take_timings
from ragkit.types import Answer, Citation, Hit

log = logging.getLogger("ragkit.serve")


class ApiError(Exception):
    """An error response: status code, one-line message, OpenAI-style ``type`` and ``code``."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type, code, headers

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


@dataclass
class ServeState:
    engine: Any  # ragkit.engine.Engine
    keys: KeyRing | None
    settings: ServeConfig
    model_name: str = "ragkit"
    started: int = field(default_factory=lambda: int(time.time()))
    gate: threading.Semaphore | None = None
    batching: Batching | None = None  # set while the app runs with serve.batching on

    def __post_init__(self) -> None:
        n = self.settings.max_concurrent_retrievals
        self.gate = threading.BoundedSemaphore(n) if n else None


def state_of(request: Request) -> ServeState:
    return request.app.state.ragkit


async def principal(request: Request) -> ApiKey:
    """FastAPI dependency: the caller's key (ANONYMOUS when the server runs without keys). It runs on the event
    loop, so a request does not pay a trip through the thread pool for it; only a scrypt check that no earlier
    request has made goes to a worker thread."""
    st = state_of(request)
    if st.keys is None:
        return ANONYMOUS
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'", "authentication_error",
                       "missing_api_key", {"WWW-Authenticate": "Bearer"})
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "malformed Authorization header: expected 'Bearer <key>'", "authentication_error",
                       "invalid_api_key", {"WWW-Authenticate": "Bearer"})
    decided, key = st.keys.authenticate_fast(token.strip())
    if not decided:
        key = await run_in_threadpool(st.keys.authenticate, token.strip())
    if key is None:
        raise ApiError(401, "invalid API key", "authentication_error", "invalid_api_key",
                       {"WWW-Authenticate": "Bearer"})
    wait = key.take()
    if wait:
        raise ApiError(429, f"rate limit of {key.rpm} requests per minute exceeded for key {key.name!r}",
                       "rate_limit_error", "rate_limit_exceeded", {"Retry-After": str(max(1, round(wait)))})
    return key


def json_body(model: BaseModel) -> Response:
    """A response model as its JSON body, serialised once by pydantic. An endpoint returning this skips FastAPI's
    second pass over its own response (validate against ``response_model``, then encode), which cost about a sixth
    of a BM25 request's server CPU; ``response_model`` still documents the body in /docs."""
    return Response(model.model_dump_json(), media_type="application/json")


def require(key: ApiKey, endpoint: str) -> None:
    if endpoint not in key.allow:
        raise ApiError(403, f"key {key.name!r} may not call {endpoint} (allowed: {', '.join(sorted(key.allow))})",
                       "permission_error", "endpoint_not_allowed")


def check_query(st: ServeState, text: str, what: str = "query") -> str:
    if not text.strip():
        raise ApiError(422, f"{what} is empty", code="empty_query")
    if len(text) > st.settings.max_query_chars:
        raise ApiError(422, f"{what} is {len(text)} characters; the limit is {st.settings.max_query_chars} "
                       "(serve.max_query_chars)", code="query_too_long")
    return text


def check_k(st: ServeState, k: int | None) -> int:
    k = k or st.engine.config.retrieval.k
    if k > st.settings.max_k:
        raise ApiError(422, f"k={k} is above the limit {st.settings.max_k} (serve.max_k)", code="k_too_large")
    return k


def tenant_filter(key: ApiKey, user_filter: Any) -> Filter:
    """The request's filter ANDed with the key's: a request can narrow its tenant's view, never widen it."""
    try:
        requested = to_filter(user_filter)
    except ConfigError as exc:
        raise ApiError(400, str(exc), code="invalid_filter") from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise ApiError(400, f"invalid filter: {exc}", code="invalid_filter") from None
    return key.filter & requested


def _passes(flt: Filter, hit: Hit) -> bool:
    meta = hit.chunk.metadata
    if "doc_id" not in meta:
        meta = {**meta, "doc_id": hit.doc_id}
    return flt.test(meta)


def retrieve(st: ServeState, query: str, k: int, flt: Filter, mode: str | None) -> Retrieval:
    """Tenant-fenced retrieval through the engine's shared pipeline. The filter is a pre-filter inside both
    branches; every hit is checked against it once more, so no plugin later in the pipeline can hand another
    tenant's chunk out."""
    take_timings()  # nothing left over from an earlier request of this worker thread
    try:
        if st.gate is None:
            r = _batched_retrieve(st, query, k, flt, mode)
        else:
            with st.gate:
                r = _batched_retrieve(st, query, k, flt, mode)
    except IndexDirError as exc:
        raise ApiError(503, f"index unavailable: {exc}", "server_error", "index_unavailable") from None
    except RagkitError as exc:
        raise ApiError(400, str(exc)) from None
    hits = [h for h in r.hits if _passes(flt, h)]
    if len(hits) != len(r.hits):
        log.error("dropped %d hits that failed the request filter after retrieval", len(r.hits) - len(hits))
    return Retrieval(hits, {**r.timings, **take_timings()}, r.trace, flt)


def _batched_retrieve(st: ServeState, query: str, k: int, flt: Filter, mode: str | None) -> Retrieval:
    if st.batching is None:
        return st.engine.retrieve(query, k=k, filter=flt, mode=mode)
    with st.batching.request(dense=(mode or st.engine.config.retrieval.mode) != "bm25"):
        return st.engine.retrieve(query, k=k, filter=flt, mode=mode)


# --- answers --------------------------------------------------------------------------------------------------

class GenerationTimeout(Exception):
    pass


_CITE = re.compile(r"\[(\d+)\]")
_WORD = re.compile(r"\S+")


def token_counter(engine) -> tuple[Any, str]:
    """How answer length is measured against max_tokens: the generator LLM's tokenizer, else words."""
    llm = getattr(engine.generator, "llm", None)
    if llm is not None and hasattr(llm, "count_tokens"):
        return llm.count_tokens, "tokens"
    return (lambda text: len(_WORD.findall(text))), "words"


def _cut_words(text: str, n: int) -> str:
    if n <= 0:
        return ""
    m = list(_WORD.finditer(text))
    return text if len(m) <= n else text[:m[n - 1].end()]


class AnswerJob:
    """The engine's answer stream (``Engine.answer_stream``, the same path as ``Engine.query``) for one request,
    run in a worker thread. Iterating yields text deltas until the answer ends, ``max_tokens`` is reached
    (``finish_reason = "length"``) or the deadline passes (GenerationTimeout). A stopped job stops pulling from
    the generator, which releases it."""

    def __init__(self, engine, question: str, retrieval: Retrieval, max_tokens: int, timeout: float) -> None:
        self.engine, self.question, self.retrieval, self.hits = engine, question, retrieval, retrieval.hits
        self.max_tokens, self.timeout = max_tokens, timeout
        self.count, self.unit = token_counter(engine)
        self.answer: Answer | None = None
        self.finish_reason = "stop"
        self.text = ""
        self.used = 0
        self.seconds = 0.0
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="ragkit-answer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        stream = None
        try:
            stream = self.engine.answer_stream(self.question, self.retrieval)
            for item in stream:
                if self._stop.is_set():
                    break
                self._q.put(item)
            self._q.put(StopIteration())
        except BaseException as exc:  # handed to the request thread
            self._q.put(exc)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    pass

    def cancel(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[str]:
        deadline = self._t0 + self.timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                try:
                    if remaining <= 0:
                        raise queue.Empty
                    item = self._q.get(timeout=remaining)
                except queue.Empty:
                    raise GenerationTimeout(f"no complete answer within {self.timeout:g} s "
                                            "(serve.generation_timeout)") from None
                if isinstance(item, StopIteration):
                    return
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, Answer):
                    self.answer = item
                    continue
                delta = str(item)
                n = self.count(delta)
                if self.used + n > self.max_tokens:
                    delta = _cut_words(delta, self.max_tokens - self.used) if self.unit == "words" else ""
                    self.finish_reason = "length"
                    self.used = self.max_tokens
                    if delta:
                        self.text += delta
                        yield delta
                    return
                self.used += n
                self.text += delta
                if delta:
                    yield delta
        finally:
            self.seconds = time.monotonic() - self._t0
            self.cancel()

    def run(self) -> "AnswerJob":
        for _ in self:
            pass
        return self

    # --- the result, once iterated -------------------------------------------------------------------------

    def final_text(self) -> str:
        if self.finish_reason == "stop" and self.answer is not None:
            return self.answer.text
        return self.text

    def sources(self) -> list[Hit]:
        """What the answer's [n] cite: the completed answer's sources (the SQL tool cites a table's description
        chunk), else the retrieved hits; only those that pass the request's filter."""
        hits = self.answer.sources if self.finish_reason == "stop" and self.answer is not None else self.hits
        flt = self.retrieval.filter
        return [h for h in hits if not flt or _passes(flt, h)]

    def extras(self) -> dict[str, Any]:
        return dict(self.answer.extras) if self.answer is not None else {}

    def citations(self) -> list[Citation]:
        """The answer's citations when it completed; else the [n] markers present in the text that was sent.
        Either way only citations of this request's own sources."""
        from ragkit.generate.citations import citation_for

        ids = {h.chunk_id for h in self.sources()}
        if self.finish_reason == "stop" and self.answer is not None:
            return [c for c in self.answer.citations if c.chunk_id in ids]
        out, seen = [], set()
        for m in _CITE.finditer(self.text):
            n = int(m.group(1))
            if 1 <= n <= len(self.hits) and n not in seen:
                seen.add(n)
                out.append(citation_for(n, self.hits[n - 1]))
        return sorted(out, key=lambda c: c.n)

    def usage(self) -> dict[str, int]:
        usage = dict(self.answer.usage) if self.answer is not None and self.answer.usage else {}
        if self.finish_reason != "stop" or "completion_tokens" not in usage:
            usage["completion_tokens"] = self.used  # words when the generator has no tokenizer (extractive)
        usage.setdefault("prompt_tokens", 0)
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return usage

    def warnings(self) -> list[str]:
        out = list(self.answer.warnings) if self.answer is not None else []
        if self.finish_reason == "length":
            out.append(f"answer cut at max_tokens={self.max_tokens} ({self.unit})")
        return out


def check_max_tokens(st: ServeState, max_tokens: int | None) -> int:
    cap = st.settings.max_tokens
    if max_tokens is not None and max_tokens > cap:
        raise ApiError(422, f"max_tokens={max_tokens} is above the limit {cap} (serve.max_tokens)",
                       code="max_tokens_too_large")
    return max_tokens or cap


def start_answer(st: ServeState, question: str, retrieval: Retrieval, max_tokens: int) -> AnswerJob:
    return AnswerJob(st.engine, question, retrieval, max_tokens, st.settings.generation_timeout)


def timeout_error(exc: GenerationTimeout) -> ApiError:
    return ApiError(504, str(exc), "timeout_error", "generation_timeout")


def run_job(job: "AnswerJob") -> None:
    """Run a non-streaming answer job; a timeout is a 504, any other ragkit failure a 502 (JSON errors)."""
    try:
        job.run()
    except GenerationTimeout as exc:
        raise timeout_error(exc) from None
    except RagkitError as exc:
        raise ApiError(502, f"generation failed: {exc}", "server_error", "generation_failed") from None
