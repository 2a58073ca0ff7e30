import pytest

from ragkit.config import load_config
from ragkit.errors import ConfigError


def test_defaults():
    c = load_config()
    assert c.chunker.name == "sentence" and c.fusion.name == "rrf" and c.retrieval.mode == "hybrid"


def test_toml_and_overrides(tmp_path):
    p = tmp_path / "ragkit.toml"
    p.write_text('[chunker]\nname = "token"\nchunk_size = 64\n\n[retrieval]\nmode = "bm25"\nk = 5\n'
                 '[fusion]\nname = "rrf"\nk = 30\n')
    c = load_config(p, ["retrieval.k=7", "fusion.k=10", "ingest.exclude=['*.tmp']"])
    assert c.chunker.params == {"chunk_size": 64}
    assert c.retrieval.k == 7 and c.fusion.params == {"k": 10} and c.ingest.exclude == ["*.tmp"]
    # switching plugin name drops the old plugin's parameters
    c = load_config(p, ["chunker.name=sentence"])
    assert c.chunker.params == {}


@pytest.mark.parametrize("text,msg", [
    ("[chunker\nname='x'", "malformed TOML"),
    ("[retrievl]\nk = 3\n", "unknown setting 'retrievl'"),
    ("[retrieval]\nmode = 'fuzzy'\n", "retrieval.mode"),
    ("[retrieval]\nk = 0\n", "retrieval.k"),
    ("[serve]\nbatch_window_ms = -1\n", "serve.batch_window_ms"),
    ("[serve]\nbatch_window_ms = 'soon'\n", "serve.batch_window_ms"),
])
def test_malformed_config_is_one_line(tmp_path, text, msg):
    p = tmp_path / "ragkit.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg) as exc:
        load_config(p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="expected key.path=value"):
        load_config(None, ["retrieval.k"])


def test_the_batch_window_is_auto_unless_given():
    assert load_config().serve.batch_window_ms == "auto"
    assert load_config(None, ["serve.batch_window_ms=2.5"]).serve.batch_window_ms == 2.5
