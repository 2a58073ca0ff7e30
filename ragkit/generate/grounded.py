"""What every LLM-backed generator shares: the prompt template, context packing, the abstain rule and the
citation check. The backend plugins (``llama_cpp.py``, ``openai.py``, ``cohere.py``) only say how to build their
:class:`~ragkit.llm.LLM` (and Cohere how to ground natively).

The flow of one answer::

    hits --abstain?--> "Not found in the indexed documents." + nearest sources   (no LLM call)
         --pack------> numbered sources that fit the window (whole sentences only)
         --template--> system + user messages
         --LLM-------> text deltas (streamed)
         --check-----> sentences that only restate the question dropped; invalid [n] removed (Answer.warnings);
                       a cited [n] moved to the source that holds the sentence when another one clearly does;
                       uncited sentences attributed by similarity or flagged (Answer.trace)

Numbering: ``[n]`` always means ``Answer.sources[n - 1]`` (the retrieved hits in ranking order); only the sources
that were packed into the prompt are valid targets.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import ConfigError
from ragkit.generate.extractive import citation_for
from ragkit.plugins import Plugin
from ragkit.types import Answer, Hit

NOT_FOUND = "Not found in the indexed documents."
PROMPTS = Path(__file__).parent / "prompts"
DEFAULT_TEMPLATE = "answer-v1"
DEFAULT_RETRY_TEMPLATE = "answer-retry-v1"
MESSAGE_SLACK = 8  # tokens a chat template adds around one message (role markers), when it cannot be measured


# --- prompt templates ------------------------------------------------------------------------------------------

class PromptTemplate:
    """A Jinja2 file holding two messages, each introduced by a marker line ``=== system ===`` / ``=== user ===``.

    ``name`` is a built-in template (a file stem under ``ragkit/generate/prompts/``) or a path. The version recorded
    in every answer's trace is the file stem plus the first 8 hex digits of the file's sha256, so an edited
    template is never mistaken for the original."""

    MARKER = re.compile(r"^=== (system|user) ===[ \t]*$", re.M)

    def __init__(self, name: str = DEFAULT_TEMPLATE) -> None:
        path = PROMPTS / f"{name}.j2" if "/" not in name and not name.endswith((".j2", ".txt")) else Path(name)
        path = path.expanduser()
        if not path.is_file():
            builtin = ", ".join(sorted(p.stem for p in PROMPTS.glob("*.j2")))
            raise ConfigError(f"prompt template {name!r}: no such file (give a path or one of: {builtin})")
        source = path.read_text(encoding="utf-8")
        self.path = path
        self.version = f"{path.stem}@{hashlib.sha256(source.encode()).hexdigest()[:8]}"
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False,
                                 trim_blocks=True, lstrip_blocks=True)
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"prompt template {path}: line {exc.lineno}: {exc.message}") from None
        if "user" not in self.MARKER.findall(self._template.render(query="", sources=[], not_found="")):
            raise ConfigError(f"prompt template {path}: needs a '=== user ===' marker line (and optionally "
                              "'=== system ===') before each message")

    def render(self, query: str, sources: list[dict[str, Any]], not_found: str = NOT_FOUND) -> list[dict[str, str]]:
        import jinja2

        try:
            text = self._template.render(query=query, sources=sources, not_found=not_found)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"prompt template {self.path}: {exc.message}") from None
        parts = self.MARKER.split(text)
        return [{"role": role, "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2])]


# --- context packing -------------------------------------------------------------------------------------------

_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]*[ \t]+|\n+")


def sentence_pieces(text: str) -> list[str]:
    """``text`` cut after each sentence end or line break; ``"".join(pieces) == text``. A trimmed source is a
    prefix of these pieces, so packing never ends a source mid-sentence."""
    pieces, start = [], 0
    for m in _SENT_END.finditer(text):
        if m.end() > start:
            pieces.append(text[start:m.end()])
            start = m.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


@dataclass
class Packing:
    """The sources that made it into the prompt, in prompt order, and why."""

    sources: list[dict[str, Any]] = field(default_factory=list)  # {n, doc_id, title, text, tokens?}
    messages: list[dict[str, str]] = field(default_factory=list)
    prompt_tokens: int = 0
    budget: int = 0
    decisions: list[str] = field(default_factory=list)

    @property
    def numbers(self) -> set[int]:
        return {s["n"] for s in self.sources}


def prompt_tokens(llm: Any, messages: list[dict[str, str]]) -> int:
    """Tokens of ``messages`` as the model will see them: exact when the backend can render its chat template
    (llama.cpp), else the sum of the contents plus a few tokens per message."""
    exact = getattr(llm, "prompt_tokens", None)
    if callable(exact):
        return int(exact(messages))
    return sum(llm.count_tokens(m["content"]) + MESSAGE_SLACK for m in messages)


def lost_in_the_middle(items: list[Any]) -> list[Any]:
    """Best first and second-best last, weakest in the middle: 1 3 5 ... 6 4 2 (Liu et al., 2023)."""
    return items[0::2] + items[1::2][::-1]


def pack(query: str, hits: list[Hit], llm: Any, template: PromptTemplate, *, max_tokens: int,
         max_sources: int, order: str = "score", not_found: str = NOT_FOUND) -> Packing:
    """Add sources in score order while prompt + ``max_tokens`` fit ``llm.context_window``; the first source that
    does not fit whole is trimmed to its longest prefix of whole sentences that fits, and packing stops there."""
    window = int(llm.context_window)
    budget = window - max_tokens
    packed: list[dict[str, Any]] = []

    def measure(sources: list[dict[str, Any]]) -> tuple[int, list[dict[str, str]]]:
        shown = lost_in_the_middle(sources) if order == "lost-in-the-middle" else sources
        msgs = template.render(query, shown, not_found)
        return prompt_tokens(llm, msgs), msgs

    used, messages = measure([])
    if used > budget:
        raise ConfigError(f"the prompt alone takes {used} tokens and the answer {max_tokens}: more than the model's "
                          f"{window}-token context window; raise n_ctx or lower max_tokens")
    out = Packing(budget=budget)
    for i, hit in enumerate(hits[:max_sources]):
        meta = hit.chunk.metadata
        src = {"n": i + 1, "doc_id": hit.doc_id, "title": str(meta.get("title") or ""), "text": hit.chunk.text.strip()}
        n_used, msgs = measure(packed + [src])
        if n_used <= budget:
            packed.append(src)
            out.decisions.append(f"packed [{src['n']}] {hit.doc_id}: {n_used - used} tokens")
            used, messages = n_used, msgs
            continue
        pieces = sentence_pieces(src["text"])
        lo, hi, best = 1, len(pieces) - 1, None  # binary search the longest prefix of whole sentences that fits
        while lo <= hi:
            mid = (lo + hi) // 2
            trial = {**src, "text": "".join(pieces[:mid]).strip()}
            n_mid, msgs_mid = measure(packed + [trial])
            if n_mid <= budget:
                best, lo = (mid, trial, n_mid, msgs_mid), mid + 1
            else:
                hi = mid - 1
        if best is not None:
            mid, trial, n_mid, msgs_mid = best
            packed.append(trial)
            out.decisions.append(f"trimmed [{src['n']}] {hit.doc_id} to {mid}/{len(pieces)} sentences "
                                 f"({n_mid - used} tokens) to fit the window")
            used, messages = n_mid, msgs_mid
        rest = len(hits[:max_sources]) - len(packed)
        if rest:
            out.decisions.append(f"dropped {rest} source(s) from [{len(packed) + 1}]: the {window}-token window "
                                 f"minus {max_tokens} answer tokens is full ({used} prompt tokens)")
        break
    if len(hits) > max_sources:
        out.decisions.append(f"left out {len(hits) - max_sources} hit(s) beyond max_sources={max_sources}")
    out.sources = lost_in_the_middle(packed) if order == "lost-in-the-middle" else packed
    if order == "lost-in-the-middle" and len(packed) > 2:
        out.decisions.append("order lost-in-the-middle: " + " ".join(f"[{s['n']}]" for s in out.sources))
    out.messages, out.prompt_tokens = messages, used
    out.decisions.append(f"prompt {used} tokens + answer <= {max_tokens} tokens, window {window}")
    return out


# --- citation check ---------------------------------------------------------------------------------------------

_NAMED = re.compile(r"\[\s*(?:source|src|doc(?:ument)?)s?\s*#?\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]", re.I)
_GROUP = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_ANSWER_SENT = re.compile(r"(?<=[.!?])\s+(?=[^\s\[])")


def _numbers(group: str) -> list[int]:
    """``"1, 2;3"`` (the inside of one marker) -> ``[1, 2, 3]``."""
    return [int(n) for n in re.split(r"[,;]", group)]


def cited_numbers(text: str) -> list[int]:
    """The source numbers of every ``[n]`` / ``[n, m]`` marker in ``text``, in order (repeats kept)."""
    return [n for g in _GROUP.findall(text) for n in _numbers(g)]


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

    text = _GROUP.sub(fix, text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text)
    text = re.sub(r"[ \t]{2,}", " ", text).strip()
    uncited = []
    if text and not _is_not_found(text, not_found):
        for sent in _ANSWER_SENT.split(text):
            if not _GROUP.search(sent) and len(sent.split()) >= 3:
                uncited.append(sent.strip())
    return CheckedText(text, sorted(cited), warnings, uncited)


_REFUSALS = ("i dont know", "i do not know")


def _norm_reply(text: str) -> str:
    """Lower case letters and single spaces: apostrophes vanish ("don't" -> "dont"), other characters split."""
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower().replace("'", "").replace("\u2019", "")).split())


def _one_typo(a: str, b: str) -> bool:
    """Whether ``a`` becomes ``b`` by at most one inserted, deleted or replaced letter."""
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[i + 1:] == b[i + 1:] or a[i:] == b[i + 1:] or a[i + 1:] == b[i:]


def _one_word_off(have: list[str], ref: list[str]) -> bool:
    """Whether ``have`` is ``ref`` with at most one word misspelt by one letter: a small model sometimes garbles
    the sentence it was told to reply with ("No found in the indexed documents.")."""
    off = [(a, b) for a, b in zip(have, ref) if a != b]
    return len(have) == len(ref) and len(off) <= 1 and all(_one_typo(a, b) for a, b in off)


def _may_be_refusal(text: str, not_found: str) -> bool:
    """Whether a reply that starts with ``text`` may still be a refusal: streaming holds it back until it is not
    (most answers diverge at their first word, so they stream as before)."""
    have = _norm_reply(text)
    if any(r.startswith(have) or have.startswith(r) for r in (_norm_reply(not_found), *_REFUSALS)):
        return True
    words, ref = have.split(), _norm_reply(not_found).split()
    if text[-1:].isalpha():  # the last word may still be cut: compare the whole words only
        words = words[:-1]
    return len(words) <= len(ref) and _one_word_off(words, ref[: len(words)])


def _is_not_found(text: str, not_found: str) -> bool:
    """Whether a (complete) reply declines: it contains the not-found sentence (one word may be garbled) or opens
    with "I don't know"."""
    have, ref = _norm_reply(text), _norm_reply(not_found)
    if ref in have or have.startswith(_REFUSALS):
        return True
    words, n = have.split(), len(ref.split())
    return any(_one_word_off(words[i: i + n], ref.split()) for i in range(len(words) - n + 1))


# --- echoes of the question -------------------------------------------------------------------------------------
# Small models often open with the question turned into a statement ("Walk me through turning on SAML [2].") and
# stop there. Such a sentence states nothing from the sources, and its [n] is noise. An echo is a sentence of at
# least ECHO_MIN_WORDS words whose words all appear in the question, in the question's order (gaps allowed): a
# reordered yes/no reply ("SSO is available on the Team plan" to "Is SSO available on the Team plan?") or one
# that adds a word ("Yes", a number) is not an echo. A wh-question ("How long are logs retained on Beacon
# Cloud?", or a clause of the question opening with what/which/where/when/who/why/how) asks for something its
# words do not hold, so there any order counts: "Logs are retained on Beacon Cloud." is an echo.

ECHO_MIN_WORDS = 4
ARTICLES = frozenset({"the", "a", "an"})  # "The URL should our load balancer ..." still adds nothing
WH = frozenset({"what", "which", "where", "when", "who", "whom", "whose", "why", "how"})


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", _GROUP.sub(" ", text.lower()))


def _content(words: list[str]) -> list[str]:
    return [w for w in words if w not in ARTICLES]


def _match_end(words: list[str], question: list[str]) -> int | None:
    """Where in ``question`` an in-order match of ``words`` ends (earliest match), or None when there is none."""
    at = 0
    for w in words:
        try:
            at = question.index(w, at) + 1
        except ValueError:
            return None
    return at


def asks_wh(question: str) -> bool:
    """Whether ``question`` (or one of its clauses) opens with a wh-word: its answer needs a word it lacks."""
    return any(w[:1] and w[0] in WH for w in map(_words, re.split(r"[,;:.?!]", question)))


def _restates(words: list[str], qwords: list[str], wh: bool) -> bool:
    """Whether ``words`` (articles removed) only repeat ``qwords``: in order, or in any order for a wh-question."""
    return set(words) <= set(qwords) if wh else _match_end(words, qwords) is not None


def is_echo(sentence: str, question: str) -> bool:
    """Whether ``sentence`` only restates ``question`` (see the comment above)."""
    words = _content(_words(sentence))
    return len(words) >= ECHO_MIN_WORDS and _restates(words, _content(_words(question)), asks_wh(question))


def _may_be_echo(text: str, question: str) -> bool:
    """Whether a reply that starts with ``text`` may still be an echo of ``question`` (streaming holds it back
    until it is not: most answers add a word of their own within a few tokens)."""
    qwords = _content(_words(question))
    text = re.sub(r"\[[\d,;\s]*$", "", text)  # a citation marker still being written ("... organisation [2")
    words = _words(text)
    if not words:
        return True
    partial = None if re.search(r"[^A-Za-z0-9]$", text) else words.pop()
    words = _content(words)
    if asks_wh(question):  # any order: the cut word may still become any question word
        if not set(words) <= set(qwords):
            return False
        rest = qwords
    else:  # in order: it may still become a question word after the match
        end = _match_end(words, qwords)
        if end is None:
            return False
        rest = qwords[end:]
    return partial is None or any(q.startswith(partial) for q in [*rest, *ARTICLES])


def strip_lead_in(reply: str, prompt: str) -> tuple[str, str]:
    """``reply`` without a lead-in copied from the end of ``prompt`` (a small model answering the retry prompt
    often starts by repeating its last line, "The sentence from the sources that answers the question:", then
    quotes the sentence), and the removed lead-in ("" when there was none)."""
    removed: list[str] = []
    text, opened = reply.strip(), 0
    while (m := re.match(r"([^:\n]{8,160}):\s*", text)) and m.group(1).strip().lower() in prompt.lower():
        removed.append(m.group(1).strip())
        text = text[m.end():]
        if text[:1] in ('"', "\u201c"):
            text, opened = text[1:], opened + 1
    for _ in range(opened):  # the closing quote of each opened one: the last quote left in the text
        at = max(text.rfind('"'), text.rfind("\u201d"))
        if at >= 0:
            text = text[:at] + text[at + 1:]
    return (text.strip(), ": ".join(removed)) if removed else (reply, "")


def is_question(sentence: str) -> bool:
    """Whether an answer sentence asks a question ("How? [2].", "Does Beacon retry webhooks [1]?"): it answers
    nothing, whatever it cites."""
    return re.sub(r"[\s.]+$", "", _GROUP.sub("", sentence)).endswith("?")


def drop_echoes(text: str, question: str) -> tuple[str, list[str]]:
    """``text`` without its sentences that only restate the question or ask one, and those sentences."""
    kept, dropped = [], []
    for sent in _ANSWER_SENT.split(text.strip()):
        (dropped if is_echo(sent, question) or is_question(sent) else kept).append(sent)
    return " ".join(kept), [d.strip() for d in dropped]


# --- the shared generator ---------------------------------------------------------------------------------------

class GroundedParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_tokens: int = Field(256, ge=8, le=8192, description="answer budget in tokens (reserved in the window)")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    template: str = Field(DEFAULT_TEMPLATE, description="built-in prompt name or path to a .j2 template")
    max_sources: int = Field(5, ge=1, le=50, description="top hits considered for the prompt")
    order: Literal["score", "lost-in-the-middle"] = Field(
        "score", description="source order in the prompt: best first, or best at both ends")
    abstain_score: str = Field(
        "dense", description="which score the abstain rule reads: a stage name in Hit.scores (dense, bm25, rrf, "
                             "zscore, a reranker...) or 'final' (Hit.score)")
    abstain_below: float | None = Field(
        0.30, description="answer 'not found' without calling the LLM when the best hit's abstain_score is below "
                          "this (scale depends on the score kind; None disables)")
    nearest: int = Field(3, ge=0, le=20, description="sources listed when abstaining")
    retry_template: str | None = Field(
        DEFAULT_RETRY_TEMPLATE, description="when the model replies 'not found' although the abstain rule let the "
                                            "question through, ask once more with this prompt (built-in name or "
                                            "path); None disables")
    retry_min_support: float | None = Field(
        0.6, description="a retried reply is kept only if each of its sentences has MiniLM cosine >= this with some "
                         "source sentence (else the answer is 'not found'); None accepts it unchecked")
    retry_min_relevance: float | None = Field(
        0.35, description="a retried reply is kept only if it is about the question: MiniLM cosine >= this between "
                          "the question and the reply (else the answer is 'not found'); None skips the check")
    compress: int | None = Field(
        None, ge=1, le=50, description="give the model only each source's N sentences most similar to the question "
                                       "(MiniLM cosine; table rows as 'header: value' lines), in document order; "
                                       "None packs whole chunks")
    attribute_min: float | None = Field(
        0.6, description="a sentence the model left uncited gets the [n] of the packed source sentence most similar "
                         "to it (MiniLM cosine) when the similarity is at least this; None disables")
    recite_margin: float | None = Field(
        0.05, description="a cited sentence whose closest source sentence (MiniLM cosine, at least attribute_min) is "
                          "in another packed source, by at least this margin over the cited ones, cites that source "
                          "instead; None keeps the model's citations")
    drop_echoes: bool = Field(
        True, description="drop answer sentences that only restate the question (all words from the question, in "
                          "its order) or ask a question; a reply that is nothing else counts as declining (retry, "
                          "then 'not found')")


class GroundedGenerator(Plugin):
    """Base of the LLM-backed generators. Subclasses implement :meth:`_build_llm` (and may override
    :meth:`_generate` for native grounding, as Cohere does)."""

    stage = "generator"
    Params = GroundedParams

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._llm: Any = None
        self._template: PromptTemplate | None = None
        self._retry: PromptTemplate | None = None
        self._embed: Any = None

    def bind(self, resources: Any) -> None:
        self._embed = resources.embed_cached

    # -- wiring ---------------------------------------------------------------------------------------------------
    @property
    def llm(self) -> Any:
        """The backend's :class:`ragkit.llm.LLM`, shared with other stages through ``Resources.llm()``."""
        if self._llm is None:
            self._llm = self._build_llm()
        return self._llm

    def _build_llm(self) -> Any:
        raise NotImplementedError

    @property
    def template(self) -> PromptTemplate:
        if self._template is None:
            self._template = PromptTemplate(self.params.template)
        return self._template

    @property
    def retry_template(self) -> PromptTemplate | None:
        if self.params.retry_template is None:
            return None
        if self._retry is None:
            self._retry = PromptTemplate(self.params.retry_template)
        return self._retry

    def warm_up(self) -> None:
        _ = self.template, self.retry_template
        warm = getattr(self.llm, "warm_up", None)
        if callable(warm):
            warm()

    # -- the stage calls --------------------------------------------------------------------------------------------
    def answer(self, query: str, hits: list[Hit]) -> Answer:
        result = None
        for item in self.stream(query, hits):
            if isinstance(item, Answer):
                result = item
        assert result is not None
        return result

    def stream(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        abstain = self.abstain_reason(hits)
        if abstain is not None:
            ans = self.not_found(query, hits, [abstain])
            yield ans.text
            yield ans
            return
        yield from self._generate(query, hits)

    # -- pieces -----------------------------------------------------------------------------------------------------
    def abstain_reason(self, hits: list[Hit]) -> str | None:
        """Why to answer 'not found' without calling the LLM, or None."""
        if not hits:
            return "abstained: no sources retrieved"
        p = self.params
        if p.abstain_below is None:
            return None
        if p.abstain_score == "final":
            best = max(h.score for h in hits)
        else:
            values = [h.scores[p.abstain_score] for h in hits if p.abstain_score in h.scores]
            if not values:
                return None  # e.g. bm25-only retrieval with the dense rule: no evidence either way
            best = max(values)
        if best < p.abstain_below:
            return f"abstained: best {p.abstain_score} score {best:.4f} < abstain_below {p.abstain_below}"
        return None

    def not_found(self, query: str, hits: list[Hit], trace: list[str], warnings: list[str] | None = None) -> Answer:
        near = hits[: self.params.nearest]
        text = NOT_FOUND
        if near:
            names = ", ".join(dict.fromkeys(h.doc_id for h in near))
            text += f" Nearest sources: {names}."
        return Answer(query=query, text=text, citations=[], sources=near, trace=list(trace),
                      warnings=list(warnings or []))

    def _generate(self, query: str, hits: list[Hit]) -> Iterator[str | Answer]:
        from ragkit.llm import Usage

        p = self.params
        t = time.perf_counter()
        shown = self.compress(query, hits) if p.compress is not None else hits  # what the model reads
        packing = pack(query, shown, self.llm, self.template, max_tokens=p.max_tokens, max_sources=p.max_sources,
                       order=p.order)
        t_pack = time.perf_counter() - t
        trace = [f"prompt {self.template.version}", *packing.decisions]
        if shown is not hits:
            trace.insert(1, f"compress: each source cut to its {p.compress} sentences closest to the question")
        if not packing.sources:
            ans = self.not_found(query, hits, trace + ["abstained: no source fits the context window"],
                                 ["no source fits the context window"])
            yield ans.text
            yield ans
            return
        usage = Usage()
        parts: list[str] = []
        t = time.perf_counter()
        retry = self.retry_template
        held = retry is not None  # hold the first characters back until they cannot be a refusal
        for delta in self.llm.stream(packing.messages, max_tokens=p.max_tokens, temperature=p.temperature,
                                     usage=usage):
            parts.append(delta)
            if not held:
                yield delta
                continue
            text = "".join(parts)
            if not self._may_decline(text, query):
                held = False
                yield drop_echoes(text, query)[0] + (" " if text[-1:].isspace() else "") if p.drop_echoes else text
        raw = "".join(parts)
        declined = _is_not_found(raw, NOT_FOUND) or (p.drop_echoes and not drop_echoes(raw, query)[0].strip())
        if held and retry is not None and declined:
            # The abstain rule let the question through (the sources scored well) but the model declined or only
            # restated the question: ask once more with the retry prompt; its reply is the answer (it may decline).
            why = "replied not found" if _is_not_found(raw, NOT_FOUND) else "only restated the question"
            raw, packing = self._ask_again(query, shown, retry, why, packing, usage, trace)
            yield raw
        elif held:  # a short reply that never left the hold (a refusal, an echo without a retry prompt, ...)
            yield (drop_echoes(raw, query)[0] if p.drop_echoes else raw) or NOT_FOUND
        t_llm = time.perf_counter() - t
        yield self.finish(query, hits, raw, packing.sources, trace, usage,
                          {"generate:pack": t_pack, "generate:llm": t_llm})

    def compress(self, query: str, hits: list[Hit]) -> list[Hit]:
        """The first ``max_sources`` hits with their text cut to the ``compress`` sentences most similar to the
        question, kept in document order (contextual compression: less to read for a small model)."""
        from dataclasses import replace

        from ragkit.generate.extractive import question_similarity, split_sentences

        keep, head = self.params.compress, hits[: self.params.max_sources]
        units = [split_sentences(h.chunk.text) for h in head]
        if self._embed is None or not any(units):
            return hits
        out = []
        for h, us, mine in zip(head, units, question_similarity(self._embed, query, units)):
            best = sorted(sorted(range(len(us)), key=lambda i: -mine[i])[:keep])
            out.append(replace(h, chunk=replace(h.chunk, text="\n".join(us[i] for i in best) or h.chunk.text)))
        return out + hits[len(head):]

    def _ask_again(self, query: str, hits: list[Hit], retry: PromptTemplate, why: str, packing: Packing, usage: Any,
                   trace: list[str]) -> tuple[str, Packing]:
        """Ask once more with the retry prompt (not streamed: the reply is only shown once it is checked against the
        sources). Returns the reply (``NOT_FOUND`` when the check rejects it) and the packing it answers from."""
        p = self.params
        repack = pack(query, hits, self.llm, retry, max_tokens=p.max_tokens, max_sources=p.max_sources,
                      order=p.order)
        if not repack.sources:
            return NOT_FOUND, packing
        trace.append(f"the model {why}; asked again with prompt {retry.version}")
        raw = "".join(self.llm.stream(repack.messages, max_tokens=p.max_tokens, temperature=p.temperature,
                                      usage=usage))
        raw, lead = strip_lead_in(raw, repack.messages[-1]["content"])
        if lead:
            trace.append(f"removed the prompt's own words from the start of the retried reply: {lead!r}")
        ok, note = self.supported(raw, repack.sources)
        trace.append(note)
        if ok:
            ok, note = self.relevant(raw, query)
            if note:
                trace.append(note)
        return (raw if ok else NOT_FOUND), repack

    def _may_decline(self, text: str, query: str) -> bool:
        """Whether a reply starting with ``text`` may still turn out to decline (streaming holds it back)."""
        return _may_be_refusal(text, NOT_FOUND) or (self.params.drop_echoes and _may_be_echo(text, query))

    def finish(self, query: str, hits: list[Hit], raw: str, packed: list[dict[str, Any]], trace: list[str],
               usage: Any, timings: dict[str, float]) -> Answer:
        trace = trace + [f"llm {getattr(self.llm, 'model_id', '?')}: {usage.prompt_tokens} prompt + "
                         f"{usage.completion_tokens} completion tokens"]
        if self.params.drop_echoes and not _is_not_found(raw, NOT_FOUND):
            raw, echoes = drop_echoes(raw, query)
            trace += [f"dropped a sentence that only restates the question: {e}" for e in echoes]
            if not raw.strip():
                raw = NOT_FOUND
        checked = check_citations(raw, {s["n"] for s in packed}, len(hits))
        text = checked.text
        if _is_not_found(text, NOT_FOUND):
            # the model declined (possibly with stray markers such as "[1] Not found ..."): a refusal cites nothing
            ans = self.not_found(query, hits, trace + ["the model replied that the sources do not answer"],
                                 checked.warnings)
            ans.timings, ans.usage = timings, {"prompt_tokens": usage.prompt_tokens,
                                               "completion_tokens": usage.completion_tokens}
            return ans
        text = self.recite(text, packed, trace)
        attributed = self.attribute(checked.uncited, packed)
        for sent in checked.uncited:
            if sent in attributed:
                n, sim = attributed[sent]
                marked = (sent[:-1] + f" [{n}]" + sent[-1]) if sent[-1] in ".!?" else f"{sent} [{n}]"
                text = text.replace(sent, marked, 1)
                trace.append(f"uncited sentence, attributed to [{n}] (similarity {sim:.2f}): {sent}")
            else:
                trace.append(f"uncited sentence: {sent}")
        cited = sorted(set(cited_numbers(text)))
        return Answer(query=query, text=text, citations=[citation_for(n, hits[n - 1]) for n in cited],
                      sources=hits, timings=timings, trace=trace, warnings=checked.warnings,
                      usage={"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens})

    def supported(self, text: str, packed: list[dict[str, Any]]) -> tuple[bool, str]:
        """Whether every sentence of a retried answer is close (MiniLM cosine >= ``retry_min_support``) to some
        sentence of the packed sources: the retry prompt asks the model to copy the answering sentence, so a
        reply that matches none of them is not grounded (a refusal, or text from nowhere)."""
        from ragkit.generate.extractive import split_sentences

        if _is_not_found(text, NOT_FOUND):
            return True, "the retried reply is also 'not found'"
        if self._embed is None or self.params.retry_min_support is None:
            return True, "retried reply accepted unchecked (no embedder bound or retry_min_support = None)"
        answer = [a for a in split_sentences(_GROUP.sub("", text)) if a.strip()]
        closest = self._closest_source_sentences(answer, packed)
        if not closest:
            return False, "retried reply rejected: nothing to compare"
        worst = min(sim for _, sim in closest)
        if worst < self.params.retry_min_support:
            return False, (f"retried reply rejected: a sentence is unlike every source sentence (best cosine "
                           f"{worst:.2f} < retry_min_support {self.params.retry_min_support}): {text.strip()[:160]}")
        return True, f"retried reply supported by the sources (every sentence >= cosine {worst:.2f})"

    def relevant(self, text: str, query: str) -> tuple[bool, str]:
        """Whether a retried answer is about the question (MiniLM cosine >= ``retry_min_relevance``). The retry
        prompt presses the model to copy *some* source sentence, and a sentence can be supported by the sources
        without answering: "How do I reset my Windows password?" got a source's sentence about resetting 2FA."""
        floor = self.params.retry_min_relevance
        if floor is None or self._embed is None or _is_not_found(text, NOT_FOUND):
            return True, ""
        if self.params.drop_echoes:  # judged on what will be shown: a restated question is no evidence of relevance
            text = drop_echoes(text, query)[0]
        reply = re.sub(r"\s*" + _GROUP.pattern, "", text).strip()
        if not reply:
            return True, ""  # nothing left but echoes: finish() turns the reply into 'not found'
        q, r = self._embed([query, reply])
        sim = float(q @ r)
        if sim < floor:
            return False, (f"retried reply rejected: not about the question (cosine {sim:.2f} with the question < "
                           f"retry_min_relevance {floor}): {reply[:160]}")
        return True, f"retried reply is about the question (cosine {sim:.2f} with it)"

    def attribute(self, sentences: list[str], packed: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
        """For each uncited answer sentence, the packed source holding the most similar sentence, when the cosine
        similarity (the engine's embedder) reaches ``attribute_min``."""
        if not sentences or not packed or self.params.attribute_min is None or self._embed is None:
            return {}
        return {sent: (n, sim) for sent, (n, sim) in zip(sentences, self._closest_source_sentences(sentences, packed))
                if sim >= self.params.attribute_min}

    def recite(self, text: str, packed: list[dict[str, Any]], trace: list[str]) -> str:
        """Move a sentence's citation to the packed source that holds it: when the source sentence most similar to
        an answer sentence (cosine >= ``attribute_min``) lies in a source the sentence does not cite, and beats
        every cited source's best sentence by ``recite_margin``, the sentence cites that source instead. Small
        models often copy a sentence from one source and number it after its neighbour."""
        p = self.params
        if p.recite_margin is None or p.attribute_min is None or self._embed is None or not packed:
            return text
        sents = _ANSWER_SENT.split(text)
        cited_at = [(i, cited_numbers(x)) for i, x in enumerate(sents)]
        cited_at = [(i, ns) for i, ns in cited_at if ns and len(_words(sents[i])) >= 3]
        if not cited_at:
            return text
        numbers, sims = self._source_similarity([_GROUP.sub("", sents[i]).strip() for i, _ in cited_at], packed)
        if not numbers:
            return text
        for (i, ns), row in zip(cited_at, sims):
            best = {n: float(v) for n, v in zip(numbers, row)}
            top = max(best, key=best.get)
            held = max(best.get(n, -1.0) for n in ns)
            if top in ns or best[top] < p.attribute_min or best[top] - held < p.recite_margin:
                continue
            old = sents[i]
            first = _GROUP.search(old)
            text = text.replace(old, old[: first.start()] + f"[{top}]" + _GROUP.sub("", old[first.end():]), 1)
            trace.append(f"citation {''.join(f'[{n}]' for n in ns)} moved to [{top}] (similarity {best[top]:.2f} vs "
                         f"{held:.2f}): {_GROUP.sub('', old).strip()}")
        return text

    def _source_similarity(self, sentences: list[str], packed: list[dict[str, Any]]) -> tuple[list[int], Any]:
        """The packed sources' numbers and, per sentence and source, the best cosine (the engine's embedder)
        between the sentence and one of that source's sentences: shape (len(sentences), len(numbers))."""
        import numpy as np

        from ragkit.generate.extractive import split_sentences

        cands = [(s["n"], u) for s in packed for u in split_sentences(s["text"])]
        if not sentences or not cands:
            return [], np.zeros((len(sentences), 0))
        vecs = self._embed(list(sentences) + [u for _, u in cands])
        sims = vecs[: len(sentences)] @ vecs[len(sentences):].T  # (sentences, candidates)
        numbers = list(dict.fromkeys(n for n, _ in cands))
        owner = np.array([numbers.index(n) for n, _ in cands])
        best = np.full((len(sentences), len(numbers)), -1.0)
        for j in range(len(numbers)):
            best[:, j] = sims[:, owner == j].max(axis=1)
        return numbers, best

    def _closest_source_sentences(self, sentences: list[str], packed: list[dict[str, Any]]) -> list[tuple[int, float]]:
        """For each sentence, the ``[n]`` of the packed source holding the most similar sentence and that cosine
        (the engine's embedder); empty when there is nothing to compare."""
        numbers, best = self._source_similarity(sentences, packed)
        if not numbers:
            return []
        return [(numbers[int(row.argmax())], float(row.max())) for row in best]
