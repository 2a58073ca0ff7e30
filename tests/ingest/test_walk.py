from ragkit.ingest.walk import glob_regex, walk

from ..conftest import write_tree


def test_globs():
    assert glob_regex("**/*.md").match("a/b/c.md") and glob_regex("**/*.md").match("c.md")
    assert not glob_regex("*.md").match("a/c.md")
    assert glob_regex("**/.*").match("a/.hidden") and not glob_regex("**/.*").match("a/visible")


def test_walk_include_exclude_and_ids(tmp_path):
    root = write_tree(tmp_path / "docs", {"a.md": "x", "sub/b.txt": "y", "sub/.secret.txt": "z",
                                          "sub/b.txt.meta.json": "{}", "drafts/c.md": "w"})
    files, missing = walk([root, tmp_path / "nope"], ["**/*"], ["**/.*", "**/*.meta.json", "drafts/**"])
    assert sorted(f.rel for f in files) == ["a.md", "sub/b.txt"]
    assert missing == [str(tmp_path / "nope")]
    single, _ = walk([root / "sub" / "b.txt"], ["**/*"], [])
    assert [f.rel for f in single] == ["b.txt"]
