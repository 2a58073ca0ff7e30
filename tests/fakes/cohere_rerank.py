"""A local stand-in for Cohere's HTTP API (it is unreachable from here), speaking the documented v2 wire format.

One handler per route in ``ROUTES`` (the chat API has its own fake, ``cohere_chat.py``). The server:

- accepts only ``Authorization: Bearer <VALID_KEY>``; any other key gets 401 ``{"message": ...}``
- answers from ``server.script`` first: a list of HTTP statuses to return, in order, before behaving normally
  (``[429]`` = one "too many requests", then success), so retries can be tested
- records every request (path, headers, JSON body) in ``server.requests``

Rerank scores are word overlap between query and document (a fake model, deterministic): the point is the wire
format, the status codes and the client's handling of them.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

VALID_KEY = "test-key"

ERRORS = {401: "invalid api token", 402: "please add a payment method", 429: "too many requests",
          500: "internal server error", 503: "service unavailable"}


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def rerank(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /v2/rerank: {model, query, documents: [str], top_n?} -> {id, results: [{index, relevance_score}],
    meta}. Results are sorted by relevance_score, best first."""
    for field in ("model", "query", "documents"):
        if field not in body:
            return 400, {"message": f"missing required field: {field}"}
    q = _words(body["query"])
    scored = []
    for i, doc in enumerate(body["documents"]):
        text = doc if isinstance(doc, str) else json.dumps(doc)
        w = _words(text)
        scored.append((len(q & w) / (len(q) or 1), i))
    scored.sort(key=lambda x: (-x[0], x[1]))
    top_n = body.get("top_n") or len(scored)
    return 200, {"id": str(uuid.uuid4()),
                 "results": [{"index": i, "relevance_score": round(s, 6)} for s, i in scored[:top_n]],
                 "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}}}


ROUTES: dict[str, Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]] = {"/v2/rerank": rerank}


class _Handler(BaseHTTPRequestHandler):
    server: "FakeCohere"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            return self._send(400, {"message": "invalid JSON body"})
        with self.server.lock:
            self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            forced = self.server.script.pop(0) if self.server.script else None
        if self.headers.get("Authorization") != f"Bearer {VALID_KEY}":
            return self._send(401, {"message": ERRORS[401]})
        if forced is not None:
            return self._send(forced, {"message": ERRORS.get(forced, f"status {forced}")})
        route = ROUTES.get(self.path.split("?")[0])
        if route is None:
            return self._send(404, {"message": f"no route {self.path}"})
        self._send(*route(body))


class FakeCohere(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.script: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "FakeCohere":
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
