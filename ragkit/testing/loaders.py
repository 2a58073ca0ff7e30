"""``LoaderConformance``: a loader turns the files it claims into documents, and unusable bytes into one
``LoadError`` with a reason.

Provide ``loader`` (an instance) and ``sample_file`` (a path to a valid file of the loader's format)::

    class TestMyLoader(LoaderConformance):
        @pytest.fixture
        def loader(self):
            return MyLoader()

        @pytest.fixture
        def sample_file(self, tmp_path):
            path = tmp_path / "sample.xyz"
            path.write_text(...)
            return path
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragkit.errors import LoadError
from ragkit.plugins import Loader
from ragkit.types import Document, LoadIssue


class LoaderConformance:
    @pytest.fixture
    def loader(self) -> Loader:
        raise NotImplementedError("subclass LoaderConformance and define a `loader` fixture")

    @pytest.fixture
    def sample_file(self, tmp_path) -> Path:
        raise NotImplementedError("subclass LoaderConformance and define a `sample_file` fixture")

    def test_loads_its_format(self, loader, sample_file):
        assert isinstance(loader, Loader)
        assert any(sample_file.name.endswith(e) for e in loader.extensions), "the sample is not of a claimed type"
        items = list(loader.load(sample_file, sample_file.name))
        assert all(isinstance(i, (Document, LoadIssue)) for i in items)
        docs = [d for d in items if isinstance(d, Document)]
        assert docs and all(d.text.strip() and d.doc_id for d in docs)

    @pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\x03binary\xff\xfe" * 10, b"   \n  "],
                             ids=["empty", "binary", "blank"])
    def test_bad_bytes_raise_one_load_error(self, loader, content, tmp_path):
        path = tmp_path / f"bad{loader.extensions[0]}"
        path.write_bytes(content)
        with pytest.raises(LoadError) as exc:
            list(loader.load(path, path.name))
        assert str(exc.value) and "\n" not in str(exc.value)
