"""A local stand-in for Cohere's v2 HTTP API on 127.0.0.1, for tests only (api.cohere.com is unreachable here).
It speaks the documented wire format, so the real ``cohere`` SDK is pointed at it with ``base_url``.

Routes, one function each in ``ROUTES`` (``(method, path) -> handler(server, body, headers)``):

- ``POST /v2/chat``: JSON body with ``model``, ``messages`` and optional ``documents`` (strings or
  ``{"id", "data"}`` objects). Without ``stream`` the reply is ``{"id", "finish_reason", "message": {"role",
  "content": [{"type": "text", "text"}], "citations": [{"start", "end", "text", "sources": [{"type": "document",
  "id", "document"}], "type"}]}, "usage": {"billed_units", "tokens"}}``. With ``"stream": true`` it is a
  ``text/event-stream`` of ``message-start``, ``content-start``, ``content-delta`` (one per word),
  ``citation-start``/``citation-end``, ``content-end`` and ``message-end`` (finish reason + usage) events.
  The "model" answers with the first sentence of the document sharing the most words with the last user message
  and cites that document for the whole sentence; without documents it replies with a fixed sentence.
- ``POST /v2/rerank``: ``{model, query, documents, top_n?}`` -> ``{id, results: [{index, relevance_score}],
  meta}``, best first; the score is the share of the query's words found in the document.

Every request (path, lower-cased headers, JSON body) is recorded in ``server.requests``, before the key check.
Only ``Authorization: Bearer <api_key>`` is accepted (else 401 ``{"message": ...}``). Failure injection:
``server.fail_next = [429, 503]`` answers the next requests with those statuses (Cohere's messages), in order,
so retries can be tested. Use: ``with FakeCohere() as fake: ... base_url=fake.base_url ...``.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VALID_KEY = "test-key"
Reply = tuple[int, dict[str, Any]] | Iterator[tuple[str, dict[str, Any]]]  # JSON reply, or SSE (event, data) pairs


ERRORS = {401: "invalid api token", 402: "please add a payment method", 429: "too many requests",
          500: "internal server error", 503: "service unavailable"}


def _words(text: str, min_len: int = 1) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_]+", text.lower()) if len(w) >= min_len}


def _doc_text(doc: Any) -> str:
    if isinstance(doc, str):
        return doc
    data = doc.get("data", {})
    return str(data.get("snippet") or data.get("text") or " ".join(str(v) for v in data.values()))


def chat(server: "FakeCohere", body: dict[str, Any], headers: dict[str, str]) -> Reply:
    if not body.get("model") or not isinstance(body.get("messages"), list) or not body["messages"]:
        return 400, {"message": "invalid request: model and messages are required"}
    question = next((m.get("content", "") for m in reversed(body["messages"]) if m.get("role") == "user"), "")
    if isinstance(question, list):  # content blocks
        question = " ".join(b.get("text", "") for b in question if isinstance(b, dict))
    docs = body.get("documents") or []
    citations: list[dict[str, Any]] = []
    if docs:
        scored = [(len(_words(question, 3) & _words(_doc_text(d), 3)), -i, i) for i, d in enumerate(docs)]
        _, _, best = max(scored)
        doc = docs[best]
        sentence = re.split(r"(?<=[.!?])\s+", _doc_text(doc).strip())[0]
        text = sentence
        doc_id = doc.get("id") if isinstance(doc, dict) and doc.get("id") else f"doc:{best}"
        document = {"id": doc_id, **(doc.get("data", {}) if isinstance(doc, dict) else {"content": doc})}
        citations.append({"start": 0, "end": len(sentence), "text": sentence, "type": "TEXT_CONTENT",
                          "sources": [{"type": "document", "id": doc_id, "document": document}]})
    else:
        text = "I have no documents to answer from."
    n_in = sum(len(str(m.get("content", "")).split()) for m in body["messages"]) + \
        sum(len(_doc_text(d).split()) for d in docs)
    usage = {"billed_units": {"input_tokens": n_in, "output_tokens": len(text.split())},
             "tokens": {"input_tokens": n_in, "output_tokens": len(text.split())}}
    msg_id = str(uuid.uuid4())
    if not body.get("stream"):
        return 200, {"id": msg_id, "finish_reason": "COMPLETE",
                     "message": {"role": "assistant", "content": [{"type": "text", "text": text}],
                                 "citations": citations},
                     "usage": usage}

    def events() -> Iterator[tuple[str, dict[str, Any]]]:
        yield "message-start", {"type": "message-start", "id": msg_id,
                                "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "",
                                                      "tool_calls": [], "citations": []}}}
        yield "content-start", {"type": "content-start", "index": 0,
                                "delta": {"message": {"content": {"type": "text", "text": ""}}}}
        for piece in re.findall(r"\S+\s*", text):
            yield "content-delta", {"type": "content-delta", "index": 0,
                                    "delta": {"message": {"content": {"text": piece}}}}
        yield "content-end", {"type": "content-end", "index": 0}
        for i, cit in enumerate(citations):
            yield "citation-start", {"type": "citation-start", "index": i, "delta": {"message": {"citations": cit}}}
            yield "citation-end", {"type": "citation-end", "index": i}
        yield "message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": usage}}

    return events()


def rerank(server: "FakeCohere", body: dict[str, Any], headers: dict[str, str]) -> Reply:
    """POST /v2/rerank: {model, query, documents: [str], top_n?} -> {id, results: [{index, relevance_score}],
    meta}, best first. The "model" scores the share of the query's words found in the document."""
    for name in ("model", "query", "documents"):
        if name not in body:
            return 400, {"message": f"missing required field: {name}"}
    q = _words(body["query"])
    scored = sorted(((len(q & _words(d if isinstance(d, str) else json.dumps(d))) / (len(q) or 1), i)
                     for i, d in enumerate(body["documents"])), key=lambda x: (-x[0], x[1]))
    top_n = body.get("top_n") or len(scored)
    return 200, {"id": str(uuid.uuid4()),
                 "results": [{"index": i, "relevance_score": round(s, 6)} for s, i in scored[:top_n]],
                 "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}


ROUTES: dict[tuple[str, str], Callable[["FakeCohere", dict[str, Any], dict[str, str]], Reply]] = {
    ("POST", "/v2/chat"): chat,
    ("POST", "/v2/rerank"): rerank,
}


class FakeCohere:
    """``with FakeCohere() as fake: ... base_url=fake.base_url ...``"""

    def __init__(self, api_key: str = VALID_KEY) -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeCohere":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._json(400, {"message": "invalid JSON body"})
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"path": self.path, "body": body, "headers": headers})
                if headers.get("authorization") != f"Bearer {server.api_key}":
                    return self._json(401, {"message": "invalid api token"})
                if server.fail_next:
                    status = server.fail_next.pop(0)
                    return self._json(status, {"message": ERRORS.get(status, f"status {status}")})
                route = ROUTES.get(("POST", self.path.split("?")[0]))
                if route is None:
                    return self._json(404, {"message": f"no route {self.path}"})
                reply = route(server, body, headers)
                if isinstance(reply, tuple):
                    return self._json(*reply)
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                for event, data in reply:
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                self.close_connection = True

        return Handler
