"""Extractive answers (default, no LLM): the sentences of the top chunks most similar to the question,
each followed by a ``[n]`` citation of the source it came from. Deterministic and offline."""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ragkit.plugins import Plugin, Resources
from ragkit.types import Answer, Citation, Hit

NOT_FOUND = "I could not find an answer in the indexed documents."
_BLOCK_START = re.compile(r"([-*+>#\u2022]|\d+[.)])(\s|$)")  # a list item, quote or heading begins
_NUMBERED = re.compile(r"^\d+[.)]\s+")  # "1. " of a numbered list item
_WRAPPED = 60  # characters: a line at least this long that stops mid-sentence was wrapped
_SENT = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9`])")


def split_sentences(text: str) -> list[str]:
    """Candidate answer units of a chunk: sentences of its prose, and one unit per table row rendered as
    ``header: value; ...``. Headings are labels, not answers, and are left out."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        if _is_table_row(lines[i]):
            block = []
            while i < len(lines) and _is_table_row(lines[i]):
                block.append(lines[i])
                i += 1
            out.extend(_table_units(block))
            continue
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        # a hard-wrapped sentence (plain text, PDF pages) goes on: join the lines it runs over
        last = line
        while i < len(lines) and _continues(last, lines[i].strip()) and not _is_table_row(lines[i]):
            last = lines[i].strip()
            line = f"{line} {last}"
            i += 1
        line = _NUMBERED.sub("", line.lstrip(">*- ").strip())
        out.extend(s.strip() for s in _SENT.split(line) if s.strip())
    return out


def _continues(line: str, following: str) -> bool:
    """Whether the physical line ``following`` carries on the sentence ``line`` left open. Not when ``line`` ends a
    sentence (or a label, ``Note:``) or ``following`` starts a list item, quote or heading; yes when ``following``
    starts in lower case or with a digit, when ``line`` ends at a comma, or when ``line`` is as long as a wrapped
    line (a short line without a full stop is a heading or a label)."""
    if not following or line.endswith((".", "!", "?", ":")) or _BLOCK_START.match(following):
        return False
    return following[0].islower() or following[0].isdigit() or line.endswith(",") or len(line) >= _WRAPPED


def _is_table_row(line: str) -> bool:
    line = line.strip()
    return line.startswith("|") or " | " in line


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _table_units(block: list[str]) -> list[str]:
    rows = [_cells(r) for r in block if not all(re.fullmatch(r":?-{2,}:?", c) or not c for c in _cells(r))]
    if len(rows) < 2:
        return [", ".join(c for c in r if c) for r in rows]
    header, body = rows[0], rows[1:]
    return ["; ".join(f"{h}: {v}" if h else v for h, v in zip(header, r) if v) for r in body]


def question_similarity(embed, query: str, groups: list[list[str]]) -> list[np.ndarray]:
    """Cosine of each sentence of each group (e.g. one source's candidate sentences) to ``query``, per group, from
    one call of ``embed`` (normalised vectors) over the query and every sentence."""
    flat = [u for g in groups for u in g]
    if not flat:
        return [np.zeros(0) for _ in groups]
    vecs = embed([query] + flat)
    sims, out, at = vecs[1:] @ vecs[0], [], 0
    for g in groups:
        out.append(sims[at: at + len(g)])
        at += len(g)
    return out


def citation_for(n: int, hit: Hit) -> Citation:
    meta = hit.chunk.metadata
    return Citation(n=n, chunk_id=hit.chunk_id, doc_id=hit.doc_id, title=str(meta.get("title", "")),
                    source=str(meta.get("source", "")), page=meta.get("page"))


class ExtractiveAnswerer(Plugin):
    stage, name = "generator", "extractive"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_sentences: int = Field(3, ge=1, le=20)
        sources: int = Field(5, ge=1, le=20, description="top hits whose sentences are candidates")
        min_similarity: float = Field(0.25, ge=-1, le=1, description="below this, answer 'not found'")
        min_words: int = Field(4, ge=1, description="shorter sentences (headings, labels) are not candidates")

    def bind(self, resources: Resources) -> None:
        self._embed = resources.embed_cached

    def answer(self, query: str, hits: list[Hit]) -> Answer:
        picked = self._pick(query, hits)
        if not picked:
            return Answer(query=query, text=NOT_FOUND, citations=[], sources=hits)
        parts, used = [], {}
        for hit_idx, sentence in picked:
            n = hit_idx + 1
            used.setdefault(n, citation_for(n, hits[hit_idx]))
            parts.append(f"{sentence} [{n}]")
        return Answer(query=query, text=" ".join(parts), citations=[used[n] for n in sorted(used)], sources=hits)

    def stream(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        answer = self.answer(query, hits)
        yield answer.text
        yield answer

    def _pick(self, query: str, hits: list[Hit]) -> list[tuple[int, str]]:
        groups = [[s for s in split_sentences(hit.chunk.text) if len(s.split()) >= self.params.min_words]
                  for hit in hits[: self.params.sources]]
        cands = [(hi, si, s) for hi, g in enumerate(groups) for si, s in enumerate(g)]
        if not cands:
            return []
        sims = np.concatenate(question_similarity(self._embed, query, groups))
        # a small prior for higher-ranked sources breaks near-ties toward what retrieval trusted most
        prior = np.array([0.02 * (self.params.sources - c[0]) / self.params.sources for c in cands])
        order = np.argsort(-(sims + prior), kind="stable")
        chosen, seen = [], set()
        for i in order:
            if sims[i] < self.params.min_similarity or len(chosen) >= self.params.max_sentences:
                break
            key = cands[i][2].lower()
            if key in seen:
                continue
            seen.add(key)
            chosen.append(i)
        chosen.sort(key=lambda i: (cands[i][0], cands[i][1]))  # read in source order
        return [(cands[i][0], cands[i][2]) for i in chosen]
