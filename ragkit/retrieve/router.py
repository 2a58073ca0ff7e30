"""Per question, where the answer comes from: ``passages`` (retrieved text, today's path), ``sql`` (the SQL tool over
the index's tables) or ``both`` (SQL when it works, with the passages kept as further sources).

Rules are regular expressions or keywords (like the ``classify`` transform's); the first matching rule decides.
With ``classifier = "llm"`` the configured LLM is asked whether the question needs a number looked up or computed
from a table (P(yes) >= ``router.llm_threshold``: ``sql``); ``"rules+llm"`` asks it only for questions no rule matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ragkit.config import RouterConfig

ROUTES = ("passages", "sql", "both")
_CLASSIFY_SYSTEM = ("Does answering the user's question need a value looked up, counted, summed, averaged or "
                    "compared in a table (a price, limit, quota, count, date, percentage, port or code)? "
                    "Reply with one word: yes or no.")
_CLASSIFY_SHOTS = [("How many seats does the Pro plan include?", "yes"), ("How do I reset my password?", "no"),
                   ("What is the largest file I can upload, in MB?", "yes"),
                   ("Why does the export fail with a timeout?", "no"), ("Which region opened last?", "yes"),
                   ("What does the audit log record?", "no")]


@dataclass
class Decision:
    route: str  # passages | sql | both
    reason: str  # which rule (or the classifier's probability) decided
    p_sql: float | None = None  # the LLM classifier's P(yes), when it ran


class Router:
    def __init__(self, cfg: RouterConfig, llm: Callable[[], Any] | None = None) -> None:
        self.cfg = cfg
        self._llm = llm
        self._rules = []
        for i, rule in enumerate(cfg.rules, 1):
            parts = [rule.pattern] if rule.pattern else []
            parts += [r"\b" + re.escape(k) + r"\b" for k in rule.keywords]
            if parts:
                self._rules.append((i, re.compile("|".join(parts), re.IGNORECASE), rule.route))

    def by_rules(self, question: str) -> Decision | None:
        for i, rx, route in self._rules:
            m = rx.search(question)
            if m:
                return Decision(route, f"rule {i} matched {m.group(0)!r}")
        return None

    def by_llm(self, question: str) -> Decision:
        if self._llm is None:
            from ragkit.errors import ConfigError

            raise ConfigError("router.classifier uses an LLM: configure an LLM generator or sql.llm")
        messages = [{"role": "system", "content": _CLASSIFY_SYSTEM}]
        for q, a in _CLASSIFY_SHOTS:
            messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        p = float(self._llm().yes_probability(messages + [{"role": "user", "content": question}]))
        return Decision("sql" if p >= self.cfg.llm_threshold else "passages", f"LLM classifier P(table)={p:.2f}", p)

    def route(self, question: str) -> Decision:
        mode = self.cfg.classifier
        if mode in ("rules", "rules+llm"):
            hit = self.by_rules(question)
            if hit is not None:
                return hit
            if mode == "rules":
                return Decision(self.cfg.default, "no rule matched")
        return self.by_llm(question)
