"""What a model's reply says besides an answer: declining ("not found", "I don't know"), restating the question
(an echo), or repeating the prompt's last line before the answer (a lead-in). Every generator answers with the one
:data:`NOT_FOUND` sentence when it has no answer."""

from __future__ import annotations

import re

from ragkit.text import CITATION_MARKER, answer_sentences

NOT_FOUND = "Not found in the indexed documents."
"""The one sentence a generator answers with when the sources hold no answer (the prompts ask for it too)."""
REFUSALS = ("i dont know", "i do not know")  # other openings that decline, as normalised by norm_reply


def not_found_reply(nearest: list[str]) -> str:
    """:data:`NOT_FOUND`, naming the nearest documents when there are any."""
    return f"{NOT_FOUND} Nearest sources: {', '.join(dict.fromkeys(nearest))}." if nearest else NOT_FOUND


# --- declining ---------------------------------------------------------------------------------------------------

def norm_reply(text: str) -> str:
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


def may_be_refusal(text: str, not_found: str = NOT_FOUND) -> bool:
    """Whether a reply that starts with ``text`` may still be a refusal: streaming holds it back until it is not
    (most answers diverge at their first word, so they stream as before)."""
    have = norm_reply(text)
    if any(r.startswith(have) or have.startswith(r) for r in (norm_reply(not_found), *REFUSALS)):
        return True
    words, ref = have.split(), norm_reply(not_found).split()
    if text[-1:].isalpha():  # the last word may still be cut: compare the whole words only
        words = words[:-1]
    return len(words) <= len(ref) and _one_word_off(words, ref[: len(words)])


def is_not_found(text: str, not_found: str = NOT_FOUND) -> bool:
    """Whether a (complete) reply declines: it contains the not-found sentence (one word may be garbled) or opens
    with "I don't know"."""
    have, ref = norm_reply(text), norm_reply(not_found)
    if ref in have or have.startswith(REFUSALS):
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


def words(text: str) -> list[str]:
    """Lower-case words and numbers of ``text``, citation markers left out."""
    return re.findall(r"[a-z0-9]+", CITATION_MARKER.sub(" ", text.lower()))


def _content(ws: list[str]) -> list[str]:
    return [w for w in ws if w not in ARTICLES]


def _match_end(ws: list[str], question: list[str]) -> int | None:
    """Where in ``question`` an in-order match of ``ws`` ends (earliest match), or None when there is none."""
    at = 0
    for w in ws:
        try:
            at = question.index(w, at) + 1
        except ValueError:
            return None
    return at


def asks_wh(question: str) -> bool:
    """Whether ``question`` (or one of its clauses) opens with a wh-word: its answer needs a word it lacks."""
    return any(w[:1] and w[0] in WH for w in map(words, re.split(r"[,;:.?!]", question)))


def _restates(ws: list[str], qwords: list[str], wh: bool) -> bool:
    """Whether ``ws`` (articles removed) only repeat ``qwords``: in order, or in any order for a wh-question."""
    return set(ws) <= set(qwords) if wh else _match_end(ws, qwords) is not None


def is_echo(sentence: str, question: str) -> bool:
    """Whether ``sentence`` only restates ``question`` (see the comment above)."""
    ws = _content(words(sentence))
    return len(ws) >= ECHO_MIN_WORDS and _restates(ws, _content(words(question)), asks_wh(question))


def may_be_echo(text: str, question: str) -> bool:
    """Whether a reply that starts with ``text`` may still be an echo of ``question`` (streaming holds it back
    until it is not: most answers add a word of their own within a few tokens)."""
    qwords = _content(words(question))
    text = re.sub(r"\[[\d,;\s]*$", "", text)  # a citation marker still being written ("... organisation [2")
    ws = words(text)
    if not ws:
        return True
    partial = None if re.search(r"[^A-Za-z0-9]$", text) else ws.pop()
    ws = _content(ws)
    if asks_wh(question):  # any order: the cut word may still become any question word
        if not set(ws) <= set(qwords):
            return False
        rest = qwords
    else:  # in order: it may still become a question word after the match
        end = _match_end(ws, qwords)
        if end is None:
            return False
        rest = qwords[end:]
    return partial is None or any(q.startswith(partial) for q in [*rest, *ARTICLES])


def is_question(sentence: str) -> bool:
    """Whether an answer sentence asks a question ("How? [2].", "Does Beacon retry webhooks [1]?"): it answers
    nothing, whatever it cites."""
    return re.sub(r"[\s.]+$", "", CITATION_MARKER.sub("", sentence)).endswith("?")


def drop_echoes(text: str, question: str) -> tuple[str, list[str]]:
    """``text`` without its sentences that only restate the question or ask one, and those sentences."""
    kept, dropped = [], []
    for sent in answer_sentences(text.strip()):
        (dropped if is_echo(sent, question) or is_question(sent) else kept).append(sent)
    return " ".join(kept), [d.strip() for d in dropped]


# --- lead-ins ----------------------------------------------------------------------------------------------------

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
