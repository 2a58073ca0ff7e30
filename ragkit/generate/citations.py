"""Citations of an answer: ``[n]`` markers parsed and checked against the sources in the prompt, the Citation an
``[n]`` stands for, and attribution by similarity (an uncited sentence gets the source holding its closest
sentence; a sentence citing the wrong neighbour is moved to the source that holds it).

Numbering: ``[n]`` always means ``Answer.sources[n - 1]`` (the retrieved hits in ranking order)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragkit.generate.replies import NOT_FOUND, is_not_found, words
from ragkit.text import CITATION_MARKER, answer_sentences, split_sentences
from ragkit.types import Citation, Event, Hit

Embed = Callable[[list[str]], np.ndarray]  # texts -> normalised vectors (the engine's embedder)

_NAMED = re.compile(r"\[\s*(?:source|src|doc(?:ument)?)s?\s*#?\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]", re.I)


def citation_for(n: int, hit: Hit) -> Citation:
    """The Citation ``[n]`` stands for when ``hit`` is the n-th source."""
    meta = hit.chunk.metadata
    return Citation(n=n, chunk_id=hit.chunk_id, doc_id=hit.doc_id, title=str(meta.get("title", "")),
                    source=str(meta.get("source", "")), page=meta.get("page"))


def _numbers(group: str) -> list[int]:
    """``"1, 2;3"`` (the inside of one marker) -> ``[1, 2, 3]``."""
    return [int(n) for n in re.split(r"[,;]", group)]


def cited_numbers(text: str) -> list[int]:
    """The source numbers of every ``[n]`` / ``[n, m]`` marker in ``text``, in order (repeats kept)."""
    return [n for g in CITATION_MARKER.findall(text) for n in _numbers(g)]


@dataclass
class CheckedText:
    text: str
    cited: list[int]
    warnings: list[str]
    uncited: list[str]


def check_citations(text: str, valid: set[int], n_hits: int, not_found: str = NOT_FOUND) -> CheckedText:
    """Keep each ``[n]`` that points at a source given to the model; remove the others (one warning each).
    ``[1, 2]`` and ``[Source 1]`` are normalised to ``[1][2]`` / ``[1]``. Sentences without any citation are
    returned in ``uncited`` (the answer is not changed for them)."""
    warnings: list[str] = []
    cited: list[int] = []
    text = _NAMED.sub(lambda m: "[" + m.group(1) + "]", text)

    def fix(m: re.Match) -> str:
        keep = []
        for n in _numbers(m.group(1)):
            if n in valid:
                keep.append(n)
                if n not in cited:
                    cited.append(n)
            elif 1 <= n <= n_hits:
                warnings.append(f"removed citation [{n}]: source {n} was not in the prompt")
            else:
                shown = f"[{min(valid)}]-[{max(valid)}]" if valid else "none"
                warnings.append(f"removed citation [{n}]: no such source (sources given: {shown})")
        return "".join(f"[{n}]" for n in dict.fromkeys(keep))

    text = CITATION_MARKER.sub(fix, text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    uncited = []
    if text and not is_not_found(text, not_found):
        for sent in answer_sentences(text):
            if not CITATION_MARKER.search(sent) and len(sent.split()) >= 3:
                uncited.append(sent.strip())
    return CheckedText(text, sorted(cited), warnings, uncited)


# --- attribution by similarity ----------------------------------------------------------------------------------

def source_similarity(embed: Embed, sentences: list[str], packed: list[dict[str, Any]]) -> tuple[list[int], Any]:
    """The packed sources' numbers and, per sentence and source, the best cosine between the sentence and one of
    that source's sentences: shape (len(sentences), len(numbers))."""
    cands = [(s["n"], u) for s in packed for u in split_sentences(s["text"])]
    if not sentences or not cands:
        return [], np.zeros((len(sentences), 0))
    vecs = embed(list(sentences) + [u for _, u in cands])
    sims = vecs[: len(sentences)] @ vecs[len(sentences):].T  # (sentences, candidates)
    numbers = list(dict.fromkeys(n for n, _ in cands))
    owner = np.array([numbers.index(n) for n, _ in cands])
    best = np.full((len(sentences), len(numbers)), -1.0)
    for j in range(len(numbers)):
        best[:, j] = sims[:, owner == j].max(axis=1)
    return numbers, best


def closest_source_sentences(embed: Embed, sentences: list[str],
                             packed: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """For each sentence, the ``[n]`` of the packed source holding the most similar sentence and that cosine;
    empty when there is nothing to compare."""
    numbers, best = source_similarity(embed, sentences, packed)
    if not numbers:
        return []
    return [(numbers[int(row.argmax())], float(row.max())) for row in best]


def attribute(embed: Embed | None, text: str, uncited: list[str], packed: list[dict[str, Any]],
              min_cosine: float | None) -> tuple[str, list[Event]]:
    """``text`` with a ``[n]`` added to each uncited sentence whose closest packed source sentence has cosine
    >= ``min_cosine`` (n: that source), and one event per uncited sentence (attributed or left as is). Without an
    embedder or a threshold nothing is attributed."""
    found = {}
    if uncited and packed and embed is not None and min_cosine is not None:
        found = {sent: (n, sim) for sent, (n, sim) in zip(uncited, closest_source_sentences(embed, uncited, packed))
                 if sim >= min_cosine}
    events = []
    for sent in uncited:
        if sent in found:
            n, sim = found[sent]
            marked = (sent[:-1] + f" [{n}]" + sent[-1]) if sent[-1] in ".!?" else f"{sent} [{n}]"
            text = text.replace(sent, marked, 1)
            events.append(Event("citation", f"uncited sentence, attributed to [{n}] (similarity {sim:.2f}): {sent}",
                                {"action": "attributed", "n": n, "similarity": sim, "sentence": sent}))
        else:
            events.append(Event("citation", f"uncited sentence: {sent}", {"action": "uncited", "sentence": sent}))
    return text, events


def recite(embed: Embed, text: str, packed: list[dict[str, Any]], min_cosine: float,
           margin: float) -> tuple[str, list[Event]]:
    """Move a sentence's citation to the packed source that holds it: when the source sentence most similar to
    an answer sentence (cosine >= ``min_cosine``) lies in a source the sentence does not cite, and beats every
    cited source's best sentence by ``margin``, the sentence cites that source instead. Small models often copy a
    sentence from one source and number it after its neighbour."""
    events: list[Event] = []
    sents = answer_sentences(text)
    cited_at = [(i, cited_numbers(x)) for i, x in enumerate(sents)]
    cited_at = [(i, ns) for i, ns in cited_at if ns and len(words(sents[i])) >= 3]
    if not cited_at:
        return text, events
    numbers, sims = source_similarity(embed, [CITATION_MARKER.sub("", sents[i]).strip() for i, _ in cited_at],
                                      packed)
    if not numbers:
        return text, events
    for (i, ns), row in zip(cited_at, sims):
        best = {n: float(v) for n, v in zip(numbers, row)}
        top = max(best, key=best.get)
        held = max(best.get(n, -1.0) for n in ns)
        if top in ns or best[top] < min_cosine or best[top] - held < margin:
            continue
        old = sents[i]
        first = CITATION_MARKER.search(old)
        text = text.replace(old, old[: first.start()] + f"[{top}]" + CITATION_MARKER.sub("", old[first.end():]), 1)
        events.append(Event("citation", f"citation {''.join(f'[{n}]' for n in ns)} moved to [{top}] (similarity "
                                        f"{best[top]:.2f} vs {held:.2f}): {CITATION_MARKER.sub('', old).strip()}",
                            {"action": "moved", "from": ns, "to": top, "similarity": best[top], "held": held}))
    return text, events
