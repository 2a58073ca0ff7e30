"""Map errors of the cohere SDK to (retry | fail, one-line message). Kept apart so the chat backend and the
rerank plugin report failures the same way."""

from __future__ import annotations


def classify(exc: Exception, where: str) -> tuple[str, str]:
    status = getattr(exc, "status_code", None)
    name = exc.__class__.__name__
    if status in (401, 403):
        return "fail", f"cohere at {where}: authentication failed ({status}): check COHERE_API_KEY"
    if status == 429:
        return "retry", f"cohere at {where}: rate limit or quota exceeded (429) after retries"
    if status == 402:
        return "fail", f"cohere at {where}: quota exhausted (402)"
    if isinstance(status, int) and status >= 500:
        return "retry", f"cohere at {where}: server error {status} after retries"
    if isinstance(status, int):
        return "fail", f"cohere at {where}: HTTP {status}: {getattr(exc, 'body', '') or name}"
    if "Timeout" in name or "timeout" in str(exc).lower():
        return "retry", f"cohere at {where}: timed out after retries"
    if "Connect" in name or "connect" in str(exc).lower():
        return "fail", f"cohere at {where}: cannot connect ({name})"
    return "fail", f"cohere at {where}: {name}: {exc}"
