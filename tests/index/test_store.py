"""Index directory: generations, the writer lock, and clear errors on foreign or damaged directories."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ragkit import Engine
from ragkit.errors import IndexCorruptError, IndexLockedError
from ragkit.index.embedded.generations import IndexDir


def test_commit_swaps_current_and_keeps_two_generations(tmp_path, mini_corpus):
    eng = Engine.open(tmp_path / "idx")
    for i in range(4):
        (mini_corpus / f"n{i}.txt").write_text(f"note number {i} about alerting", encoding="utf-8")
        eng.ingest([mini_corpus])
    gens = sorted(p.name for p in (tmp_path / "idx" / "gens").iterdir())
    assert gens == ["g000003", "g000004"]
    assert (tmp_path / "idx" / "CURRENT").read_text().strip() == "g000004"


def test_second_writer_gets_locked_error(tmp_path, mini_corpus):
    d = IndexDir(tmp_path / "idx")
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from ragkit.index.embedded.generations import IndexDir\n"
        f"with IndexDir({str(tmp_path / 'idx')!r}).write_lock():\n"
        "    print('locked', flush=True); time.sleep(30)")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=rf"index is locked by another writer \(pid {holder.pid}\)"):
            Engine.open(tmp_path / "idx").ingest([mini_corpus])
    finally:
        holder.kill()
        holder.wait()
    # the kernel released the lock with the process: writing works again
    assert Engine.open(tmp_path / "idx").ingest([mini_corpus]).committed
    assert d.current() == "g000001"


def test_foreign_directory_is_refused(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(IndexCorruptError, match="not a ragkit index"):
        Engine.open(tmp_path / "notes")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_current_pointing_nowhere(tmp_path, mini_index):
    root = mini_index.store.path
    (root / "CURRENT").write_text("g000099\n")
    with pytest.raises(IndexCorruptError, match="missing or incomplete"):
        Engine.open(root)


def test_unknown_format(tmp_path, mini_index):
    root = mini_index.store.path
    (root / "ragkit-index.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(IndexCorruptError, match="format 99 is not supported"):
        Engine.open(root)


def test_damaged_part_is_detected(tmp_path, mini_index):
    root = mini_index.store.path
    gen = root / "gens" / (root / "CURRENT").read_text().strip()
    (gen / "dense" / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="cannot open index generation"):
        Engine.open(root).retrieve("api key")


def test_parts_disagreeing_is_detected(tmp_path, mini_index):
    root = mini_index.store.path
    gen = root / "gens" / (root / "CURRENT").read_text().strip()
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["n_chunks"] += 1
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexCorruptError, match="disagree on the number of chunks"):
        Engine.open(root).retrieve("api key")


def test_garbage_manifest_is_a_clear_error(tmp_path, mini_index):
    root = mini_index.store.path
    gen = root / "gens" / (root / "CURRENT").read_text().strip()
    (gen / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorruptError, match="unreadable manifest"):
        Engine.open(root)
