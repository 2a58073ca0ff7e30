"""Synthetic training questions from the index's own chunks (InPars / GPL style).

For chunks sampled with a seed, an LLM writes up to ``per_chunk`` questions each chunk answers. A question is kept
only if it passes every filter, checked in this order (the first failing one is the reason it is counted under):

- ``too-short`` / ``too-long``: fewer than ``min_words`` or more than ``max_words`` words;
- ``not-a-question``: no question mark and no question word at the start;
- ``copied``: it repeats ``copy_ngram`` consecutive words of the chunk (or the whole question is in the chunk);
- ``duplicate``: the same question (case and punctuation aside) was already kept;
- ``round-trip``: the source chunk is not in the first-stage top ``round_trip_k`` for the question, so it is
  not a question this chunk answers in a way retrieval can see (or it is too generic).

Hard negatives come from the same retrieval: the top-ranked chunks of other documents. Output is appended to the
JSONL file chunk by chunk, and a ``.progress.jsonl`` sidecar records every processed chunk, so an interrupted run
resumes where it stopped (same seed, same sample order); the sidecar's first line holds the settings, and a run
with different ones refuses to mix into the same file. Each record notes the examples file's size after its
chunk, so a resumed run first cuts off what a kill left unaccounted for (a torn line, a chunk without a record).
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragkit.errors import RagkitError
from ragkit.finetune.data import Example, Passage, write_examples
from ragkit.progress import ProgressLog

PROMPTS = Path(__file__).parent / "prompts"
DEFAULT_PROMPT = "questions-v1"
_MARKER = re.compile(r"^=== (system|user) ===[ \t]*$", re.M)
_QWORDS = ("what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were",
           "do", "does", "did", "can", "could", "should", "will", "would", "has", "have", "had", "may", "in", "on",
           "for", "to")
_LEAD = re.compile(r"^\s*(?:[-*•]+|\(?\d+[.):]|q\d*[:.)]|question\s*\d*[:.)])\s*", re.I)
_WORD = re.compile(r"\w+")


@dataclass
class SynthSettings:
    n: int = 2000
    per_chunk: int = 2
    seed: int = 0
    min_words: int = 4
    max_words: int = 40
    copy_ngram: int = 8
    round_trip_k: int = 20
    negatives: int = 7
    negative_depth: int = 30
    mode: str = "hybrid"
    min_chunk_words: int = 20
    max_passage_words: int = 300
    max_tokens: int = 96
    temperature: float = 0.0
    prompt: str = DEFAULT_PROMPT


@dataclass
class SynthReport:
    out: str
    chunks_processed: int = 0
    chunks_available: int = 0
    generated: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    resumed_from: int = 0
    seconds: float = 0.0
    llm: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_prompt(name: str) -> list[tuple[str, str]]:
    """(role, text) pairs of a question-writing prompt: a built-in name or a file path, messages introduced by
    ``=== system ===`` / ``=== user ===`` lines, ``{passage}`` and ``{n}`` filled in per chunk."""
    path = PROMPTS / f"{name}.txt" if "/" not in name and "." not in name else Path(name).expanduser()
    if not path.is_file():
        raise RagkitError(f"question prompt {name!r}: no such file")
    parts = _MARKER.split(path.read_text(encoding="utf-8"))
    msgs = [(role, body.strip()) for role, body in zip(parts[1::2], parts[2::2])]
    if not any(role == "user" and "{passage}" in body for role, body in msgs):
        raise RagkitError(f"question prompt {path}: needs a '=== user ===' message containing {{passage}}")
    return msgs


def parse_questions(text: str, limit: int) -> list[str]:
    """Questions from an LLM reply: one per line, list markers and labels stripped."""
    out = []
    for line in text.splitlines():
        line = _LEAD.sub("", line.strip()).strip().strip('"').strip()
        if line.lower().startswith(("example", "passage", "here are", "questions")) and line.endswith(":"):
            continue
        if line:
            out.append(line)
        if len(out) >= limit:
            break
    return out


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def filter_reason(question: str, passage: str, s: SynthSettings, seen: set[str]) -> str | None:
    """Why a question is dropped before retrieval (None: it passes the text filters)."""
    words = _WORD.findall(question.lower())
    if len(words) < s.min_words:
        return "too-short"
    if len(words) > s.max_words:
        return "too-long"
    if "?" not in question and words[0] not in _QWORDS:
        return "not-a-question"
    body = " " + _norm(passage) + " "
    if " " + " ".join(words) + " " in body:
        return "copied"
    n = s.copy_ngram
    if len(words) >= n and any(" " + " ".join(words[i:i + n]) + " " in body for i in range(len(words) - n + 1)):
        return "copied"
    if _norm(question) in seen:
        return "duplicate"
    return None


def check_question(engine: Any, question: str, chunk: Any, s: SynthSettings,
                   seen: set[str]) -> tuple[str | None, int | None, list[Any]]:
    """(drop reason or None, rank of the source chunk, first-stage hits) for one generated question."""
    reason = filter_reason(question, chunk.text, s, seen)
    if reason:
        return reason, None, []
    hits = engine.retrieve(question, k=max(s.round_trip_k, s.negative_depth), mode=s.mode).hits
    rank = next((r for r, h in enumerate(hits[: s.round_trip_k], 1) if h.chunk_id == chunk.chunk_id), None)
    return ("round-trip" if rank is None else None), rank, hits


def _cut(text: str, max_words: int) -> str:
    words = text.split()
    if len(words) <= max_words:
        return text
    cut = " ".join(words[:max_words])
    end = max(cut.rfind(". "), cut.rfind("? "), cut.rfind("! "))
    return cut[: end + 1] if end > len(cut) // 2 else cut


def generate_questions(engine: Any, llm: Any, out: Path, settings: SynthSettings | None = None, *,
                       progress: Callable[[str, int, int], None] | None = None) -> SynthReport:
    """Write synthetic examples for the engine's committed index to ``out`` (JSONL), resuming an earlier run."""
    s = settings or SynthSettings()
    prompt = load_prompt(s.prompt)
    gen = engine.reader()
    if gen is None:
        raise RagkitError(f"{engine.store.location}: no committed index to sample chunks from (run ragkit ingest)")
    chunks = [c for c in gen.iter_chunks() if len(c.text.split()) >= s.min_chunk_words]
    if not chunks:
        raise RagkitError(f"{engine.store.location}: no chunk has {s.min_chunk_words}+ words to write questions for")
    chunks.sort(key=lambda c: c.chunk_id)
    random.Random(s.seed).shuffle(chunks)
    # what shapes the output (n is only a target: a later run with a larger n continues the same file)
    meta = {**{k: v for k, v in asdict(s).items() if k != "n"}, "llm": getattr(llm, "model_id", "?"),
            "index_generation": gen.name}
    side = ProgressLog(out.with_name(out.name + ".progress.jsonl"), {"settings": meta})
    if out.exists() and not side.path.exists() and out.stat().st_size:
        raise RagkitError(f"{out}: exists and was not written by ragkit finetune queries (no {side.path.name}); "
                          "choose another --out")
    records = side.read()
    if side.path.exists() and side.path.stat().st_size and side.found != side.header:
        what = (f"an earlier run used other settings ({side.found.get('settings')})" if side.found
                else "its first line is not a progress header")
        raise RagkitError(f"{side.path}: {what}; use another --out or delete the file and {out.name} to start over")
    # The examples file holds exactly what the progress records account for: anything after the last record's
    # end (examples of a chunk whose record was never written, or a line torn by a kill) is cut off.
    end = records[-1].get("out_bytes") if records else 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch()
    if end is not None and out.stat().st_size > end:
        os.truncate(out, end)
    done = {rec["chunk_id"] for rec in records}
    kept = sum(rec["kept"] for rec in records)
    generated = sum(rec["generated"] for rec in records)
    dropped: Counter = Counter()
    for rec in records:
        dropped.update(rec["dropped"])
    report = SynthReport(out=str(out), chunks_available=len(chunks), resumed_from=kept,
                         llm=getattr(llm, "model_id", "?"))
    seen: set[str] = set()
    if kept:
        from ragkit.finetune.data import read_examples

        seen = {_norm(ex.query) for ex in read_examples(out)}
    rng = random.Random(s.seed + 1)
    t0 = time.perf_counter()
    try:
        side.open()  # claims the examples file for this run's settings before the first chunk
        for chunk in chunks:
            if kept >= s.n:
                break
            if chunk.chunk_id in done:
                continue
            passage = _cut(chunk.text, s.max_passage_words)
            want = min(s.per_chunk, s.n - kept)
            messages = [{"role": role, "content": body.replace("{passage}", passage).replace("{n}", str(want))}
                        for role, body in prompt]
            reply = llm.chat(messages, max_tokens=s.max_tokens, temperature=s.temperature).text
            questions = parse_questions(reply, want)
            rec_dropped: Counter = Counter()
            examples = []
            for j, q in enumerate(questions):
                reason, rank, hits = check_question(engine, q, chunk, s, seen)
                if reason:
                    rec_dropped[reason] += 1
                    continue
                seen.add(_norm(q))
                pool = [Passage(id=h.chunk_id, doc_id=h.doc_id, text=h.chunk.text, rank=r)
                        for r, h in enumerate(hits, 1) if h.doc_id != chunk.doc_id]
                negs = sorted(rng.sample(pool, min(s.negatives, len(pool))), key=lambda p: p.rank or 0)
                examples.append(Example(qid=f"synth-{chunk.chunk_id}-{j}", query=q, source="synthetic",
                                        positives=[Passage(id=chunk.chunk_id, doc_id=chunk.doc_id, text=chunk.text,
                                                           rank=rank)],
                                        negatives=negs))
            write_examples(out, examples, append=True)
            side.add({"chunk_id": chunk.chunk_id, "generated": len(questions), "kept": len(examples),
                      "dropped": dict(rec_dropped), "out_bytes": out.stat().st_size})
            kept += len(examples)
            generated += len(questions)
            dropped.update(rec_dropped)
            report.chunks_processed += 1
            if progress:
                progress("questions", min(kept, s.n), s.n)
    finally:
        side.close()
    report.generated, report.kept, report.dropped = generated, kept, dict(dropped)
    report.seconds = round(time.perf_counter() - t0, 2)
    return report
