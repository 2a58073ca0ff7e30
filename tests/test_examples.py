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


def test_local_llm_example_builds_its_generator():
    cfg = load_config(ROOT / "examples" / "local-llm.toml")
    gen = registry.create("generator", cfg.generator.as_dict())
    assert gen.name == "llama-cpp" and gen.params.model == "qwen0.5b" and gen.params.abstain_below == 0.30
