from ragkit.ingest.walk import glob_regex, walk

from ..conftest import write_tree


def test_globs():
    assert glob_regex("**/*.md").match("a/b/c.md") and glob_regex("**/*.md").match("c.md")
    assert not glob_regex("*.md").match("a/c.md")
    assert glob_regex("**/.*").match("a/.hidden") and not glob_regex("**/.*").match("a/visible")


def test_walk_include_exclude_and_ids(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "x", "sub/b.txt": "y", "sub/.secret.txt": "z",
                                          "sub/b.txt.meta.json": "{}", "drafts/c.md": "w"})
    found = walk([root, tmp_path / "nope"], ["**/*"], ["**/.*", "**/*.meta.json", "drafts/**"])
    assert sorted(f.rel for f in found.files) == ["a.md", "sub/b.txt"]
    assert found.missing == [str(tmp_path / "nope")] and found.skipped == []
    single = walk([root / "sub" / "b.txt"], ["**/*"], []).files
    assert [f.rel for f in single] == ["b.txt"]


def test_walk_skips_what_is_not_a_regular_file_with_a_reason(tmp_path):
    import os

    root = write_tree(tmp_path / "docs", {"a.md": "x", "sub/b.md": "y"})
    os.mkfifo(root / "pipe.md")
    (root / "gone.md").symlink_to("missing.md")
    (root / "loop.md").symlink_to("loop.md")
    (root / "link.md").symlink_to(root / "sub" / "b.md")  # a symlink to a regular file is read
    (root / "subdir-link").symlink_to(root / "sub")  # symlinked folders are not followed
    (root / ".hidden-pipe").symlink_to("nowhere")  # excluded entries are not reported
    found = walk([root], ["**/*"], ["**/.*"])
    assert [(f.rel, f.path) for f in found.files] == [("a.md", root / "a.md"), ("link.md", root / "sub" / "b.md")]
    assert found.skipped == [(str(root / "gone.md"), "dangling symlink -> missing.md"),
                             (str(root / "loop.md"), "symlink loop"),
                             (str(root / "pipe.md"), "special file (FIFO)")]
