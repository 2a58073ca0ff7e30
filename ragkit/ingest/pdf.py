"""PDF through pypdf: one segment per page, so every chunk knows its page number. A PDF with more pages than
``ingest.max_pdf_pages`` is refused before any text is extracted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import LoadError
from ragkit.ingest._read import one_line, read_sidecar
from ragkit.plugins import Plugin
from ragkit.types import Document, Segment


class PdfLoader(Plugin):
    stage, name = "loader", "pdf"
    extensions = (".pdf",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        max_pages: int = Field(2000, ge=1, description="page count above which a PDF is refused before extraction")

    def load(self, path: Path, doc_id: str) -> Iterator[Document]:
        import logging

        from pypdf import PdfReader
        from pypdf.errors import PdfReadError

        logging.getLogger("pypdf").setLevel(logging.ERROR)
        try:
            with path.open("rb") as fh:
                if fh.read(5) != b"%PDF-":
                    raise LoadError("not a PDF (missing %PDF- header)")
            reader = PdfReader(str(path), strict=False)
            if reader.is_encrypted:
                raise LoadError("encrypted PDF")
            if len(reader.pages) > self.params.max_pages:
                raise LoadError(f"{len(reader.pages)} pages, more than {self.params.max_pages} "
                                "(limit: ingest.max_pdf_pages)")
            pages = [(i + 1, (page.extract_text() or "").strip()) for i, page in enumerate(reader.pages)]
            info = reader.metadata
            pdf_title = (info.title or "") if info else ""
        except LoadError:
            raise
        except PermissionError:
            raise LoadError("permission denied") from None
        except (PdfReadError, ValueError, KeyError, TypeError, OSError, EOFError) as exc:
            raise LoadError(f"truncated or corrupt PDF: {one_line(exc)}") from None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged input; all mean a bad file
            raise LoadError(f"damaged PDF ({type(exc).__name__}: {one_line(exc)})") from None
        segments = [Segment(text, {"page": n}) for n, text in pages if text]
        if not segments:
            raise LoadError("no extractable text (scanned or empty PDF)")
        meta = read_sidecar(path)
        meta["pages"] = len(pages)
        title = str(meta.pop("title", "")) or pdf_title or path.stem
        yield Document(doc_id=doc_id, text="\n\n".join(s.text for s in segments), title=title,
                       metadata=meta, segments=segments)
