"""OpenAI-compatible endpoints: ``POST /v1/chat/completions`` (plain and ``stream: true`` server-sent events)
and ``GET /v1/models``, so any OpenAI client or chat UI can talk to ragkit.

Retrieval uses the conversation: the last user message, followed by up to three earlier user messages (most
recent first) while they fit ``serve.max_query_chars``; the generator answers the last user message from
those sources. ragkit extras: the response (and the last streamed chunk, the one with ``finish_reason``)
carries ``sources`` (the retrieved chunks; ``[n]`` in the answer is ``sources[n-1]``) and ``citations``.
Request extras (``extra_body`` in the openai client): ``k``, ``mode``, ``filter``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from ragkit.errors import RagkitError
from ragkit.serve import schemas as S
from ragkit.serve.auth import ApiKey
from ragkit.serve.core import (ApiError, AnswerJob, GenerationTimeout, ServeState, check_k, check_max_tokens,
                               check_query, json_body, log, principal, require, retrieve, run_job, start_answer,
                               state_of, tenant_filter, timeout_error)

router = APIRouter(prefix="/v1", tags=["openai-compatible"])

EARLIER_TURNS = 3


def retrieval_query(messages: list[S.ChatMessage], max_chars: int) -> tuple[str, str]:
    """(question, retrieval query) of a conversation: the last user message, and that message followed by
    earlier user messages, most recent first, while they fit ``max_chars``."""
    users = [m.text().strip() for m in messages if m.role == "user"]
    users = [u for u in users if u]
    if messages[-1].role != "user" or not messages[-1].text().strip():
        raise ApiError(400, "the last message must be a non-empty user message", code="no_user_message")
    question = users[-1]
    parts = [question]
    for earlier in reversed(users[:-1][-EARLIER_TURNS:]):
        if sum(len(p) + 1 for p in parts) + len(earlier) > max_chars:
            break
        parts.append(earlier)
    return question, "\n".join(parts)


@router.get("/models", response_model=S.ModelList)
def models(request: Request, key: ApiKey = Depends(principal)) -> S.ModelList:
    st = state_of(request)
    return S.ModelList(data=[S.ModelCard(id=st.model_name, created=st.started)])


@router.post("/chat/completions", response_model=S.ChatCompletionResponse, responses={
    200: {"content": {"text/event-stream": {}}, "description": "a chat.completion, or chat.completion.chunk "
                                                                 "events when stream is true"}})
def chat_completions(body: S.ChatCompletionRequest, request: Request, key: ApiKey = Depends(principal)):
    st = state_of(request)
    require(key, "chat")
    if body.model != st.model_name:
        raise ApiError(404, f"model {body.model!r} not found (this server serves {st.model_name!r})",
                       code="model_not_found")
    if body.n != 1:
        raise ApiError(400, "n must be 1", code="unsupported_n")
    if len(body.messages) > st.settings.max_messages:
        raise ApiError(422, f"{len(body.messages)} messages; the limit is {st.settings.max_messages} "
                       "(serve.max_messages)", code="too_many_messages")
    question, rquery = retrieval_query(body.messages, st.settings.max_query_chars)
    check_query(st, question, "the last user message")
    k = check_k(st, body.k)
    max_tokens = check_max_tokens(st, body.max_completion_tokens or body.max_tokens)
    job = start_answer(st, question, retrieve(st, rquery, k, tenant_filter(key, body.filter), body.mode), max_tokens)
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_events(st, job, cid, created, include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    run_job(job)
    return json_body(S.ChatCompletionResponse(
        id=cid, created=created, model=st.model_name,
        choices=[S.ChatChoice(message=S.ChatChoiceMessage(content=job.final_text()), finish_reason=job.finish_reason)],
        usage=S.Usage(**job.usage()), sources=_sources(job), citations=[S.CitationOut.of(c) for c in job.citations()]))


def _sources(job: AnswerJob) -> list[S.HitOut]:
    return [S.HitOut.of(i, h) for i, h in enumerate(job.sources(), 1)]


def _sse(data: dict) -> str:
    return "data: " + json.dumps(data, ensure_ascii=False) + "\n\n"


def _events(st: ServeState, job: AnswerJob, cid: str, created: int, include_usage: bool) -> Iterator[str]:
    def chunk(delta: dict, finish: str | None = None, **extra) -> dict:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": st.model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    try:
        yield _sse(chunk({"role": "assistant", "content": ""}))
        for delta in job:
            yield _sse(chunk({"content": delta}))
        yield _sse(chunk({}, job.finish_reason,
                         sources=[s.model_dump() for s in _sources(job)],
                         citations=[S.CitationOut.of(c).model_dump() for c in job.citations()]))
        if include_usage:
            yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": st.model_name,
                        "choices": [], "usage": job.usage()})
    except GenerationTimeout as exc:
        yield _sse(timeout_error(exc).body())
    except RagkitError as exc:
        yield _sse(ApiError(502, f"generation failed: {exc}", "server_error", "generation_failed").body())
    except Exception as exc:  # the status line is already sent: report in-band
        log.exception("chat stream failed")
        yield _sse(ApiError(500, f"internal error: {type(exc).__name__}", "server_error", "internal_error").body())
    finally:
        job.cancel()
    yield "data: [DONE]\n\n"
