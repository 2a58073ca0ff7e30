"""The HTML loader refuses pages over its depth / element limits before parsing; the ingest config sets them."""

from __future__ import annotations

import time

import pytest

from ragkit import Engine
from ragkit.errors import LoadError
from ragkit.ingest.html import HtmlLoader, check_shape

from .generate import nested_divs


def test_the_scan_measures_depth_and_elements_like_the_parser_nests():
    page = "<html><body>" + "<p>one<br><img src=x/><input/>" * 3 + "</body></html>"  # unclosed <p>s nest
    check_shape(page, max_depth=5, max_elements=100)
    with pytest.raises(LoadError, match="nested deeper than 4 elements"):
        check_shape(page, max_depth=4, max_elements=100)
    with pytest.raises(LoadError, match=r"more than 10 HTML elements \(limit: ingest.max_html_elements\)"):
        check_shape(page, max_depth=100, max_elements=10)
    closed = "<div>" + "<b>x</b>" * 50 + "</div></span>"  # closed siblings do not add depth; a stray end tag is ignored
    check_shape(closed, max_depth=2, max_elements=100)


def test_comments_and_script_text_are_not_tags():
    tags = "<div>" * 50
    page = f"<html><body><!-- {tags} --><script>var s = '{tags}';</script><style>/* {tags} */</style>ok</body></html>"
    check_shape(page, max_depth=3, max_elements=5)


def test_100k_nested_divs_are_refused_fast(tmp_path):
    page = tmp_path / "deep.html"
    page.write_text(nested_divs(), encoding="utf-8")
    t = time.perf_counter()
    with pytest.raises(LoadError, match="HTML nested deeper than 512 elements"):
        list(HtmlLoader().load(page, "deep.html"))
    assert time.perf_counter() - t < 5


def test_a_wide_page_within_the_limits_loads_in_linear_time(tmp_path):
    """50,000 sibling paragraphs: adding text markers tag by tag was quadratic in the sibling count."""
    page = tmp_path / "wide.html"
    page.write_text("<html><body>" + "<p>line</p>" * 50_000 + "</body></html>", encoding="utf-8")
    t = time.perf_counter()
    (doc,) = HtmlLoader().load(page, "wide.html")
    assert doc.text.count("line") == 50_000 and time.perf_counter() - t < 30


def test_the_ingest_config_sets_the_limits(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "nested.html").write_text("<html><body>" + "<div>" * 8 + "text" + "</div>" * 8 + "</body></html>")
    (docs / "ok.md").write_text("# ok\n\nfine\n")
    with Engine.open(tmp_path / "idx", config={"ingest": {"max_html_depth": 6}}) as eng:
        report = eng.ingest([docs])
    assert report.failed == [(str(docs / "nested.html"),
                              "HTML nested deeper than 6 elements (limit: ingest.max_html_depth)")]
    with Engine.open(tmp_path / "idx2") as eng:
        assert not eng.ingest([docs]).failed
