"""classify: regex / keyword routes become a hard pre-filter or a soft, extra filtered ranking."""

from __future__ import annotations

import pytest

from ragkit import Engine
from ragkit.errors import ConfigError
from ragkit.plugins import registry

SELFHOSTED = {"pattern": r"self[- ]?hosted|on[- ]prem|\bserver\b", "filter": "product=selfhosted"}


def test_filter_route_restricts_both_branches(mini_index):
    cfg = {"transforms": [{"name": "classify", "routes": [SELFHOSTED]}]}
    with Engine.open(mini_index.store.path, cfg) as eng:
        hits = eng.retrieve("how do I rotate an API key on my self-hosted server?", k=10).hits
        assert hits and {h.chunk.metadata["product"] for h in hits} == {"selfhosted"}
        # a question no route matches is left alone: the cloud page comes back
        hits = eng.retrieve("how do I rotate an API key?", k=10).hits
        assert "cloud" in {h.chunk.metadata.get("product") for h in hits}


def test_boost_route_adds_a_filtered_ranking_without_hiding_the_rest(mini_index):
    route = {**SELFHOSTED, "mode": "boost", "name": "selfhosted"}
    q = "how do I rotate an API key on my self-hosted server?"
    with Engine.open(mini_index.store.path) as plain:
        before = plain.retrieve(q, k=10).hits
    with Engine.open(mini_index.store.path, {"transforms": [{"name": "classify", "routes": [route]}]}) as eng:
        r = eng.retrieve(q, k=10)
    assert "bm25#selfhosted" in " ".join(r.trace) and "dense#selfhosted" in " ".join(r.trace)
    assert "cloud" in {h.chunk.metadata.get("product") for h in r.hits}  # not hidden
    rank = lambda hits: next(i for i, h in enumerate(hits) if h.doc_id == "selfhosted/api-keys.md")  # noqa: E731
    assert rank(r.hits) <= rank(before)


def test_keywords_and_first_match_wins():
    c = registry.create("transform", {"name": "classify", "routes": [
        {"keywords": ["invoice", "refund"], "filter": "product=all"}, {"pattern": "invoice", "filter": "x=1"}]})
    assert [r.filter for r in c.routes_for("Where is my Invoice?")] == ["product=all"]
    assert [r.filter for r in c.routes_for("invoices")] == ["x=1"]  # keywords match whole words, patterns anywhere
    assert c.transform("nothing here") == ["nothing here"]


@pytest.mark.parametrize("route,msg", [({"pattern": "(", "filter": "a=1"}, "bad regular expression"),
                                       ({"filter": "a=1"}, "needs a 'pattern' or 'keywords'"),
                                       ({"pattern": "x", "filter": "a >> 1"}, "filter 'a >> 1'")])
def test_bad_routes_are_config_errors(route, msg):
    with pytest.raises(ConfigError, match=msg):
        registry.create("transform", {"name": "classify", "routes": [route]})
