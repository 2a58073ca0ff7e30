"""The example config in examples/ is valid and equals the defaults (so the README's reference is true)."""

from pathlib import Path

from ragkit.config import load_config
from ragkit.plugins import registry

ROOT = Path(__file__).resolve().parents[1]


def test_example_config_spells_out_the_defaults():
    example = load_config(ROOT / "examples" / "ragkit.toml")
    defaults = load_config()
    for section in ("chunker", "embedder", "sparse", "dense", "fusion", "generator"):
        a = registry.create(section, getattr(example, section).as_dict())
        b = registry.create(section, getattr(defaults, section).as_dict())
        assert a.spec() == b.spec(), section
    assert example.retrieval == defaults.retrieval and example.ingest == defaults.ingest
    assert example.serve == defaults.serve
