"""Variant planning for ablations: parse ``--vary`` axes, ``--variant`` specs and plugin specs, expand them into
named :class:`Variant` s (one change at a time, a full grid, or the ladder), and turn a variant into its config.

A variant is a named diff of a config (any section, plugin or parameter) with a ``parent``: its config is the
parent's config plus its own overrides, and it is compared with its parent (the *reference*).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from ragkit.config import Config, load_config, parse_value
from ragkit.errors import ConfigError

PLUGIN_SECTIONS = ("chunker", "embedder", "sparse", "dense", "fusion", "generator")
LIST_SECTIONS = {"rerank": "rerankers", "reranker": "rerankers", "rerankers": "rerankers",
                 "transform": "transforms", "transforms": "transforms", "expand": "transforms",
                 "filter": "filters", "filters": "filters"}
# The ladder's configurable steps (see --rerank / --rules / --expand). Rerank depth 10: the llm reranker is slow.
DEFAULT_LADDER_RERANK = {"name": "llm", "depth": 10}
DEFAULT_LADDER_RULES = {"name": "rules", "prefer_newest": True,
                        "rules": [{"when": "status=deprecated", "boost": 0.5}]}
DEFAULT_LADDER_EXPAND = {"name": "prf"}


@dataclass
class Variant:
    name: str
    overrides: dict[str, Any] = field(default_factory=dict)  # "a.b" -> value; "rerankers+" -> spec (append)
    parent: str | None = None  # None: the base config
    description: str = ""
    disabled: str | None = None  # a reason: listed as skipped without running

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "overrides": self.overrides, "parent": self.parent,
                "description": self.description}


def parse_spec(text: str) -> dict[str, Any] | None:
    """A plugin spec from the command line: ``none``, ``NAME``, ``NAME:k=v,k=v`` or a JSON object."""
    text = text.strip()
    if text.lower() in ("", "none", "off"):
        return None
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"plugin spec {text!r}: invalid JSON ({exc.msg})") from None
        if not isinstance(spec, dict) or "name" not in spec:
            raise ConfigError(f"plugin spec {text!r}: a JSON object with a 'name' is expected")
        return spec
    name, _, rest = text.partition(":")
    spec: dict[str, Any] = {"name": name.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"plugin spec {text!r}: expected NAME:key=value,key=value")
        spec[key.strip()] = parse_value(value.strip())
    return spec


def axis_values(axis: str, values: str, base: Config) -> list[tuple[str, dict[str, Any]]]:
    """``--vary AXIS=V1,V2``: (label, overrides) per value.

    AXIS is ``retrieval``/``mode`` (bm25, dense, hybrid), a plugin section (``fusion=rrf,minmax``: plugin
    names), a list section (``rerank=none,rules``, ``filters=dedup+mmr``: ``+`` joins several plugins, ``none``
    is the empty list; a plugin the base config already lists keeps its parameters) or any dotted config key
    (``chunker.chunk_size=128,256``, ``retrieval.candidates=50,200``). Two shortcuts compare fine-tuned models:
    ``rerank.model=none,models/reranker`` (the cross-encoder reranker off / with that model) and
    ``embedding.model=base,models/embedder`` (the base config's embedder / that folder)."""
    axis = axis.strip()
    out = []
    for raw in (v.strip() for v in values.split(",")):
        if not raw:
            continue
        if axis in ("retrieval", "mode", "retrieval.mode"):
            out.append((f"{raw}", {"retrieval.mode": raw}))
        elif axis in ("rerank.model", "reranker.model"):
            # the cross-encoder's model: none drops it, a name/path swaps it in (other rerankers are kept)
            others = [s.as_dict() for s in base.rerankers if s.name != "cross-encoder"]
            ce = next((s.as_dict() for s in base.rerankers if s.name == "cross-encoder"), {"name": "cross-encoder"})
            specs = others if raw.lower() == "none" else [{**ce, "model": raw}, *others]
            out.append((f"rerank.model={raw}", {"rerankers": specs}))
        elif axis in ("embedding.model", "embedder.model"):
            # "base" is the base config's embedding model; anything else a name or a fine-tuned folder
            model = base.embedder.params.get("model", "all-MiniLM-L6-v2") if raw.lower() == "base" else raw
            out.append((f"embedder.model={raw}", {"embedder.model": model}))
        elif axis in PLUGIN_SECTIONS:
            out.append((f"{axis}={raw}", {f"{axis}.name": raw}))
        elif axis in LIST_SECTIONS:
            section = LIST_SECTIONS[axis]
            existing = {s.name: s.as_dict() for s in getattr(base, section)}
            specs = [] if raw.lower() == "none" else [existing.get(n.strip(), {"name": n.strip()})
                                                     for n in raw.split("+")]
            out.append((f"{section}={raw}", {section: specs}))
        elif "." in axis:
            out.append((f"{axis}={raw}", {axis: parse_value(raw)}))
        else:
            raise ConfigError(f"--vary {axis}: unknown axis (use retrieval, a plugin section "
                              f"({', '.join(PLUGIN_SECTIONS)}), rerank/transforms/filters, or a dotted config key)")
    if not out:
        raise ConfigError(f"--vary {axis}: no values")
    return out


def parse_vary(spec: str, base: Config) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    axis, sep, values = spec.partition("=")
    if not sep:
        raise ConfigError(f"--vary {spec!r}: expected AXIS=VALUE1,VALUE2")
    return axis.strip(), axis_values(axis, values, base)


def parse_variant(spec: str) -> Variant:
    """``--variant 'NAME: key=value, key=value'``: a named variant of the base config."""
    name, sep, rest = spec.partition(":")
    if not sep or not name.strip():
        raise ConfigError(f"--variant {spec!r}: expected 'NAME: key=value, key=value'")
    overrides = {}
    for item in filter(None, (p.strip() for p in re.split(r",\s*(?=[\w.+-]+=)", rest))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"--variant {spec!r}: {item!r} is not key=value")
        overrides[key.strip()] = parse_value(value.strip())
    return Variant(name.strip(), overrides, description=rest.strip())


def one_at_a_time(base: Config, axes: list[tuple[str, list[tuple[str, dict]]]]) -> list[Variant]:
    out = [Variant("base", {}, None, "the base config")]
    for _, values in axes:
        for label, ov in values:
            out.append(Variant(label, ov, "base", _describe(ov)))
    return out


def full_grid(base: Config, axes: list[tuple[str, list[tuple[str, dict]]]]) -> list[Variant]:
    out = [Variant("base", {}, None, "the base config")]
    for combo in itertools.product(*(values for _, values in axes)):
        ov: dict[str, Any] = {}
        for _, o in combo:
            ov.update(o)
        out.append(Variant(" + ".join(label for label, _ in combo), ov, "base", _describe(ov)))
    return out


def ladder(rerank: dict | None = DEFAULT_LADDER_RERANK, rules: dict | None = DEFAULT_LADDER_RULES,
           expand: dict | None = DEFAULT_LADDER_EXPAND) -> list[Variant]:
    """The DevDay talk's ladder, one optimization per step, each compared with the step before it."""
    steps = [
        Variant("bm25", {"retrieval.mode": "bm25"}, None, "BM25 only"),
        Variant("dense", {"retrieval.mode": "dense"}, "bm25", "dense (embedding) retrieval only"),
        Variant("hybrid-rrf", {"retrieval.mode": "hybrid", "fusion.name": "rrf"}, "dense",
                "BM25 + dense, reciprocal-rank fusion"),
        Variant("hybrid-minmax", {"fusion.name": "minmax"}, "hybrid-rrf",
                "BM25 + dense, min-max normalized score fusion"),
    ]
    steps.append(Variant("+rerank", {"rerankers+": rerank} if rerank else {}, "hybrid-rrf",
                         f"hybrid-rrf + reranker {_spec_text(rerank)}",
                         disabled=None if rerank else "disabled with --rerank none"))
    steps.append(Variant("+rules", {"rerankers+": rules} if rules else {}, "+rerank",
                         f"+ rule-based reranking {_spec_text(rules)}",
                         disabled=None if rules else "disabled with --rules none"))
    steps.append(Variant("+expand", {"transforms+": expand} if expand else {}, "+rules",
                         f"+ query expansion {_spec_text(expand)}",
                         disabled=None if expand else "disabled with --expand none"))
    return steps


def _spec_text(spec: dict | None) -> str:
    if not spec:
        return "(none)"
    params = ", ".join(f"{k}={json.dumps(v)}" for k, v in spec.items() if k != "name")
    return spec["name"] + (f" ({params})" if params else "")


def _describe(ov: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in ov.items())


def dedupe_names(variants: list[Variant]) -> list[Variant]:
    seen: dict[str, int] = {}
    for v in variants:
        if v.name in seen:
            seen[v.name] += 1
            v.name = f"{v.name}#{seen[v.name]}"
        else:
            seen[v.name] = 1
    return variants


def apply_overrides(cfg: Config, overrides: dict[str, Any]) -> Config:
    data = cfg.model_dump(mode="json")
    plain = {}
    for key, value in overrides.items():
        if key.endswith("+"):
            section = LIST_SECTIONS.get(key[:-1], key[:-1])
            data.setdefault(section, [])
            data[section] = list(data[section]) + [copy.deepcopy(value)]
        else:
            plain[key] = copy.deepcopy(value)
    return load_config(data, plain)


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")
    return s or "variant"



def check_plugins(cfg: Config) -> None:
    """Every plugin the config names exists and accepts its parameters (PluginError / ConfigError if not)."""
    from ragkit.plugins import registry

    for section in PLUGIN_SECTIONS:
        registry.create(section, getattr(cfg, section).as_dict())
    for section, stage in (("transforms", "transform"), ("rerankers", "reranker"), ("filters", "filter")):
        for spec in getattr(cfg, section):
            registry.create(stage, spec.as_dict())
