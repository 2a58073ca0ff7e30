"""One ingest over a folder of hostile entries: it finishes, reports each entry with its reason, indexes every good
file and keeps what an earlier commit indexed (real files, real model, no mocks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ragkit import Engine

from ragkit.ingest.walk import walk

from .generate import add_hostile, write_good, write_hostile

DEADLINE = 180  # seconds; the bound for the whole hostile folder on 2 cores


def ingest_within(eng: Engine, paths, seconds: float = DEADLINE):
    """Run ``eng.ingest`` in a daemon thread, so a hang fails the test instead of stalling the suite."""
    box: dict = {}

    def run():
        try:
            box["report"] = eng.ingest(paths)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"ingest did not finish within {seconds} s"
    assert "error" not in box, f"ingest raised {box.get('error')!r}"
    return box["report"]


def by_name(items) -> dict[str, str]:
    return {os.path.basename(path): reason for path, reason in items}


def test_hostile_folder_is_reported_and_the_rest_indexed(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    good = write_good(docs)
    with Engine.open(tmp_path / "idx") as eng:
        first = ingest_within(eng, [docs])
        assert first.committed and first.files_read == len(good) and not first.skipped and not first.failed
        (docs / "later.md").write_text("# Later\n\nThe zanzibar flag was added after the first commit.\n")
        h = add_hostile(docs, good)
        report = ingest_within(eng, [docs])

        skipped, failed = by_name(report.skipped), by_name(report.failed)
        assert skipped == h.skipped
        for name, reason in h.failed.items():
            assert name in failed and failed[name].startswith(reason), (name, failed.get(name))
        assert set(failed) == set(h.failed)
        new_good = len(h.good) - len(good)  # good files among the hostile ones (a 1 MB single-line page)
        assert report.committed and report.files_read == 1 + new_good  # + later.md; the first files are unchanged
        assert report.files_unchanged == len(good)
        assert report.documents_total == len(h.good) + 1
        for query, doc_id in (("press Rotate old key", "guide.md"), ("zanzibar flag", "later.md"),
                              ("reached through a symlink", "linked.md"), ("directory whose name ends", "x.md/inside.md"),
                              ("logs kept 30 days Starter", "notes/retention.md")):
            hits = eng.retrieve(query, k=1, mode="bm25").hits
            assert hits and hits[0].doc_id == doc_id, (query, [h.doc_id for h in hits])


def test_special_file_given_directly_is_skipped_not_opened(tmp_path):
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    dangling = tmp_path / "gone.md"
    dangling.symlink_to(tmp_path / "deleted.md")
    with Engine.open(tmp_path / "idx") as eng:
        report = ingest_within(eng, [fifo, dangling], seconds=60)
    assert report.skipped == [(str(fifo), "special file (FIFO)"),
                              (str(dangling), f"dangling symlink -> {tmp_path / 'deleted.md'}")]
    assert not report.failed and report.files_seen == 2 and report.files_read == 0


def test_cli_ingest_of_the_hostile_folder_exits_0_and_names_each(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    h = write_hostile(docs)
    proc = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(docs), "--index", str(tmp_path / "idx"),
                           "--json"], capture_output=True, text=True, timeout=DEADLINE,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert {os.path.basename(s["path"]): s["reason"] for s in rep["skipped"]} == h.skipped
    assert {os.path.basename(f["path"]) for f in rep["failed"]} == set(h.failed)
    assert rep["committed"] and rep["files_read"] == len(h.good)
    human = subprocess.run([sys.executable, "-m", "ragkit", "ingest", str(docs), "--index", str(tmp_path / "idx")],
                           capture_output=True, text=True, timeout=DEADLINE, env={**os.environ, "COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    for name, reason in h.skipped.items():
        assert f"{name}: {reason}" in human.stdout
    assert "deep.html: HTML nested deeper than 512 elements" in human.stdout


NOBODY = 65534


def close_for_nobody(base: Path) -> None:
    """``secret.md`` and ``closed/`` unreadable for ``nobody``; the folders above ``base`` let it in (tmp dirs
    are 0700)."""
    os.chmod(base / "secret.md", 0o000)
    os.chmod(base / "closed", 0o000)
    for p in (base, *base.parents):
        os.chmod(p, os.stat(p).st_mode | 0o005)


def as_nobody(work):
    """Run ``work()`` in a forked child that dropped root to ``nobody`` (as root every permission check passes);
    returns what it returned, through JSON. The child exits without running pytest's teardown."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write_end, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_unreadable_file_and_folder_are_skipped(tmp_path):
    base = tmp_path / "perm"
    (base / "closed").mkdir(parents=True)
    (base / "ok.md").write_text("# ok\n")
    (base / "secret.md").write_text("# secret\n")
    (base / "closed" / "inner.md").write_text("# inner\n")
    close_for_nobody(base)

    def work():
        r = walk([base], ["**/*"], [])
        return [[f.rel for f in r.files], r.skipped, r.unreadable]

    files, skipped, unreadable = as_nobody(work)
    os.chmod(base / "closed", 0o755)
    assert files == ["ok.md"]
    assert sorted(unreadable) == [str(base / "closed"), str(base / "secret.md")]
    assert sorted(map(tuple, skipped)) == [(str(base / "closed"), "unreadable folder: Permission denied"),
                                           (str(base / "secret.md"), "permission denied")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another user")
def test_sync_keeps_what_was_indexed_of_a_file_that_became_unreadable(tmp_path):
    """--sync removes files that are gone, not files that are still there but cannot be read right now."""
    base = tmp_path / "perm"
    (base / "closed").mkdir(parents=True)
    for name in ("ok.md", "secret.md", "gone.md", "closed/inner.md"):
        (base / name).write_text(f"# {name}\n\nThe {name.replace('/', ' ')} page.\n")
    idx = tmp_path / "idx"
    with Engine.open(idx) as eng:
        assert eng.ingest([base]).documents_total == 4
    (base / "gone.md").unlink()
    close_for_nobody(base)
    for root, dirs, files in os.walk(idx):  # the index stays writable for `nobody`
        for name in [root, *(os.path.join(root, f) for f in dirs + files)]:
            os.chown(name, NOBODY, NOBODY)

    def work():
        with Engine.open(idx) as eng:
            report = eng.ingest([base], sync=True)
            return [report.documents_removed, sorted(Path(d.source).name for d in eng.reader().documents())]

    removed, sources = as_nobody(work)
    os.chmod(base / "closed", 0o755)
    assert removed == 1 and sources == ["inner.md", "ok.md", "secret.md"]
