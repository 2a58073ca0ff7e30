"""The example config in examples/ is valid and equals the defaults (so docs/configuration.md's reference is true)."""

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
    assert example.serve == defaults.serve and example.store == defaults.store
    assert example.router == defaults.router and example.sql == defaults.sql


def test_rerank_and_transform_examples_build():
    """Every reranker / transform example builds its plugins (no model is loaded by building them)."""
    for name in ("rerank-cross-encoder", "rerank-llm", "rerank-cohere", "transforms", "transforms-llm"):
        cfg = load_config(ROOT / "examples" / f"{name}.toml")
        plugins = [registry.create("reranker", s.as_dict()) for s in cfg.rerankers] + \
                  [registry.create("transform", s.as_dict()) for s in cfg.transforms]
        assert plugins, name


def test_local_llm_example_builds_its_generator():
    cfg = load_config(ROOT / "examples" / "local-llm.toml")
    gen = registry.create("generator", cfg.generator.as_dict())
    assert gen.name == "llama-cpp" and gen.params.model == "qwen0.5b" and gen.params.abstain_below == 0.30


def test_beacon_answers_example_builds_its_pipeline():
    """The config benchmarks/generate_beacon.py --config measures: rules, one chunk per document, qwen0.5b."""
    cfg = load_config(ROOT / "examples" / "beacon-answers.toml")
    rerankers = [registry.create("reranker", s.as_dict()) for s in cfg.rerankers]
    filters = [registry.create("filter", s.as_dict()) for s in cfg.filters]
    gen = registry.create("generator", cfg.generator.as_dict())
    assert [r.name for r in rerankers] == ["rules"] and rerankers[0].params.prefer_newest
    assert [f.name for f in filters] == ["max-per-doc"] and filters[0].params.max_chunks == 1
    assert gen.params.model == "qwen0.5b" and gen.params.max_sources == 3


def test_sql_example_turns_tables_and_the_router_on():
    cfg = load_config(ROOT / "examples" / "sql.toml")
    assert cfg.ingest.tables and cfg.router.enabled and cfg.router.classifier == "rules"
    gen = registry.create("generator", cfg.generator.as_dict())
    assert gen.params.model == "qwen1.5b" and hasattr(type(gen), "llm")


def test_prefer_newest_demotes_deprecated_pages_unless_the_question_asks_about_an_earlier_version():
    from ragkit.types import Chunk, Hit

    cfg = load_config(ROOT / "examples" / "prefer-newest.toml")
    [rules] = [registry.create("reranker", s.as_dict()) for s in cfg.rerankers]

    def order(question):
        hits = [Hit(Chunk("old#0", "old.md", "t", 0, {"status": "deprecated", "title": "Plans (2023)"}), 1.0),
                Hit(Chunk("new#0", "new.md", "t", 0, {"status": "current", "title": "Plans"}), 0.8)]
        return [h.doc_id for h in rules.process(question, hits)]

    assert order("How much does the Team plan cost?") == ["new.md", "old.md"]
    for q in ("How much did the Team plan cost in the 2023 price list?", "What was the previous Team price?",
              "Which limits did the deprecated page list?"):
        assert order(q) == ["old.md", "new.md"], q

    def versions(question):  # two dated versions of one page: prefer_newest, with the same exception
        hits = [Hit(Chunk("v22#0", "v22.md", "t", 0, {"title": "Rate limits", "date": "2022-03-01"}), 1.0),
                Hit(Chunk("v24#0", "v24.md", "t", 0, {"title": "Rate limits", "date": "2024-09-10"}), 0.8)]
        return [h.doc_id for h in rules.process(question, hits)]

    assert versions("What is the REST API rate limit?") == ["v24.md", "v22.md"]
    assert versions("What was the REST API rate limit in 2022?") == ["v22.md", "v24.md"]
