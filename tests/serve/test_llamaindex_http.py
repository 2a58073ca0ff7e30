"""The LlamaIndex HTTP retriever (ragkit/integrations/llamaindex.py) as a client of a running server; it lives
here because the server fixtures do."""

from __future__ import annotations

from ragkit.integrations.llamaindex import RagkitHTTPRetriever
from tests.integrations.test_llamaindex import query_engine
from tests.serve.conftest import KEYS


def test_http_retriever_against_a_running_server(server):
    retriever = RagkitHTTPRetriever(server + "/v1", api_key=KEYS["globex"], k=4)
    response = query_engine(retriever).query("how do I change invoices")
    assert len(response.source_nodes) == 4
    assert response.source_nodes[0].node.metadata["doc_id"] == "globex/invoices.md"
    assert all(n.node.metadata["tenant"] == "globex" for n in response.source_nodes)
    bad = RagkitHTTPRetriever(server, api_key="nope")
    try:
        bad.retrieve("invoices")
        raise AssertionError("expected an error")
    except Exception as exc:
        assert "HTTP 401" in str(exc) and "invalid API key" in str(exc)
