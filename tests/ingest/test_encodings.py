"""Text encodings: BOMs, UTF-8, legacy single-byte files, invalid bytes and binary content, through the real
loaders and one real ingest."""

from __future__ import annotations

import pytest

from ragkit import Engine
from ragkit.errors import LoadError
from ragkit.ingest._read import decode
from ragkit.ingest.html import HtmlLoader
from ragkit.ingest.markdown import MarkdownLoader
from ragkit.ingest.text import TextLoader
from ragkit.types import Document, LoadIssue

FR = "Le café crème coûte 3 € à Noël ; « déjà vu » — l'hôtel était fermé.\nOù est la clé ?"
DE = "Die Größe der Straße ist überraschend; „Grüße“ aus München – Öl für 5 €."
ES = "El niño comió jalapeños el año pasado. ¿Dónde está la señal? ¡Olé!"

# (label, bytes, decoded text, the encoding recorded in metadata or None for UTF-8)
CASES = [
    ("utf-8", FR.encode("utf-8"), FR, None),
    ("utf-8 BOM", FR.encode("utf-8-sig"), FR, None),
    ("utf-16 LE BOM", b"\xff\xfe" + DE.encode("utf-16-le"), DE, "utf-16-le"),
    ("utf-16 BE BOM", b"\xfe\xff" + DE.encode("utf-16-be"), DE, "utf-16-be"),
    ("utf-32 LE BOM", b"\xff\xfe\x00\x00" + ES.encode("utf-32-le"), ES, "utf-32-le"),
    ("utf-32 BE BOM", b"\x00\x00\xfe\xff" + ES.encode("utf-32-be"), ES, "utf-32-be"),
    ("cp1252 French", FR.encode("cp1252"), FR, "cp1252"),
    ("cp1252 German", DE.encode("cp1252"), DE, "cp1252"),
    ("latin-1 Spanish", ES.encode("latin-1"), ES, "cp1252"),  # same bytes, same text in both
    ("latin-1 with a C1 control", "Résumé\x81 fin".encode("latin-1"), "Résumé\x81 fin", "latin-1"),
    ("one legacy byte in ASCII", b"plain ascii caf\xe9", "plain ascii café", "cp1252"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("label", "data", "text", "encoding"), CASES, ids=IDS)
def test_text_loader_decodes_and_records_the_encoding(tmp_path, label, data, text, encoding):
    p = tmp_path / "f.txt"
    p.write_bytes(data)
    (doc,) = TextLoader().load(p, "f.txt")
    assert doc.text == text.strip()
    assert doc.metadata.get("encoding") == encoding
    assert "encoding" in doc.metadata or encoding is None


@pytest.mark.parametrize(("label", "data", "text", "encoding"), CASES, ids=IDS)
def test_markdown_loader_decodes_and_records_the_encoding(tmp_path, label, data, text, encoding):
    p = tmp_path / "f.md"
    p.write_bytes(_encode_like(f"---\nauthor: Zoë\n---\n# Titre\n\n{text}\n", data, text))
    (doc,) = MarkdownLoader().load(p, "f.md")
    assert doc.title == "Titre" and doc.text == f"# Titre\n\n{text}"
    assert doc.metadata["author"] == "Zoë" and doc.metadata.get("encoding") == encoding


@pytest.mark.parametrize(("label", "data", "text", "encoding"), CASES, ids=IDS)
def test_html_loader_decodes(tmp_path, label, data, text, encoding):
    p = tmp_path / "f.html"
    p.write_bytes(_encode_like(f"<html><body><p>{text}</p></body></html>", data, text))
    (doc,) = HtmlLoader().load(p, "f.html")
    assert doc.text == text.strip() and doc.metadata.get("encoding") == encoding


def _encode_like(new: str, data: bytes, text: str) -> bytes:
    """``new`` in the encoding (and with the BOM) that produced ``data`` from ``text``."""
    for enc, bom in (("utf-8", b"\xef\xbb\xbf"), ("utf-32-le", b"\xff\xfe\x00\x00"), ("utf-32-be", b"\x00\x00\xfe\xff"),
                     ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-8", b""), ("cp1252", b""),
                     ("latin-1", b"")):
        try:
            if data == bom + text.encode(enc):
                return bom + new.encode(enc)
        except UnicodeEncodeError:
            continue
    raise AssertionError("no encoding reproduces the sample")


def test_user_metadata_keeps_its_own_encoding_key(tmp_path):
    p = tmp_path / "f.md"
    p.write_bytes("---\nencoding: as-sent\n---\nCafé".encode("cp1252"))
    (doc,) = MarkdownLoader().load(p, "f.md")
    assert doc.metadata["encoding"] == "as-sent"


def test_utf8_with_invalid_bytes_is_decoded_and_reported(tmp_path):
    good = (FR + "\n") * 3
    data = good[:40].encode() + b"\xff" + good[40:].encode() + b"\xc3"
    p = tmp_path / "f.txt"
    p.write_bytes(data)
    doc, issue = TextLoader().load(p, "f.txt")
    assert isinstance(doc, Document) and isinstance(issue, LoadIssue)
    assert doc.text == good[:40] + "\ufffd" + good[40:] + "\ufffd"
    assert "encoding" not in doc.metadata
    offset = len(good[:40].encode())
    assert issue.location == f"f.txt:{offset}"
    assert issue.reason == f"2 invalid UTF-8 sequences (the first at byte offset {offset}) replaced with U+FFFD"


def test_markdown_reports_invalid_bytes_too(tmp_path):
    p = tmp_path / "f.md"
    head = "# Café\n\nDéjà vu, ".encode()
    p.write_bytes(head + b"\x80" + " crème brûlée.".encode())
    doc, issue = MarkdownLoader().load(p, "f.md")
    assert doc.text == "# Café\n\nDéjà vu, \ufffd crème brûlée." and doc.title == "Café"
    assert issue.reason == f"an invalid UTF-8 sequence (the first at byte offset {len(head)}) replaced with U+FFFD"


def test_html_reports_invalid_bytes_like_text(tmp_path):
    p = tmp_path / "f.html"
    head = "<p>Café crème brûlée ".encode()
    p.write_bytes(head + b"\xff</p>")
    doc, issue = HtmlLoader().load(p, "f.html")
    assert doc.text == "Café crème brûlée \ufffd" and "encoding" not in doc.metadata
    assert issue.location == f"f.html:{len(head)}"
    assert issue.reason == f"an invalid UTF-8 sequence (the first at byte offset {len(head)}) replaced with U+FFFD"


def test_a_legacy_file_holding_some_utf8_is_read_as_legacy_with_a_warning(tmp_path):
    head = "Un été à Noël, café crème, ".encode("cp1252")
    p = tmp_path / "f.txt"
    p.write_bytes(head + "l’hôtel".encode())  # pasted UTF-8: 2 valid sequences against 5 invalid bytes
    doc, issue = TextLoader().load(p, "f.txt")
    assert doc.metadata["encoding"] == "cp1252" and doc.text == "Un été à Noël, café crème, lâ€™hÃ´tel"
    assert issue.location == f"f.txt:{len(head) + 1}"
    assert issue.reason == (f"mixed encodings: read as cp1252, so 2 UTF-8 sequences (the first at byte offset "
                            f"{len(head) + 1}) show as two or more characters")


def test_one_utf8_sequence_in_a_legacy_file_is_named():
    dec = decode("déjà vu, à l'été ".encode("cp1252") + "’".encode())
    assert dec.encoding == "cp1252" and dec.text.endswith("â€™")
    assert dec.warning == "mixed encodings: read as cp1252, so a UTF-8 sequence (one at byte offset 17) shows as two " \
                          "or more characters"


def test_existing_replacement_characters_are_not_counted():
    dec = decode("already \ufffd here, café ".encode() + b"\xff")
    assert dec.encoding == "utf-8" and dec.invalid == 1


@pytest.mark.parametrize(("data", "message"), [
    (b"abc\x00def", "binary content (NUL bytes); not a text file"),
    ("no BOM".encode("utf-16-le"), "binary content (NUL bytes); not a text file"),
    (bytes(range(1, 256)) * 4, "binary content (100 control bytes); not a text file"),
    (b"\xff\xfe" + "odd".encode("utf-16-le") + b"x", "invalid utf-16-le text at byte 8"),
    (b"\xff\xfe" + "\ud800".encode("utf-16-le", "surrogatepass") + b"a\x00", "invalid utf-16-le text at byte 2"),
], ids=["nul", "utf-16 without BOM", "control bytes", "truncated utf-16", "lone surrogate"])
def test_binary_and_broken_text_are_refused_in_one_line(tmp_path, data, message):
    for loader, name in ((TextLoader(), "f.txt"), (MarkdownLoader(), "f.md")):
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(LoadError) as exc:
            list(loader.load(p, name))
        assert str(exc.value) == message
    with pytest.raises(LoadError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        decode(data)


def test_ingest_finds_words_of_a_cp1252_file(tmp_path, mini_corpus):
    (mini_corpus / "recette.txt").write_bytes("Recette du café\n\nLa Größe du gâteau: crème brûlée.".encode("cp1252"))
    head = "Ein kaputter Satz über ".encode()
    (mini_corpus / "broken.txt").write_bytes(head + b"\xff" + " Äpfel.".encode())
    eng = Engine.open(tmp_path / "idx")
    try:
        rep = eng.ingest([mini_corpus])
        assert not rep.failed
        assert rep.warnings == [(f"{mini_corpus / 'broken.txt'}:{len(head)}",
                                 f"an invalid UTF-8 sequence (the first at byte offset {len(head)}) replaced with U+FFFD")]
        for query in ("café", "Größe", "brûlée"):
            top = eng.retrieve(query, k=1, mode="bm25").hits[0]
            assert top.doc_id == "recette.txt", query
            assert top.chunk.metadata["encoding"] == "cp1252"
        top = eng.retrieve("Äpfel", k=1, mode="bm25").hits[0]
        assert top.doc_id == "broken.txt" and "encoding" not in top.chunk.metadata
        others = [h for h in eng.retrieve("backup retention", k=10, mode="bm25").hits if h.doc_id != "recette.txt"]
        assert others and all("encoding" not in h.chunk.metadata for h in others)
    finally:
        eng.close()
