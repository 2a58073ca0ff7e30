from ragkit.generate.extractive import ExtractiveAnswerer
from ragkit.generate.replies import NOT_FOUND

from ._hits import make_hits


def test_answer_cites_the_right_source(mini_index):
    ans = mini_index.query("How many days are logs retained on the Enterprise plan?", k=4)
    assert "400 days" in ans.text and ans.status == "answered" and not ans.retried
    assert ans.packed == list(range(1, len(ans.sources) + 1))  # every source's sentences were candidates
    n = next(c.n for c in ans.citations if c.doc_id == "cloud/retention.txt")
    assert f"[{n}]" in ans.text and ans.sources[n - 1].doc_id == "cloud/retention.txt"
    # every [n] in the text points at a provided source
    import re

    assert {int(m) for m in re.findall(r"\[(\d+)\]", ans.text)} <= set(range(1, len(ans.sources) + 1))


def test_not_found_when_nothing_relevant(mini_index):
    ans = mini_index.query("What is the boiling point of tungsten in kelvin?", k=3)
    assert ans.status == "abstained" and ans.text == NOT_FOUND and ans.citations == []
    assert ans.trace[-1] == "generator extractive" and [e.kind for e in ans.events][-1] == "generator"


def test_no_hits_is_no_context(embedder):
    gen = ExtractiveAnswerer()
    gen._embed = embedder.embed
    ans = gen.answer("Anything?", [])
    assert ans.status == "no_context" and ans.text == NOT_FOUND and ans.packed == []
    assert gen.answer("When do keys expire?", make_hits(["API keys expire after 90 days."])).status == "answered"
