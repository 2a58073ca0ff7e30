"""Plain data that flows between stages: Document -> Chunk -> Hit -> Answer.

These are dataclasses with no behaviour beyond (de)serialisation, so every stage can be written and tested alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass
class Segment:
    """A part of a document that chunks must not cross (a PDF page, for instance), with its own metadata."""

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TableColumn:
    """One column of a :class:`Table`: its SQL name, the header it came from, its inferred type (``integer``,
    ``decimal``, ``date``, ``text``) and the unit its cells shared (``"days"``, ``"%"``, ``"$"``), if any."""

    name: str
    header: str
    type: str = "text"
    unit: str = ""


@dataclass
class Table:
    """A table found in a document (a CSV file, a Markdown or HTML table): typed rows, where it came from
    (``heading`` is the path of section headings above it) and, once stored, its SQL name and the document's
    metadata (tenant fields included)."""

    columns: list[TableColumn]
    rows: list[list[Any]]
    title: str = ""
    heading: list[str] = field(default_factory=list)
    name: str = ""
    doc_id: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Document:
    """One logical document. ``segments`` is None when the whole text is one segment; ``tables`` holds the tables
    its loader found in it (typed, see ``ragkit.ingest.tables``)."""

    doc_id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    segments: list[Segment] | None = None
    tables: list[Table] = field(default_factory=list)

    def iter_segments(self) -> list[Segment]:
        return self.segments if self.segments is not None else [Segment(self.text, {})]


@dataclass
class LoadIssue:
    """A problem with one record inside a file (a malformed JSONL line); loaders yield it and carry on."""

    location: str
    reason: str


@dataclass
class Chunk:
    """The unit that is indexed and retrieved. ``metadata`` holds the document's metadata plus chunk fields."""

    chunk_id: str
    doc_id: str
    text: str
    position: int
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hit:
    """A retrieved chunk with its final score and the score and rank it had at every stage."""

    chunk: Chunk
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)

    @property
    def chunk_id(self) -> str:
        return self.chunk.chunk_id

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    def to_dict(self) -> dict[str, Any]:
        return {"chunk_id": self.chunk_id, "doc_id": self.doc_id, "score": self.score,
                "scores": self.scores, "ranks": self.ranks, "text": self.chunk.text,
                "position": self.chunk.position, "metadata": self.chunk.metadata}


@dataclass
class Citation:
    """``[n]`` in an answer points at ``hits[n-1]`` of the answer's sources."""

    n: int
    chunk_id: str
    doc_id: str
    title: str = ""
    source: str = ""
    page: int | None = None


Status = Literal["answered", "abstained", "declined", "no_context"]
"""How a generator ended: ``answered`` (text from the sources), ``abstained`` (it judged the sources too weak to
answer from and did not ask a model), ``declined`` (the model replied that the sources do not answer, or its reply
was rejected by a check), ``no_context`` (nothing to read: no hits, or none fit the prompt)."""


@dataclass
class Event:
    """One step an answer went through. ``kind`` names the step for programs (``retrieval``, ``generator``,
    ``prompt``, ``pack``, ``abstain``, ``llm``, ``retry``, ``citation``, ...), ``text`` says it for people (a line of
    ``Answer.trace``), ``data`` holds its values (numbers, ids)."""

    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Answer:
    """A generator's answer. ``status`` is the machine-readable outcome; ``retried`` says whether the model was asked
    a second time; ``packed`` holds the ``[n]`` of the sources the answer was read from (for an LLM, the sources in
    its prompt), and ``events`` what happened on the way (``trace`` renders them as text)."""

    query: str
    text: str
    citations: list[Citation]
    sources: list[Hit]
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, int] = field(default_factory=dict)  # prompt_tokens / completion_tokens when an LLM ran
    warnings: list[str] = field(default_factory=list)  # e.g. invalid citations removed
    status: Status = "answered"
    retried: bool = False
    packed: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the SQL tool's route, query, columns and rows

    @property
    def trace(self) -> list[str]:
        """The events as text lines, in order (a new list: add to ``events`` to change it)."""
        return [e.text for e in self.events]

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "answer": self.text, "status": self.status,
                "citations": [asdict(c) for c in self.citations],
                "sources": [h.to_dict() for h in self.sources],
                "timings": self.timings, "trace": self.trace, "usage": self.usage, "warnings": self.warnings,
                "retried": self.retried, "packed": self.packed, "events": [asdict(e) for e in self.events],
                "extras": self.extras}
