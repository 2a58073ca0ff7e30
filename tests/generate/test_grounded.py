"""The shared grounded-generation pieces: templates, packing, the citation check, replies, the small-model policy,
and the outcome (status, events) of the generator built from them."""

from __future__ import annotations

import pytest

from ragkit.errors import ConfigError
from ragkit.generate.citations import check_citations
from ragkit.generate.llama_cpp import LlamaCppGenerator
from ragkit.generate.packing import PromptTemplate, lost_in_the_middle, pack, prompt_tokens
from ragkit.generate.policy import SmallModelPolicy
from ragkit.generate.replies import (NOT_FOUND, asks_wh, drop_echoes, is_echo, is_not_found, is_question,
                                     may_be_echo, may_be_refusal, strip_lead_in)
from ragkit.llm import Usage

from ._hits import make_hits

LONG = " ".join(f"Sentence number {i} explains one more detail about the retention of logs and metrics."
                for i in range(40))


def test_invalid_citation_9_is_removed_and_reported():
    text = "Keys expire after 90 days [1]. Rotate them in Settings [9]. Both apply [1, 9][2]."
    out = check_citations(text, valid={1, 2}, n_hits=5)
    assert "[9]" not in out.text and "9]" not in out.text
    assert out.text == "Keys expire after 90 days [1]. Rotate them in Settings. Both apply [1][2]."
    assert out.cited == [1, 2]
    assert len(out.warnings) == 2 and all("[9]" in w and "no such source" in w for w in out.warnings)
    assert out.uncited == ["Rotate them in Settings."]


def test_citation_forms_are_normalised_and_unpacked_sources_rejected():
    out = check_citations("It is 7 days [Source 2]. Also [source 3, 1].", valid={1, 2}, n_hits=5)
    assert out.text == "It is 7 days [2]. Also [1]."
    assert out.cited == [1, 2]
    assert out.warnings == ["removed citation [3]: source 3 was not in the prompt"]


def test_not_found_reply_is_not_flagged():
    out = check_citations(NOT_FOUND, valid={1}, n_hits=1)
    assert out.uncited == [] and out.cited == [] and out.text == NOT_FOUND


@pytest.mark.parametrize("reply", ["I don't know.", "I don\u2019t know", "I do not know the answer", NOT_FOUND,
                                   "[1] not found in the indexed documents!", "NOT FOUND in the indexed-documents",
                                   "No found in the indexed documents.", "Not foud in the indexed documents."])
def test_declining_replies_are_recognised_while_streaming_and_at_the_end(reply):
    assert is_not_found(reply)
    for cut in range(1, len(reply) + 1):  # every prefix of a refusal is held back while streaming
        assert may_be_refusal(reply[:cut]) or reply.startswith("[1]"), reply[:cut]


@pytest.mark.parametrize("reply", ["Keys expire after 90 days [1].", "I do know: 90 days.", "Not all keys expire.",
                                   "It is found in the indexed documents [1].", "Note: keys expire [1]."])
def test_answers_are_not_taken_for_refusals(reply):
    assert not is_not_found(reply)
    assert not may_be_refusal(reply)


def test_lost_in_the_middle_puts_the_best_at_both_ends():
    assert lost_in_the_middle([1, 2, 3, 4, 5, 6]) == [1, 3, 5, 6, 4, 2]


def test_template_override_version_and_errors(tmp_path):
    builtin = PromptTemplate()
    assert builtin.version.startswith("answer-v1@")
    msgs = builtin.render("why?", [{"n": 1, "title": "T", "doc_id": "d", "text": "Because."}])
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "[1] T" in msgs[1]["content"] and "why?" in msgs[1]["content"]
    mine = tmp_path / "mine.j2"
    mine.write_text("=== user ===\n{% for s in sources %}<{{ s.n }}>{{ s.text }}{% endfor %} Q: {{ query }}\n")
    t = PromptTemplate(str(mine))
    assert t.version.startswith("mine@") and t.render("q", [{"n": 3, "text": "x"}]) == \
        [{"role": "user", "content": "<3>x Q: q"}]
    with pytest.raises(ConfigError, match="no such file"):
        PromptTemplate("answer-v99")
    (tmp_path / "bad.j2").write_text("no markers {{ query }}")
    with pytest.raises(ConfigError, match="=== user ==="):
        PromptTemplate(str(tmp_path / "bad.j2"))


def test_packing_never_exceeds_a_tiny_window_and_cuts_only_at_sentence_ends(smollm2_path):
    from ragkit.llm.llama_cpp import LlamaCppLLM

    llm = LlamaCppLLM(str(smollm2_path), n_ctx=512).warm_up()
    assert llm.context_window == 512
    hits = make_hits([LONG] * 12)
    p = pack("How long are logs kept?", hits, llm, PromptTemplate(), max_tokens=64, max_sources=12)
    assert p.sources, "at least part of the best source fits"
    assert p.prompt_tokens == prompt_tokens(llm, p.messages)
    assert p.prompt_tokens + 64 <= 512
    for src in p.sources:
        assert LONG.startswith(src["text"]) and src["text"].endswith(".")  # a whole-sentence prefix
    assert any(d.startswith("dropped") for d in p.decisions)
    assert [e.data["action"] for e in p.events][-2:] == ["dropped", "budget"] and {e.kind for e in p.events} == {"pack"}
    # the real call accepts it: the model's own length check (prompt + max_tokens <= window) passes
    usage = Usage()
    text = "".join(llm.stream(p.messages, max_tokens=8, usage=usage))
    assert text and usage.prompt_tokens == p.prompt_tokens


def test_window_too_small_for_the_prompt_alone_is_a_config_error(small_llm):
    with pytest.raises(ConfigError, match="context window"):
        pack("q", make_hits(["A."]), small_llm, PromptTemplate(), max_tokens=2040, max_sources=3)


def test_abstains_without_calling_the_llm():
    # the model path does not exist: any attempt to load or call the LLM would raise
    gen = LlamaCppGenerator(model="/nonexistent/model.gguf", abstain_below=0.3)
    hits = make_hits(["Unrelated text about invoices.", "Another page."], dense=0.12)
    ans = gen.answer("What is the capital of France?", hits)
    assert ans.status == "abstained" and ans.text == f"{NOT_FOUND} Nearest sources: doc1.md, doc2.md."
    assert ans.citations == [] and ans.usage == {} and ans.packed == [] and not ans.retried
    assert [h.doc_id for h in ans.sources] == ["doc1.md", "doc2.md"]
    assert ans.trace == ["abstained: best dense score 0.1200 < abstain_below 0.3"]
    assert ans.events[0].kind == "abstain" and ans.events[0].data == {"reason": "low_score", "score": "dense",
                                                                      "best": 0.12, "below": 0.3}
    chunks = list(gen.stream("What is the capital of France?", hits))
    assert chunks[0] == ans.text and chunks[-1].text == ans.text
    assert gen._llm is None  # never built


def test_abstain_reads_the_configured_score_kind():
    hits = make_hits(["x."], dense=0.9)
    assert SmallModelPolicy(abstain_score="final", min_best_score=2.0).abstain(hits).data["best"] == 1.0
    assert SmallModelPolicy(abstain_score="dense", min_best_score=0.5).abstain(hits) is None
    assert SmallModelPolicy(abstain_score="rerank", min_best_score=0.5).abstain(hits) is None  # no such score
    assert SmallModelPolicy(min_best_score=None).abstain(make_hits(["x."], dense=-1)) is None
    gen = LlamaCppGenerator(abstain_score="final", abstain_below=2.0)
    assert gen.policy == SmallModelPolicy(abstain_score="final", min_best_score=2.0)  # the parameters' policy
    none = LlamaCppGenerator(abstain_below=None).answer("q", [])
    assert none.status == "no_context" and none.trace == ["abstained: no sources retrieved"] and none.text == NOT_FOUND


def _packed(hits):
    return [{"n": i + 1, "doc_id": h.doc_id, "title": "", "text": h.chunk.text} for i, h in enumerate(hits)]


def test_finish_removes_an_invalid_citation_9(small_llm):
    gen = LlamaCppGenerator(model="smollm2", attribute_min=None)
    gen._llm = small_llm
    hits = make_hits(["Keys expire after 90 days.", "Rotate keys in Settings."])
    ans = gen.finish("q", hits, "Keys expire after 90 days [1][9].", _packed(hits), [], Usage(10, 5), {})
    assert ans.text == "Keys expire after 90 days [1]." and [c.doc_id for c in ans.citations] == ["doc1.md"]
    assert ans.status == "answered" and ans.packed == [1, 2]
    assert ans.events[-1].kind == "llm" and ans.events[-1].data["completion_tokens"] == 5
    assert ans.warnings == ["removed citation [9]: no such source (sources given: [1]-[2])"]
    assert ans.usage == {"prompt_tokens": 10, "completion_tokens": 5}


def test_a_refusal_with_stray_citations_cites_nothing(small_llm):
    gen = LlamaCppGenerator(model="smollm2", attribute_min=None)
    gen._llm = small_llm
    hits = make_hits(["Keys expire after 90 days.", "Rotate keys in Settings."])
    ans = gen.finish("q", hits, f"[1] {NOT_FOUND}", _packed(hits), [], Usage(10, 5), {"generate:llm": 0.1})
    assert ans.status == "declined" and ans.text.startswith(NOT_FOUND) and ans.citations == []
    assert ans.events[-1].kind == "declined" and ans.trace[-1] == "the model replied that the sources do not answer"
    assert ans.usage == {"prompt_tokens": 10, "completion_tokens": 5} and ans.timings == {"generate:llm": 0.1}


def test_uncited_sentences_are_attributed_by_similarity_or_flagged(embedder):
    gen = LlamaCppGenerator(model="smollm2", attribute_min=0.6)
    gen._llm = type("NoLLM", (), {"model_id": "none"})()
    gen._embed = embedder.embed
    hits = make_hits(["Invoices are sent on the first day of each month.", "API keys expire after 90 days."])
    raw = "API keys expire after ninety days. Bananas grow in tropical countries. Invoices are sent monthly [1]."
    ans = gen.finish("q", hits, raw, _packed(hits), [], Usage(), {})
    assert ans.text.startswith("API keys expire after ninety days [2]. Bananas grow in tropical countries.")
    assert {c.n for c in ans.citations} == {1, 2}
    assert any(t.startswith("uncited sentence, attributed to [2]") for t in ans.trace)
    assert "uncited sentence: Bananas grow in tropical countries." in ans.trace
    cites = [e.data for e in ans.events if e.kind == "citation"]
    assert [(c["action"], c.get("n")) for c in cites] == [("attributed", 2), ("uncited", None)]


def test_an_echo_restates_the_question_in_order_and_adds_nothing():
    q = "If the node running the scheduler dies, how long until alerts are evaluated again?"
    assert is_echo("If the node running the scheduler dies, alerts are evaluated again [2].", q)
    assert is_echo("How long until alerts are evaluated again", q)
    assert not is_echo("Alerts are evaluated again after 60 seconds [1].", q)  # a word of its own
    assert not is_echo("Alerts evaluated again", q)  # too short to call
    yes_no = "Is SSO available on the Team plan?"
    assert not is_echo("SSO is available on the Team plan [1].", yes_no)  # a reordered yes is an answer
    assert not is_echo("Yes, SSO available on the Team plan.", yes_no)
    text, dropped = drop_echoes("Is SSO available on the Team plan? No, only on Business [2].", yes_no)
    assert text == "No, only on Business [2]." and dropped == ["Is SSO available on the Team plan?"]
    # a sentence that asks a question answers nothing, whatever its words or citation
    assert drop_echoes("How? [2]. SSO needs Business [1].", yes_no) == ("SSO needs Business [1].", ["How? [2]."])
    assert drop_echoes("Does Beacon retry webhooks, and how often [1]?", q)[0] == ""
    assert not is_question("Retries happen 5 times [1].") and is_question("Why [3]?")
    # while streaming: held back as long as the words so far (the last one perhaps cut) can still be an echo
    assert may_be_echo("", q) and may_be_echo("If the node runn", q) and may_be_echo("If the node running ", q)
    assert not may_be_echo("If the node fails", q) and not may_be_echo("Within", q)
    assert may_be_echo("If the node running the scheduler dies [2", q)  # a marker being written is no word
    assert may_be_echo("If the node running the scheduler dies [2].", q)
    # articles do not count as words of one's own
    lb = "Which URL should our load balancer health check hit on the Beacon nodes?"
    assert is_echo("The URL should our load balancer health check hit on the Beacon nodes [2].", lb)
    assert may_be_echo("The", lb) and not may_be_echo("The path /healthz", lb)
    # a wh-question asks for something its words do not hold: a reordered restatement is an echo too
    wh = "How long are logs retained on Beacon Cloud?"
    assert asks_wh(wh) and asks_wh(q) and not asks_wh(yes_no)
    assert is_echo("Logs are retained on Beacon Cloud [1].", wh)
    assert not is_echo("Logs are retained on Beacon Cloud for 15 days [1].", wh)
    assert may_be_echo("Logs are retained on Bea", wh) and not may_be_echo("Logs are kept", wh)
    assert not is_echo("There is a way to see which keys were used [1].", "Is there a way to see which keys were used?")


def test_a_lead_in_copied_from_the_prompt_is_removed_with_its_quotes():
    prompt = "Sources: ...\nQuestion: where?\nThe sentence from the sources that answers the question:"
    lead = "The sentence from the sources that answers the question"
    assert strip_lead_in(f'{lead}: "Run it on the first node only." [1]', prompt) == (
        "Run it on the first node only. [1]", lead)
    assert strip_lead_in(f'{lead}: "{lead}: "Rotate the KEK yearly [3]. It runs online." [3]', prompt)[0] == (
        "Rotate the KEK yearly [3]. It runs online. [3]")
    # a colon that is not the prompt's own words stays
    assert strip_lead_in("Note: keys expire after 90 days [1].", prompt) == ("Note: keys expire after 90 days [1].", "")


def test_a_citation_moves_to_the_source_that_holds_the_sentence(embedder):
    gen = LlamaCppGenerator(model="smollm2", attribute_min=0.6, recite_margin=0.05)
    gen._llm = type("NoLLM", (), {"model_id": "none"})()
    gen._embed = embedder.embed
    hits = make_hits(["Invoices are sent on the first day of each month.", "API keys expire after 90 days."])
    raw = "When do API keys expire [2]? API keys expire after 90 days [1]. Invoices arrive on the first day [1]."
    ans = gen.finish("When do API keys expire?", hits, raw, _packed(hits), [], Usage(), {})
    assert ans.text == "API keys expire after 90 days [2]. Invoices arrive on the first day [1]."
    assert {c.n for c in ans.citations} == {1, 2}
    assert "dropped a sentence that only restates the question: When do API keys expire [2]?" in ans.trace
    assert any(t.startswith("citation [1] moved to [2]") for t in ans.trace)
    assert [e.kind for e in ans.events if e.kind in ("echo", "citation")] == ["echo", "citation"]
    moved = next(e.data for e in ans.events if e.kind == "citation")
    assert moved["action"] == "moved" and moved["from"] == [1] and moved["to"] == 2
    # both steps can be switched off
    keep = LlamaCppGenerator(model="smollm2", attribute_min=0.6, recite_margin=None, drop_echoes=False)
    keep._llm, keep._embed = gen._llm, embedder.embed
    assert keep.finish("When do API keys expire?", hits, raw, _packed(hits), [], Usage(), {}).text == raw
    # a reply that is nothing but the question is a refusal
    echo = gen.finish("When do API keys expire?", hits, "When do API keys expire [1]?", _packed(hits), [], Usage(),
                      {})
    assert echo.status == "declined" and echo.text.startswith(NOT_FOUND) and echo.citations == []


KEY_HITS = make_hits(["Keys expire after 90 days.", "Rotate keys in Settings."], dense=0.9)


def _repeat(path, what: str) -> str:
    """A template that makes the model repeat ``what`` (a deterministic reply from a real model)."""
    path.write_text("=== system ===\nYou repeat text exactly.\n=== user ===\nRepeat exactly this sentence and "
                    f"nothing else:\n{what}\n")
    return str(path)


def _refusing(tmp_path, llm, embed, retry_reply: str | None) -> LlamaCppGenerator:
    """A generator whose first reply is the refusal; the retry prompt (if any) asks for ``retry_reply``."""
    retry = _repeat(tmp_path / "quote.j2", retry_reply) if retry_reply is not None else None
    gen = LlamaCppGenerator(model="qwen0.5b", template=_repeat(tmp_path / "refuse.j2", "{{ not_found }}"),
                            retry_template=retry)
    gen._llm, gen._embed = llm, embed
    return gen


def test_a_refusal_is_asked_again_and_the_checked_retry_is_the_answer(tmp_path, qwen_llm, embedder):
    gen = _refusing(tmp_path, qwen_llm, embedder.embed, "{% for s in sources[:1] %}{{ s.text }} [1]{% endfor %}")
    chunks = list(gen.stream("When do keys expire?", KEY_HITS))
    ans = chunks[-1]
    # the copied sentence cites [1] (written by the model or attributed by similarity)
    assert ans.text.startswith("Keys expire after 90 days") and [c.n for c in ans.citations] == [1]
    assert not any(NOT_FOUND in c for c in chunks[:-1])  # the held-back refusal never reached the stream
    assert any(t.startswith("the model replied not found; asked again with prompt quote@") for t in ans.trace)
    assert any(t.startswith("retried reply supported") for t in ans.trace)
    assert ans.status == "answered" and ans.retried and ans.packed == [1, 2]
    retry = next(e for e in ans.events if e.kind == "retry")
    assert retry.data["why"] == "replied not found" and retry.data["template"].startswith("quote@")
    # without a retry prompt the refusal stands
    plain = _refusing(tmp_path, qwen_llm, None, None).answer("When do keys expire?", KEY_HITS)
    assert plain.status == "declined" and not plain.retried and plain.text.startswith(NOT_FOUND)
    assert plain.citations == []
    assert ans.usage["prompt_tokens"] > plain.usage["prompt_tokens"]  # both calls are counted


def test_a_retried_reply_unlike_the_sources_becomes_not_found(tmp_path, qwen_llm, embedder):
    gen = _refusing(tmp_path, qwen_llm, embedder.embed, "Bananas grow best in warm tropical countries [1].")
    ans = gen.answer("When do keys expire?", KEY_HITS)
    assert ans.status == "declined" and ans.retried and ans.text.startswith(NOT_FOUND) and ans.citations == []
    assert any(t.startswith("retried reply rejected") for t in ans.trace)
    check = next(e.data for e in ans.events if e.kind == "retry_check")
    assert check["check"] == "support" and not check["accepted"] and check["cosine"] < 0.6


def test_a_retried_reply_supported_by_a_source_but_not_about_the_question_becomes_not_found(tmp_path, qwen_llm,
                                                                                             embedder):
    question = "How do I reset my Windows password?"
    gen = _refusing(tmp_path, qwen_llm, embedder.embed, "Rotate keys in Settings [2].")
    ans = gen.answer(question, KEY_HITS)
    assert ans.status == "declined" and ans.citations == []
    assert any(t.startswith("retried reply supported") for t in ans.trace)  # a copied source sentence ...
    assert any(t.startswith("retried reply rejected: not about the question") for t in ans.trace)  # ... off-topic
    # the check can be switched off: the same reply is then the answer
    loose = _refusing(tmp_path, qwen_llm, embedder.embed, "Rotate keys in Settings [2].")
    loose.params.retry_min_relevance = None
    kept = loose.answer(question, KEY_HITS)
    assert kept.text.startswith("Rotate keys in Settings") and [c.n for c in kept.citations] == [2]
    # an on-topic retried reply passes it (and says so in the trace)
    on = _refusing(tmp_path, qwen_llm, embedder.embed, "Keys expire after 90 days [1].").answer(
        "When do keys expire?", KEY_HITS)
    assert on.text.startswith("Keys expire after 90 days")
    assert any(t.startswith("retried reply is about the question") for t in on.trace)



def test_relevance_is_judged_without_the_sentences_that_restate_the_question(embedder):
    question = "How do I reset my Windows password?"
    reply = "How do I reset my Windows password? Rotate keys in Settings [2]."
    ok, event = SmallModelPolicy(embed=embedder.embed).relevant(reply, question)
    assert not ok and event.text.endswith("Rotate keys in Settings.")  # the restated question is not counted
    assert event.data["check"] == "relevance" and event.data["cosine"] < 0.35
    echoing = SmallModelPolicy(drop_echoes=False, embed=embedder.embed)
    assert echoing.relevant(reply, question)[0]  # with the question's own words counted, it looks relevant


def test_a_reply_that_only_restates_the_question_is_asked_again(tmp_path, qwen_llm, embedder):
    gen = LlamaCppGenerator(model="qwen0.5b", template=_repeat(tmp_path / "echo.j2", "{{ query }} [2]"),
                            retry_template=_repeat(tmp_path / "quote.j2",
                                                   "{% for s in sources[:1] %}{{ s.text }} [1]{% endfor %}"))
    gen._llm, gen._embed = qwen_llm, embedder.embed
    question = "When do the keys expire?"
    chunks = list(gen.stream(question, KEY_HITS))
    ans = chunks[-1]
    assert ans.text.startswith("Keys expire after 90 days") and [c.n for c in ans.citations] == [1]
    assert not any("When do the keys" in c for c in chunks[:-1])  # the echo never reached the stream
    assert any(t.startswith("the model only restated the question; asked again") for t in ans.trace)
    assert ans.retried and next(e for e in ans.events if e.kind == "retry").data["why"] == "only restated the question"


def test_compress_keeps_each_sources_closest_sentences_in_document_order(embedder):
    policy = SmallModelPolicy(compress_to=2, embed=embedder.embed)
    first = ("Beacon was founded in 2019. API keys expire after 90 days. The office is in Lisbon. "
             "An expired key can be renewed from Settings.")
    table = "| Plan | Key lifetime |\n|---|---|\n| Free | 30 days |\n| Team | 90 days |\n| Business | 365 days |"
    hits = make_hits([first, table, "Left alone: beyond max_sources."])
    out = policy.compress("When do API keys expire, and can an expired key be renewed?", hits, max_sources=2)
    assert out[0].chunk.text == "API keys expire after 90 days.\nAn expired key can be renewed from Settings."
    assert out[1].chunk.text.count("\n") == 1 and "Plan: " in out[1].chunk.text  # table rows as 'header: value'
    assert out[2] is hits[2] and hits[0].chunk.text == first  # the retrieved hits themselves are untouched
    assert [h.doc_id for h in out] == [h.doc_id for h in hits] and out[0].scores == hits[0].scores
    with pytest.raises(ConfigError, match="parameter 'compress': .*greater than or equal to 1"):
        LlamaCppGenerator(model="smollm2", compress=0)
    with pytest.raises(ConfigError, match="parameter 'retry_min_relevance'"):
        LlamaCppGenerator(model="smollm2", retry_min_relevance="high")


def test_a_compressed_prompt_is_shorter_and_the_answer_keeps_the_retrieved_sources(small_llm, embedder):
    long = ("Beacon was founded in 2019. API keys expire after 90 days. The office is in Lisbon. The team has a cat. "
            "Lunch is at noon. The logo is blue. An expired key can be renewed from Settings.")
    hits = make_hits([long, "Invoices are sent monthly. Support answers by chat. The status page lists incidents."],
                     dense=0.9)
    answers = {}
    for compress in (None, 2):
        gen = LlamaCppGenerator(model="smollm2", compress=compress, max_tokens=24, retry_template=None)
        gen._llm, gen._embed = small_llm, embedder.embed
        answers[compress] = gen.answer("When do API keys expire?", hits)
    full, cut = answers[None], answers[2]
    assert any(t.startswith("compress: each source cut to its 2 sentences") for t in cut.trace)
    assert [e.kind for e in cut.events][:2] == ["prompt", "compress"] and cut.events[1].data == {"sentences": 2}
    assert cut.usage["prompt_tokens"] < full.usage["prompt_tokens"]
    assert cut.sources[0].chunk.text == long  # sources and citations are the retrieved chunks, not the cut text
    assert not any(t.startswith("compress:") for t in full.trace)
