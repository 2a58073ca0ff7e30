"""Which HTML parser for the HTML loader: Python's html.parser (through BeautifulSoup, today's loader), lxml
(through BeautifulSoup) and selectolax's lexbor, on the bundled corpus's pages and on adversarial pages.

Each parser builds its tree and extracts the text; the bundled pages are parsed 20 times each, the adversarial pages
once, every parse in the ingest's own parse worker with a 60 s deadline (a parser that runs past it is recorded as
stopped, not waited for). The loader's own time (pre-scan of depth and element count, then parse and extract) is
measured beside them: its pre-scan refuses the 100,000-deep page before any parser sees it.

    python benchmarks/html_parsers.py
Writes benchmarks/results/html_parsers.json.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from _common import ROOT, write_result

sys.path.insert(0, str(ROOT))
from tests.hostile.generate import nested_divs  # noqa: E402

DEADLINE = 60.0
REPEATS = 20


def adversarial() -> dict[str, str]:
    return {"nested 100,000 deep": nested_divs(100_000),
            "199,000 sibling paragraphs": "<html><body>" + "<p>word</p>" * 199_000 + "</body></html>",
            "500 deep, repeated to 200,000 elements": "<html><body>" + ("<div>" * 500 + "x" + "</div>" * 500) * 399
                                                      + "</body></html>"}


def parse_with(parser: str, html: str) -> int:
    """Build the tree and extract the text; returns the text's length."""
    if parser == "selectolax (lexbor)":
        from selectolax.lexbor import LexborHTMLParser

        tree = LexborHTMLParser(html)
        return len((tree.body or tree.root).text(separator="\n"))
    if parser == "ragkit loader":
        from ragkit.errors import LoadError
        from ragkit.ingest.html import HtmlLoader
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as fh:
            fh.write(html)
        try:
            return sum(len(d.text) for d in HtmlLoader().load(Path(fh.name), "p.html") if hasattr(d, "text"))
        except LoadError:
            return -1  # refused by a limit
        finally:
            os.unlink(fh.name)
    from bs4 import BeautifulSoup

    from ragkit.ingest.html import html_to_text

    soup = BeautifulSoup(html, "lxml" if parser == "BeautifulSoup + lxml" else "html.parser")
    return len(html_to_text(soup.body or soup))


PARSERS = ["BeautifulSoup + html.parser", "BeautifulSoup + lxml", "selectolax (lexbor)", "ragkit loader"]


def timed(job: tuple[str, str, int]) -> tuple[float, int]:
    parser, html, repeats = job
    times, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = parse_with(parser, html)
        times.append(time.perf_counter() - t)
    return statistics.median(times), n


def main() -> int:
    from ragkit.errors import LoadError
    from ragkit.ingest.worker import ParseWorker

    pages = sorted((ROOT / "corpora").rglob("*.htm*"))
    corpus = [p.read_text(encoding="utf-8") for p in pages]
    results: dict[str, dict] = {}
    with ParseWorker(timed, DEADLINE, 0) as worker:
        for parser in PARSERS:
            row: dict[str, object] = {}
            medians = [worker.run((parser, html, REPEATS))[0] for html in corpus]
            row["bundled pages: total ms (median of 20 per page)"] = round(1000 * sum(medians), 1)
            for name, html in adversarial().items():
                try:
                    seconds, n = worker.run((parser, html, 1))
                    row[name] = {"seconds": round(seconds, 3), "text_chars": n}
                except LoadError:
                    row[name] = {"seconds": None, "stopped_after": DEADLINE}
            results[parser] = row
            print(parser, row)
    write_result("html_parsers", {"pages": len(pages), "deadline_seconds": DEADLINE, "parsers": results,
                                  "load_avg_1min": round(os.getloadavg()[0], 2)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
