"""Hits built by hand for generator tests that do not need retrieval."""

from ragkit.types import Chunk, Hit


def make_hits(texts: list[str], dense: float = 0.6, prefix: str = "doc") -> list[Hit]:
    hits = []
    for i, text in enumerate(texts):
        doc_id = f"{prefix}{i + 1}.md"
        chunk = Chunk(chunk_id=f"{doc_id}#0", doc_id=doc_id, text=text, position=0,
                      metadata={"title": f"Title {i + 1}", "source": f"/docs/{doc_id}"})
        hits.append(Hit(chunk=chunk, score=1.0 / (i + 1), scores={"dense": dense - 0.01 * i, "rrf": 1.0 / (61 + i)}))
    return hits
