"""The rules reranker: boosts, source priority, and "prefer the newest version" on the bundled corpus."""

from __future__ import annotations

import pytest

from ragkit import Engine
from ragkit.errors import ConfigError
from ragkit.plugins import registry
from ragkit.types import Chunk, Hit


def hit(doc_id, score, **meta):
    return Hit(Chunk(f"{doc_id}#0", doc_id, "text", 0, meta), score)


def make(**params):
    return registry.create("reranker", {"name": "rules", **params})


def test_no_rules_keeps_the_order():
    hits = [hit("a", 3.0), hit("b", 2.0), hit("c", 1.0)]
    out = make().process("q", hits)
    assert [h.doc_id for h in out] == ["a", "b", "c"] and [h.ranks["rules"] for h in out] == [1, 2, 3]


def test_boost_rule_demotes_and_promotes():
    hits = [hit("old", 3.0, status="deprecated"), hit("new", 2.0, status="current"), hit("x", 1.9)]
    out = make(rules=[{"when": "status=deprecated", "boost": 0.5}]).process("q", hits)
    assert [h.doc_id for h in out] == ["new", "x", "old"]
    assert out[-1].scores["rules"] == pytest.approx(1.5)
    keep = make(rules=[{"when": "status=deprecated", "boost": 0.5}]).process("q", [hit("a", 2.0, status="current")])
    assert keep[0].score == 2.0  # a rule that does not match changes nothing


def test_source_priority():
    hits = [hit("blog/post.md", 1.0), hit("guides/keys.md", 0.95), hit("admin/keys.md", 0.9)]
    out = make(source_priority=["admin/**", "guides/**"], priority_step=0.2).process("q", hits)
    assert [h.doc_id for h in out] == ["admin/keys.md", "guides/keys.md", "blog/post.md"]
    assert out[0].score == pytest.approx(0.9 * 1.2)


def test_prefer_newest_only_touches_versions_of_the_same_page():
    hits = [hit("v2022", 3.0, title="Rate limits", date="2022-03-01"),
            hit("other", 2.5, title="Retention", date="2020-01-01"),
            hit("v2024", 2.0, title="rate limits ", date="2024-09-10")]
    out = make(prefer_newest=True).process("q", hits)
    assert [h.doc_id for h in out] == ["other", "v2024", "v2022"]
    assert out[-1].score == pytest.approx(1.5)


def test_prefer_newest_steps_aside_for_a_question_about_an_older_version():
    def order(question):
        hits = [hit("v2022", 3.0, title="Rate limits", date="2022-03-01"),
                hit("v2024", 2.0, title="Rate limits", date="2024-09-10")]
        return [h.doc_id for h in make(prefer_newest=True, newest_query_not=r"\b20\d\d\b").process(question, hits)]

    assert order("What is the REST API rate limit?") == ["v2024", "v2022"]
    assert order("What was the REST API rate limit in 2022?") == ["v2022", "v2024"]
    with pytest.raises(ConfigError, match="regular expression"):
        make(prefer_newest=True, newest_query_not="(")


def test_a_rule_with_a_query_condition_applies_only_to_matching_questions():
    rules = [{"query": r"self-hosted|on-prem", "query_not": "cloud", "when": "product=cloud", "boost": 0.5}]

    def order(question):  # fresh hits each time: the reranker rescores them in place
        hits = [hit("cloud.md", 2.0, product="cloud"), hit("self.md", 1.9, product="selfhosted"), hit("all.md", 1.8)]
        return [h.doc_id for h in make(rules=rules).process(question, hits)]

    assert order("Where does the license go on a Self-Hosted install?") == ["self.md", "all.md", "cloud.md"]
    assert order("How long are logs kept?") == ["cloud.md", "self.md", "all.md"]  # no edition named
    assert order("Is it the same for cloud and self-hosted?") == ["cloud.md", "self.md", "all.md"]  # both named


def test_bad_rule_is_a_config_error():
    with pytest.raises(ConfigError, match=r"parameter 'rules.0.query': .*not a regular expression"):
        make(rules=[{"query": "(unclosed", "when": "status=x", "boost": 0.5}])
    with pytest.raises(ConfigError, match="expected field=value"):
        make(rules=[{"when": "status", "boost": 0.5}])
    with pytest.raises(ConfigError, match=r"unknown parameter 'rules.0.boots'; parameter 'rules.0.boost': Field required$"):
        make(rules=[{"when": "status=x", "boots": 0.5}])


def test_recency_rule_picks_the_current_rate_limit_page(beacon_engine):
    q = "What is the API rate limit per minute?"
    plain = [h.doc_id for h in beacon_engine.retrieve(q, k=10).hits]
    assert plain.index("admin/rate-limits-2022.md") < plain.index("admin/rate-limits.md")  # the problem
    eng = Engine.open(beacon_engine.store.path, {"rerankers": [{"name": "rules", "prefer_newest": True}]})
    ranked = [h.doc_id for h in eng.retrieve(q, k=50).hits]
    assert ranked.index("admin/rate-limits.md") < ranked.index("admin/rate-limits-2022.md")
    ans = eng.query(q, k=3)
    assert ans.sources[0].doc_id == "admin/rate-limits.md" and "1,200" in ans.text
    assert "reranker rules" in ans.trace
    eng.close()
