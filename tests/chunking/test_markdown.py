from ragkit.chunking.markdown import MarkdownChunker
from ragkit.chunking.sentence import SentenceChunker
from ragkit.types import Document

MD = """# Admin guide

Intro text for admins.

## API keys

Keys are rotated from Settings.

### Rotation

Press Rotate; the old key works for 24 hours.

## Retention

Logs are kept 30 days.
"""


def test_heading_paths(budget):
    chunks = MarkdownChunker().split(Document("admin.md", MD, "Admin"), budget)
    by_text = {c.text.split("\n")[-1]: c.metadata["heading_path"] for c in chunks}
    assert by_text["Press Rotate; the old key works for 24 hours."] == "Admin guide > API keys > Rotation"
    assert by_text["Logs are kept 30 days."] == "Admin guide > Retention"


def test_prefix_headings(budget):
    chunks = MarkdownChunker(prefix_headings=True).split(Document("admin.md", MD, "Admin"), budget)
    assert any(c.text.startswith("Admin guide > API keys > Rotation\n") for c in chunks)


def test_overlap_shares_text_between_neighbours(budget):
    text = " ".join(f"Sentence number {i} is about agents and collectors." for i in range(200))
    chunks = SentenceChunker(chunk_size=64, chunk_overlap=16).split(Document("d", text), budget)
    assert len(chunks) > 5
    def sentences(c):
        return {s.strip() for s in c.text.split(".") if s.strip()}

    assert all(sentences(a) & sentences(b) for a, b in zip(chunks, chunks[1:]))
