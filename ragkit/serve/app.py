"""The FastAPI application: ``create_app(engine_or_path, keys=...)``.

Endpoints: ``POST /v1/retrieve``, ``POST /v1/query``, ``POST /v1/chat/completions`` (OpenAI-compatible,
streaming as server-sent events), ``GET /v1/models``, ``GET /healthz``; OpenAPI docs at ``/docs``.

Index updates: a watcher thread asks the engine every ``serve.reload_interval`` seconds for the committed
generation, so a ``ragkit ingest`` into the served index is picked up without a restart. A request takes the
generation once, at its start, and keeps it to the end (the engine drops a replaced generation without
closing it; it is freed when its last request lets go of it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragkit.config import Config, ServeConfig
from ragkit.errors import RagkitError
from ragkit.serve import schemas as S
from ragkit.serve.auth import ApiKey, KeyRing
from ragkit.serve.batching import Batching
from ragkit.serve.core import (ApiError, ServeState, check_k, check_max_tokens, check_query, json_body,
                               principal, require, retrieve, run_job, start_answer, tenant_filter)

log = logging.getLogger("ragkit.serve")

ERRORS = {400: {"model": S.ErrorResponse, "description": "malformed JSON, invalid filter or option"},
          401: {"model": S.ErrorResponse, "description": "missing or invalid API key"},
          403: {"model": S.ErrorResponse, "description": "the key may not call this endpoint"},
          413: {"model": S.ErrorResponse, "description": "request body above serve.max_body_bytes"},
          422: {"model": S.ErrorResponse, "description": "invalid field, or a limit exceeded (query length, k, "
                                                         "max_tokens)"},
          429: {"model": S.ErrorResponse, "description": "the key's requests-per-minute limit"}}


def create_app(engine_or_path: Any, keys: KeyRing | str | Path | dict | None = None, *,
               config: str | Path | dict | Config | None = None, settings: ServeConfig | None = None,
               model_name: str = "ragkit") -> FastAPI:
    """The HTTP app over an Engine (or an index path, opened with ``config``). ``keys``: a KeyRing, a keys.toml
    path or its dict; None serves without authentication (the CLI then allows loopback addresses only).
    ``settings`` defaults to the config's ``[serve]`` section."""
    from ragkit.engine import Engine

    owns_engine = not isinstance(engine_or_path, Engine)
    engine = Engine.open(engine_or_path, config) if owns_engine else engine_or_path
    if settings is None:
        settings = engine.config.serve
    if isinstance(keys, (str, Path)):
        keys = KeyRing.load(keys)
    elif isinstance(keys, dict):
        keys = KeyRing.from_dict(keys)
    st = ServeState(engine=engine, keys=keys, settings=settings, model_name=model_name)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        stop = threading.Event()
        engine.warm_up(mode="hybrid")  # a request may ask for any mode: load the embedder too
        if settings.batching:
            st.batching = Batching(engine, window_ms=settings.batch_window_ms, max_batch=settings.batch_max,
                                   workers=settings.batch_workers).install()
        watcher = threading.Thread(target=_watch, args=(engine, settings.reload_interval, stop),
                                   name="ragkit-reload", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join(timeout=5)
            if st.batching is not None:
                st.batching.uninstall()
                st.batching = None
            if owns_engine:
                engine.close()

    app = FastAPI(title="ragkit", version=_version(), lifespan=lifespan,
                  description="Retrieval with cited answers over a ragkit index. Authenticate with "
                              "`Authorization: Bearer <key>`; each key sees only its tenant's documents.")
    app.state.ragkit = st
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    _error_handlers(app)

    @app.get("/healthz", tags=["service"])
    def healthz():
        """Liveness and readiness; no authentication, and nothing about what the index holds."""
        try:
            return {"status": "ok", "ready": engine.reader() is not None}
        except RagkitError as exc:
            log.error("healthz: %s", exc)
            return JSONResponse({"status": "error", "ready": False}, status_code=503)

    @app.get("/v1/stats", tags=["service"])
    def stats(key: ApiKey = Depends(principal)) -> dict[str, Any]:
        """Server counters (no document content): how many batches the micro-batcher ran and how large they were
        (``batching`` is null when serve.batching is off)."""
        b = st.batching
        return {"batching": None if b is None else b.stats()}

    @app.post("/v1/retrieve", response_model=S.RetrieveResponse, responses=ERRORS, tags=["ragkit"])
    def retrieve_(body: S.RetrieveRequest, key: ApiKey = Depends(principal)) -> Response:
        """Ranked chunks with per-stage scores and their metadata (source, title, page...)."""
        require(key, "retrieve")
        query = check_query(st, body.query)
        k = check_k(st, body.k)
        r = retrieve(st, query, k, tenant_filter(key, body.filter), body.mode)
        hits, timings = r.hits, r.timings
        return json_body(S.RetrieveResponse(query=query, mode=body.mode or engine.config.retrieval.mode, k=k,
                                            hits=[S.HitOut.of(i, h) for i, h in enumerate(hits, 1)],
                                            timings=timings))

    @app.post("/v1/query", response_model=S.QueryResponse, responses={**ERRORS, 504: {
        "model": S.ErrorResponse, "description": "no answer within serve.generation_timeout"}}, tags=["ragkit"])
    def query_(body: S.QueryRequest, key: ApiKey = Depends(principal)) -> Response:
        """An answer with [n] citations; ``sources[n-1]`` is what [n] cites."""
        require(key, "query")
        query = check_query(st, body.query)
        k = check_k(st, body.k)
        max_tokens = check_max_tokens(st, body.max_tokens)
        t0 = time.perf_counter()
        r = retrieve(st, query, k, tenant_filter(key, body.filter), body.mode)
        timings = dict(r.timings)
        job = start_answer(st, query, r, max_tokens)
        run_job(job)
        timings["generate"] = job.seconds
        timings["total"] = time.perf_counter() - t0
        return json_body(S.QueryResponse(query=query, answer=job.final_text(),
                                         citations=[S.CitationOut.of(c) for c in job.citations()],
                                         sources=[S.HitOut.of(i, h) for i, h in enumerate(job.sources(), 1)],
                                         finish_reason=job.finish_reason, usage=job.usage(),
                                         warnings=job.warnings(), timings=timings, extras=job.extras()))

    from ragkit.serve.openai_compat import router

    app.include_router(router)
    return app


def _watch(engine, interval: float, stop: threading.Event) -> None:
    """Open a newly committed generation off the request path (requests would otherwise do it lazily)."""
    last_error = None
    while not stop.wait(interval):
        try:
            engine.reader()
            last_error = None
        except Exception as exc:  # keep serving the generation we have; say so once
            if str(exc) != last_error:
                log.warning("index reload failed, still serving the previous generation: %s", exc)
                last_error = str(exc)


def _version() -> str:
    from ragkit import __version__

    return __version__


# --- errors ---------------------------------------------------------------------------------------------------

def _json_error(status: int, message: str, type: str, code: str | None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type, "code": code}}, status_code=status,
                        headers=headers)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return _json_error(400, f"request body is not valid JSON: {first.get('ctx', {}).get('error', '')}"
                               .rstrip(": "), "invalid_request_error", "invalid_json")
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        if loc == "body" and first.get("type") != "missing":
            return _json_error(400, "request body must be a JSON object", "invalid_request_error", "invalid_json")
        if first.get("type") == "extra_forbidden":
            msg = f"unknown field {loc!r}"
        elif first.get("type") == "missing":
            msg = f"{loc}: field required"
        else:
            msg = f"{loc}: {first.get('msg')}"
        return _json_error(422, msg, "invalid_request_error", "invalid_field")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _json_error(404, f"no such endpoint: {request.method} {request.url.path}",
                               "invalid_request_error", "not_found")
        if exc.status_code == 405:
            return _json_error(405, f"method {request.method} not allowed on {request.url.path}",
                               "invalid_request_error", "method_not_allowed", exc.headers)
        return _json_error(exc.status_code, str(exc.detail), "invalid_request_error", None, exc.headers)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):
        log.exception("internal error on %s %s", request.method, request.url.path)
        return _json_error(500, f"internal error: {type(exc).__name__}", "server_error", "internal_error")


class BodyLimit:
    """Pure ASGI middleware: a request body above ``max_bytes`` gets 413 before any endpoint reads it, whether
    the client sent Content-Length or a chunked body."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            return await self._reject(send, int(length))
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._reject(send, size)
            chunks.append(message)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in chunks if m["type"] == "http.request")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _reject(self, send, size: int) -> None:
        body = json.dumps({"error": {"message": f"request body of {size}+ bytes is above the limit of "
                                                f"{self.max_bytes} bytes (serve.max_body_bytes)",
                                     "type": "invalid_request_error", "code": "body_too_large"}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

