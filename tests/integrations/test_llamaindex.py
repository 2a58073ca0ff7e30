"""ragkit as a LlamaIndex retriever, inside a real RetrieverQueryEngine (no LLM: response_mode="no_text")."""

from __future__ import annotations

from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeRelationship

from ragkit.integrations.llamaindex import RagkitRetriever


def query_engine(retriever):
    from llama_index.core.llms import MockLLM
    from llama_index.core.response_synthesizers.no_text import NoText

    # response_mode="no_text": no LLM runs. (LlamaIndex 0.14 still resolves Settings.llm for it, which would
    # look for the OpenAI package; its own MockLLM, never called, keeps it offline.)
    return RetrieverQueryEngine(retriever=retriever, response_synthesizer=NoText(llm=MockLLM()))


def test_query_engine_returns_ragkit_nodes_with_scores_and_metadata(mini_index):
    retriever = RagkitRetriever(mini_index, k=3, mode="hybrid")
    response = query_engine(retriever).query("How do I rotate an API key?")
    nodes = response.source_nodes
    expected = mini_index.retrieve("How do I rotate an API key?", k=3, mode="hybrid").hits
    assert [n.node.node_id for n in nodes] == [h.chunk_id for h in expected]
    assert [n.score for n in nodes] == [h.score for h in expected]
    top = nodes[0].node
    assert top.metadata["doc_id"] == "cloud/api-keys.md" and top.metadata["product"] == "cloud"
    assert set(top.metadata["scores"]) == {"bm25", "dense", "rrf"}
    assert top.relationships[NodeRelationship.SOURCE].node_id == "cloud/api-keys.md"
    assert "Rotate" in top.get_content()
    llm_view = top.get_content(metadata_mode=MetadataMode.LLM)
    assert "product: cloud" in llm_view and "sha256" not in llm_view and "source:" not in llm_view


def test_filter_and_mode_pass_through(mini_index):
    retriever = RagkitRetriever(mini_index, k=5, mode="bm25", filter="product=selfhosted")
    nodes = retriever.retrieve("API keys")
    assert nodes and all(n.node.metadata["product"] == "selfhosted" for n in nodes)
    assert all(set(n.node.metadata["scores"]) == {"bm25"} for n in nodes)
