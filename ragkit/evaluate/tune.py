"""``ragkit tune``: search the pipeline for a dataset automatically, under a latency budget, selecting on dev
questions only and proving the winner once on held-out test questions.

A *search space* (TOML, :func:`load_space`; ``tune_space.toml`` beside this module is the default) is a list of
stages in pipeline order, each a list of options; an option is a set of config overrides (the syntax of
``ragkit ablate --variant``). Every stage has an implicit ``none`` option (the base config unchanged there), so
doing nothing competes everywhere. A *trial* is one choice of option per stage: the base config plus the chosen
options' overrides, run over the dev questions through :meth:`ragkit.evaluate.ablate.Ablation.evaluate`, which
shares what a trial does not change (one embedding pass per chunking, one first-stage run per retrieval shape,
query vectors) and times every query.

Strategies:

* ``greedy``: stage by stage in pipeline order; at each stage every option is tried on top of the choices carried
  so far, and the best eligible one (ties: the earlier option, so ``none`` wins a tie) is carried forward;
* ``bayes``: optuna's TPE sampler (seeded) over the whole space, ``--trials`` trials (extra ``ragkit[tune]``).

A trial whose measured p95 latency per query exceeds ``budget_ms`` is not eligible. The objective is one metric or
a weighted mean of several. The dev questions are the only ones the search sees; the test questions are read
once, after it, to evaluate the winner and the baseline (the base config) with a paired randomization test and a
bootstrap interval. Every finished trial is appended to ``trials.jsonl``; a re-run with the same dev questions,
base config and settings takes finished trials from it (resume), and since the strategies are deterministic for a
seed, an interrupted search resumed this way makes the same choices as an uninterrupted one.

*Refit*: a fine-tuned model in the space must not have seen the dev questions (they are dropped from dev when it
did), so the search runs with a model trained on less data. ``refit`` names, per such model, one trained the same
way on more (its own data plus the dev questions, never a test question: checked on the model's card); the
chosen configuration then runs with it, in the test run and in the written config. The search's choices are made
without it.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ragkit.config import Config, read_toml
from ragkit.errors import ConfigError, PluginError, RagkitError
from ragkit.evaluate.ablate import Ablation, AblationSettings, index_version, pareto_front
from ragkit.evaluate.datasets import Dataset, Query, read_jsonl
from ragkit.evaluate.retrieval import check_metrics
from ragkit.evaluate.stats import DEFAULT_SEED, compare, mean_ci
from ragkit.evaluate.variants import apply_overrides, check_plugins, config_hash

SCHEMA = "ragkit.tune/1"
DEFAULT_SPACE = Path(__file__).with_name("tune_space.toml")
NONE = "none"
STRATEGIES = ("greedy", "bayes")

Progress = Callable[[dict[str, Any]], None]


# --- the search space -------------------------------------------------------------------------------------------

@dataclass
class Option:
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    options: list[Option]  # the first is "none" unless the stage says none = false

    def option(self, label: str) -> Option:
        return next(o for o in self.options if o.label == label)


@dataclass
class Space:
    stages: list[Stage]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "stages": [{"name": s.name, "options": [
            {"label": o.label, "set": o.overrides} for o in s.options]} for s in self.stages]}

    @property
    def size(self) -> int:
        return math.prod(len(s.options) for s in self.stages)


def _ordered(overrides: dict[str, Any]) -> dict[str, Any]:
    """Plugin switches (``x.name``) before the parameters of the new plugin (a switch drops the old ones)."""
    return dict(sorted(overrides.items(), key=lambda kv: not kv[0].endswith(".name")))


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def load_space(path: str | Path | None = None, base: Config | None = None,
               skip: list[str] | tuple[str, ...] = ()) -> Space:
    """Read a search space (default: the shipped one), leaving out the stages named in ``skip``. Every option is
    checked against ``base``: an unknown setting or plugin is one ConfigError naming the stage and option."""
    path = Path(path) if path is not None else DEFAULT_SPACE
    data = read_toml(path, "search space")
    unknown = set(data) - {"stage"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (a space is a list of [[stage]] tables)")
    raw_stages = data.get("stage")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{path}: no [[stage]] tables")
    base = base or Config()
    stages, names = [], set()
    for i, raw in enumerate(raw_stages, 1):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"].strip():
            raise ConfigError(f"{path}: stage {i} has no name")
        name = raw["name"].strip()
        where = f"{path}: stage {name!r}"
        if name in names:
            raise ConfigError(f"{where}: declared twice")
        names.add(name)
        extra = set(raw) - {"name", "option", "grid", "none"}
        if extra:
            raise ConfigError(f"{where}: unknown key {sorted(extra)[0]!r} (expected option, grid, none)")
        options = [Option(NONE, {})] if raw.get("none", True) else []
        for j, opt in enumerate(raw.get("option", []), 1):
            if not isinstance(opt, dict) or not isinstance(opt.get("label"), str) or \
                    not isinstance(opt.get("set", {}), dict) or set(opt) - {"label", "set"}:
                raise ConfigError(f"{where}: option {j} must be {{ label = \"...\", set = {{ key = value }} }}")
            options.append(Option(opt["label"].strip(), _ordered(opt.get("set", {}))))
        grid = raw.get("grid", {})
        if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
            raise ConfigError(f"{where}: grid must map config keys to non-empty lists of values")
        for combo in itertools.product(*grid.values()) if grid else ():
            ov = dict(zip(grid, combo))
            options.append(Option(", ".join(f"{k}={_label(v)}" for k, v in ov.items()), _ordered(ov)))
        if len(options) < 2 and not (options and options[0].label != NONE):
            raise ConfigError(f"{where}: no options")
        seen: set[str] = set()
        for o in options:
            if not o.label or o.label in seen:
                raise ConfigError(f"{where}: option label {o.label!r} is empty or used twice")
            seen.add(o.label)
            try:
                check_plugins(apply_overrides(base, o.overrides))
            except (ConfigError, PluginError) as exc:
                raise ConfigError(f"{where} option {o.label!r}: {exc}") from None
        stages.append(Stage(name, options))
    unknown_skip = sorted(set(skip) - names)
    if unknown_skip:
        raise ConfigError(f"{path}: no stage {unknown_skip[0]!r} to skip (stages: {', '.join(sorted(names))})")
    stages = [st for st in stages if st.name not in set(skip)]
    if not stages:
        raise ConfigError(f"{path}: every stage is skipped")
    return Space(stages, str(path))


# --- settings, objective ----------------------------------------------------------------------------------------

def parse_objective(text: str) -> dict[str, float]:
    """``ndcg@10`` or ``ndcg@10:0.7,recall@100:0.3`` (weights; ``a,b`` is their plain mean)."""
    out: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        metric, sep, weight = item.partition(":")
        try:
            w = float(weight) if sep else 1.0
        except ValueError:
            raise ConfigError(f"--objective {text!r}: weight {weight!r} is not a number") from None
        if w <= 0:
            raise ConfigError(f"--objective {text!r}: weights must be positive")
        out[metric.strip()] = w
    if not out:
        raise ConfigError("--objective: no metric")
    check_metrics(tuple(out))
    return out


@dataclass
class TuneSettings:
    strategy: str = "greedy"
    objective: dict[str, float] = field(default_factory=lambda: {"ndcg@10": 1.0})
    metrics: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10")
    budget_ms: float | None = None  # p95 latency per query a trial may take to be eligible
    max_minutes: float | None = None  # no new trial starts after this much time
    trials: int = 30  # bayes
    k: int = 100
    seed: int = DEFAULT_SEED
    alpha: float = 0.05
    resamples: int = 10_000
    first_stages_kept: int = 6  # first-stage runs kept in memory (greedy needs the carried one)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        self.metrics = tuple(dict.fromkeys([*self.objective, *self.metrics]))
        check_metrics(self.metrics)
        if self.budget_ms is not None and self.budget_ms <= 0:
            raise ConfigError("--budget-ms must be positive")
        if self.trials < 1:
            raise ConfigError("--trials must be at least 1")

    @property
    def primary(self) -> str:
        return next(iter(self.objective))

    def score(self, metrics: dict[str, float]) -> float:
        return sum(w * metrics[m] for m, w in self.objective.items()) / sum(self.objective.values())


# --- questions --------------------------------------------------------------------------------------------------

def split_queries(dataset: Dataset, fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """A seeded partition of one split's questions: (dev, test), ``fraction`` of them in dev."""
    if not 0 < fraction < 1:
        raise ConfigError(f"--dev-fraction must be between 0 and 1 (got {fraction})")
    order = sorted(dataset.queries, key=lambda q: q.qid)
    random.Random(seed).shuffle(order)
    n = max(1, min(len(order) - 1, round(fraction * len(order))))
    dev_ids = {q.qid for q in order[:n]}
    return (Dataset(dataset.root, [q for q in dataset.queries if q.qid in dev_ids], dataset.corpus),
            Dataset(dataset.root, [q for q in dataset.queries if q.qid not in dev_ids], dataset.corpus))


def synthetic_questions(path: str | Path, like: Dataset) -> Dataset:
    """Dev questions from ``ragkit finetune queries`` (JSONL: qid, query, positives with doc_id): each question's
    relevant document is the one its source chunk came from. Takes the corpus of ``like``."""
    path = Path(path)
    if not path.is_file():
        raise RagkitError(f"{path}: questions file not found")
    queries = []
    for i, row in enumerate(read_jsonl(path), 1):
        text = row.get("query") or row.get("question")
        docs = [p.get("doc_id") for p in row.get("positives", []) if isinstance(p, dict)] or row.get("doc_ids", [])
        if not isinstance(text, str) or not docs:
            raise RagkitError(f"{path}:{i}: expected a question (query) with positives naming a doc_id")
        queries.append(Query(str(row.get("qid") or row.get("id") or f"synth-{i}"), text,
                             {str(d): 1 for d in docs if d}, {"source": "synthetic"}))
    if not queries:
        raise RagkitError(f"{path}: no questions")
    return Dataset(like.root, queries, like.corpus)


def tune_datasets(root: str | Path, *, dev_split: str = "dev", test_split: str | None = "test",
                  questions: str | Path | None = None, corpus: str | Path | None = None,
                  dev_fraction: float | None = None, seed: int = DEFAULT_SEED) -> tuple[Dataset, Dataset | None]:
    """(dev, test) questions: two splits of a dataset; or one split divided by a seeded ``dev_fraction``; or
    synthetic dev questions (``questions``) with the dataset's ``test_split`` (if any) as the real test."""
    from ragkit.evaluate.ablate import load_ablation_dataset

    if questions is not None:
        test = load_ablation_dataset(root, test_split, corpus) if test_split else None
        like = test or load_ablation_dataset(root, dev_split, corpus)
        return synthetic_questions(questions, like), test
    if dev_fraction is not None or test_split in (None, dev_split):
        whole = load_ablation_dataset(root, dev_split, corpus)
        return split_queries(whole, 0.5 if dev_fraction is None else dev_fraction, seed)
    return load_ablation_dataset(root, dev_split, corpus), load_ablation_dataset(root, test_split, corpus)


def index_base(index: str | Path, base: Config) -> Config:
    """The base config of a search over an existing index: ``base`` with the index's own chunker, embedder and
    index settings (those ``base`` does not set; one it sets differently is the engine's one-line refusal)."""
    from ragkit.config import INDEX_SECTIONS, load_config
    from ragkit.index import open_store
    from ragkit.index import settings as index_settings

    store = open_store(index)
    stored = store.settings()
    if store.version() is None or stored is None:
        raise RagkitError(f"{index}: no index there (build one with `ragkit ingest`, or give --dataset)")
    diff = index_settings.mismatch(stored, index_settings.wanted(base), base.model_fields_set)
    if diff is not None:
        raise diff.error(store.location)
    data = base.model_dump(mode="json")
    for section in INDEX_SECTIONS:
        if section not in base.model_fields_set:
            data[section] = stored[section]
    return load_config(data)


def check_in_index(index: str | Path, dataset: Dataset, what: str) -> None:
    """Every document the questions call relevant is in the index (else one line naming the first missing)."""
    from ragkit.evaluate.datasets import doc_keyer
    from ragkit.index import open_store

    reader = open_store(index).reader()
    if reader is None:
        raise RagkitError(f"{index}: no index there (build one with `ragkit ingest`)")
    try:
        indexed = {d.doc_id for d in reader.documents()}
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    wanted = {d for q in dataset.queries for d in q.relevant}
    keyer = doc_keyer(indexed, wanted)
    held = {keyer(d) for d in indexed} if keyer else indexed
    missing = [q for q in dataset.queries if not set(q.relevant) & held]
    if missing:
        doc = next(d for d in sorted(missing[0].relevant) if d not in held)
        raise RagkitError(f"{what}: {len(missing)} of {len(dataset.queries)} questions name only documents the "
                          f"index {index} does not hold (e.g. {missing[0].qid}: {doc!r}); were they written for "
                          "another index?")


def index_datasets(index: str | Path, questions: str | Path, *, dataset: str | Path | None = None,
                   test_split: str | None = "test", corpus: str | Path | None = None,
                   dev_fraction: float | None = None,
                   seed: int = DEFAULT_SEED) -> tuple[Dataset, Dataset | None, str]:
    """(dev, test, what the test is) of a search over an existing index with synthetic ``questions``: with a
    ``dataset``, its ``test_split`` (real questions) is the test; without, a seeded ``1 - dev_fraction`` (default
    half) of the synthetic questions is held out as the test (synthetic too)."""
    from ragkit.evaluate.ablate import load_ablation_dataset

    root = Path(str(index))
    dev = synthetic_questions(questions, Dataset(root, [], None))
    check_in_index(index, dev, str(questions))
    if dataset is not None and test_split:
        test = load_ablation_dataset(dataset, test_split, corpus)
        test = Dataset(root, test.queries, None)
        check_in_index(index, test, f"{dataset} ({test_split})")
        return dev, test, f"real questions ({Path(dataset).name}, {test_split} split)"
    if len(dev.queries) < 2:
        raise RagkitError(f"{questions}: at least 2 questions are needed to hold some out as the test")
    dev, test = split_queries(dev, 0.5 if dev_fraction is None else dev_fraction, seed)
    return dev, test, "held-out synthetic questions"


# --- trials -----------------------------------------------------------------------------------------------------

class TrialLog:
    """``trials.jsonl``: a header naming what the trials were measured on, then one finished trial per line. A
    log of another search (other dev questions, base config, metrics or depth) is refused, not mixed in; a torn
    last line (killed mid-write) is dropped."""

    def __init__(self, path: Path, header: dict[str, Any], fresh: bool = False) -> None:
        self.path = path
        self.header = header
        self.trials: dict[str, dict[str, Any]] = {}  # config key -> trial
        if fresh and path.exists():
            path.unlink()
        if path.exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            try:
                head = json.loads(lines[0]) if lines else {}
            except ValueError:
                head = {}
            if head.get("fingerprint") != header["fingerprint"]:
                raise RagkitError(f"{path}: trials of another search (other questions, base config or metrics); "
                                  "use another --out or --fresh")
            for line in lines[1:]:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                self.trials[rec["key"]] = rec
            self._rewrite()  # drops a torn line
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._rewrite()

    def _rewrite(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(self.header, sort_keys=True) + "\n")
            for rec in self.trials.values():
                fh.write(json.dumps(rec, sort_keys=True) + "\n")
        os.replace(tmp, self.path)

    def add(self, rec: dict[str, Any]) -> None:
        self.trials[rec["key"]] = rec
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
            fh.flush()


class _OutOfTime(Exception):
    pass


def models_named(value: Any) -> Iterator[str]:
    """Every ``model`` string anywhere in a config or a space option's overrides (nested dicts and lists)."""
    if isinstance(value, dict):
        for k, v in value.items():
            if (k == "model" or k.endswith(".model")) and isinstance(v, str):
                yield v
            else:
                yield from models_named(v)
    elif isinstance(value, list):
        for v in value:
            yield from models_named(v)


def trained_questions(base: Config, space: Space) -> dict[str, set[str]]:
    """The question ids each fine-tuned model of the base config or the space was trained on, from the card
    ``ragkit finetune`` writes beside the weights (models without such a card, e.g. hub names, train on none)."""
    from ragkit.finetune.training import read_card

    names = set(models_named(base.model_dump(mode="json")))
    for stage in space.stages:
        for option in stage.options:
            names.update(models_named(option.overrides))
    out = {}
    for name in sorted(names):
        path = Path(name).expanduser()
        card = read_card(path) if path.is_dir() else None
        if card and card.get("train_questions"):
            out[name] = set(map(str, card["train_questions"]))
    return out


def without_trained_questions(dev: Dataset, base: Config, space: Space) -> tuple[Dataset, dict[str, Any]]:
    """``dev`` without the questions a fine-tuned model in the search was trained on: a model scores its own
    training questions too well, so selecting on them favours it (and its blend weight) unfairly."""
    seen = trained_questions(base, space)
    drop = set().union(*seen.values()) if seen else set()
    kept = [q for q in dev.queries if q.qid not in drop]
    info = {"questions": len(dev.queries) - len(kept),
            "models": {name: len(qids & {q.qid for q in dev.queries}) for name, qids in seen.items()}}
    if not kept:
        raise RagkitError(f"{dev.root}: every dev question was used to train {', '.join(sorted(seen))}; "
                          "select on questions the model never saw (its held-out part, or another split)")
    return Dataset(dev.root, kept, dev.corpus), info


def with_models_replaced(value: Any, mapping: dict[str, str]) -> Any:
    """``value`` (a config dump or overrides) with every ``model`` string that is a key of ``mapping`` replaced."""
    if isinstance(value, dict):
        return {k: (mapping.get(v, v) if (k == "model" or k.endswith(".model")) and isinstance(v, str)
                    else with_models_replaced(v, mapping)) for k, v in value.items()}
    if isinstance(value, list):
        return [with_models_replaced(v, mapping) for v in value]
    return value


def check_refit(refit: dict[str, str], test: Dataset | None) -> None:
    """Every refit model exists and was not trained on a test question (the test stays unseen)."""
    from ragkit.finetune.training import read_card

    for old, new in refit.items():
        path = Path(new).expanduser()
        if not path.is_dir():
            raise RagkitError(f"refit model {new} (for {old}): no such model directory")
        card = read_card(path) or {}
        if test is not None:
            seen = set(map(str, card.get("train_questions") or ())) & {q.qid for q in test.queries}
            if seen:
                raise RagkitError(f"refit model {new} was trained on {len(seen)} test questions (e.g. "
                                  f"{sorted(seen)[0]}): the test must stay unseen")


def parse_refit(items: list[str] | None) -> dict[str, str]:
    """``OLD=NEW`` pairs (the CLI's ``--refit``)."""
    out = {}
    for item in items or ():
        old, sep, new = item.partition("=")
        if not sep or not old or not new:
            raise ConfigError(f"--refit {item!r}: expected OLD_MODEL=NEW_MODEL")
        out[old] = new
    return out


class Tuner:
    """One search: ``dev`` questions for selection, ``test`` questions (optional) for the final comparison."""

    def __init__(self, dev: Dataset, base: Config, space: Space, out: Path, *, test: Dataset | None = None,
                 settings: TuneSettings | None = None, cache_root: Path | None = None,
                 progress: Progress | None = None, fresh: bool = False, index: str | Path | None = None,
                 test_source: str = "test split", refit: dict[str, str] | None = None) -> None:
        """``index``: an existing index to search over (its chunks and embeddings are reused as they are; trials
        that would change them are skipped); ``base`` must then carry the index's settings (:func:`index_base`).
        ``test_source``: what the test questions are, for the report. ``refit``: model -> model trained on more
        data (e.g. the dev questions too) that the chosen pipeline uses instead after the search, in the test
        run and in the written config; the search itself never sees it."""
        if not dev.queries:
            raise RagkitError(f"{dev.root}: no dev questions")
        if test is not None:
            overlap = {q.qid for q in dev.queries} & {q.qid for q in test.queries}
            if overlap:
                raise RagkitError(f"dev and test share {len(overlap)} questions (e.g. {sorted(overlap)[0]}): "
                                  "give disjoint splits")
        self.refit = dict(refit or {})
        check_refit(self.refit, test)
        dev, self.dev_excluded = without_trained_questions(dev, base, space)
        self.dev, self.test, self.base, self.space = dev, test, base, space
        self.out = Path(out)
        self.s = settings or TuneSettings()
        self.cache_root = cache_root
        self.progress = progress
        self.fresh = fresh
        self.index = str(index) if index is not None else None
        self.test_source = test_source
        self._ablation: Ablation | None = None
        self.reuse: dict[str, int] = {}  # the dev ablation's reuse counts (indexes, first stages, reranker scores)
        self.trials: list[dict[str, Any]] = []  # in the order the search asked for them (memo hits once)
        self.path: list[dict[str, Any]] = []
        self.stopped: str | None = None
        self._evaluated = 0  # trials run in this process (not resumed)
        self._t0 = 0.0
        self._planned = 0

    # -- plumbing --

    def _abl_settings(self, split: str) -> AblationSettings:
        return AblationSettings(metrics=self.s.metrics, k=self.s.k, seed=self.s.seed, alpha=self.s.alpha,
                                resamples=self.s.resamples, split=split)

    def _dev_ablation(self) -> Ablation:
        if self._ablation is None:
            self._ablation = Ablation(self.dev, self.base, [], self.out, settings=self._abl_settings("dev"),
                                      cache_root=self.cache_root, progress=self._inner_progress, index=self.index)
            self._ablation.max_first_stages = self.s.first_stages_kept
        return self._ablation

    def _inner_progress(self, variant: str, phase: str, done: int, total: int) -> None:
        if self.progress and variant == "(index)":
            self.progress({"event": "index", "stage": phase, "done": done, "total": total})

    def config_of(self, choice: dict[str, str]) -> Config:
        cfg = self.base
        for stage in self.space.stages:
            opt = stage.option(choice.get(stage.name, NONE))
            if opt.overrides:
                cfg = apply_overrides(cfg, opt.overrides)
        return cfg

    def chosen_config(self, choice: dict[str, str]) -> Config:
        """The configuration the search chose, with the refit models in place of the ones it searched with."""
        cfg = self.config_of(choice)
        if not self.refit:
            return cfg
        return Config.model_validate(with_models_replaced(cfg.model_dump(mode="json"), self.refit))

    @staticmethod
    def name_of(choice: dict[str, str]) -> str:
        parts = [f"{s}={o}" for s, o in choice.items() if o != NONE]
        return " + ".join(parts) if parts else "baseline"

    def _eligible(self, t: dict[str, Any]) -> bool:
        return t["status"] == "done" and (self.s.budget_ms is None or t["p95_ms"] <= self.s.budget_ms)

    def _elapsed(self) -> float:
        return time.perf_counter() - self._t0

    def _trial(self, choice: dict[str, str], stage: str, log: TrialLog) -> dict[str, Any]:
        """The trial of this choice: from the log when it already ran (this search or an interrupted one),
        else run now on the dev questions."""
        choice = {s.name: choice.get(s.name, NONE) for s in self.space.stages}
        cfg = self.config_of(choice)
        key = config_hash(cfg.model_dump(mode="json"))
        known = next((t for t in self.trials if t["key"] == key), None)
        if known is not None:
            return known
        rec = log.trials.get(key)
        if rec is not None:
            rec = {**rec, "resumed": True}
        else:
            if self.s.max_minutes is not None and self._elapsed() > self.s.max_minutes * 60:
                raise _OutOfTime
            res = self._dev_ablation().evaluate(self.name_of(choice), cfg)
            rec = {"key": key, "choice": choice, "name": self.name_of(choice), "stage": stage,
                   "status": res.get("status", "done")}
            if rec["status"] == "done":
                lat = res["latency_ms"]["total"]
                rec.update(metrics=res["metrics"], objective=self.s.score(res["metrics"]), p50_ms=lat["p50"],
                           p95_ms=lat["p95"], latency_ms=res["latency_ms"], index=res["index"],
                           seconds=res["seconds"], index_built=bool(self._index_built(res)),
                           per_query={m: [round(x, 6) for x in v] for m, v in res["per_query"].items()})
                if "rerank_scores" in res:
                    rec["rerank_scores"] = res["rerank_scores"]
            else:
                rec["reason"] = res.get("reason", "")
            log.add(rec)
            rec = {**rec, "resumed": False}
            self._evaluated += 1
        rec["n"] = len(self.trials)
        rec["eligible"] = self._eligible(rec)
        self.trials.append(rec)
        if self.progress:
            done = len(self.trials)
            per = self._elapsed() / self._evaluated if self._evaluated else 0.0
            eta = per * max(0, self._planned - done)
            if self.s.max_minutes is not None:
                eta = min(eta, max(0.0, self.s.max_minutes * 60 - self._elapsed()))
            self.progress({"event": "trial", "n": done, "planned": self._planned, "name": rec["name"],
                           "stage": stage, "status": rec["status"], "objective": rec.get("objective"),
                           "p95_ms": rec.get("p95_ms"), "eligible": rec["eligible"], "resumed": rec["resumed"],
                           "reason": rec.get("reason"), "elapsed": self._elapsed(), "eta": eta})
        return rec

    def _index_built(self, res: dict[str, Any]) -> bool:
        # the first trial on an index shape pays for building it (embedding a new chunking)
        key = res["index"].get("key")
        first = key not in {t.get("index", {}).get("key") for t in self.trials}
        return first

    def _best(self, trials: list[dict[str, Any]]) -> dict[str, Any] | None:
        ok = [t for t in trials if t["eligible"]]
        return max(ok, key=lambda t: t["objective"]) if ok else None  # max keeps the first of equals

    # -- strategies --

    def _greedy(self, log: TrialLog) -> None:
        self._planned = 1 + sum(len(s.options) - 1 for s in self.space.stages)
        current = {s.name: NONE for s in self.space.stages}
        self._trial(current, "baseline", log)
        for stage in self.space.stages:
            tried = [self._trial({**current, stage.name: o.label}, stage.name, log) for o in stage.options]
            pick = self._best(tried)
            if pick is None:  # nothing eligible: leave the stage as it is
                pick = tried[0]
            current = dict(pick["choice"])
            self.path.append({"stage": stage.name, "chosen": current[stage.name], "trial": pick["n"],
                              "objective": pick.get("objective"), "p95_ms": pick.get("p95_ms"),
                              "tried": len(tried), "eligible": sum(t["eligible"] for t in tried)})

    def _bayes(self, log: TrialLog) -> None:
        optuna = require_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._planned = min(self.s.trials, self.space.size)
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=self.s.seed))
        study.enqueue_trial({s.name: NONE for s in self.space.stages})  # the baseline first
        best = None
        wanted = min(self.s.trials, self.space.size)  # distinct configurations; a repeated suggestion is free
        for _ in range(4 * wanted):
            if len(self.trials) >= wanted:
                break
            ot = study.ask()
            choice = {s.name: ot.suggest_categorical(s.name, [o.label for o in s.options]) for s in self.space.stages}
            t = self._trial(choice, "bayes", log)
            if t["status"] != "done":
                value = -1.0
            else:  # over budget: below every eligible trial, still ordered by quality
                value = t["objective"] - (0.0 if t["eligible"] else 1.0)
            study.tell(ot, value)
            if t["eligible"] and (best is None or t["objective"] > best["objective"]):
                best = t
                self.path.append({"stage": "bayes", "chosen": t["name"], "trial": t["n"],
                                  "objective": t["objective"], "p95_ms": t["p95_ms"], "tried": len(self.trials),
                                  "eligible": sum(x["eligible"] for x in self.trials)})

    # -- the whole search --

    def fingerprint(self) -> dict[str, Any]:
        from ragkit.evaluate.runner import corpus_fingerprint

        return {"schema": SCHEMA, "fingerprint": config_hash({
            "corpus": corpus_fingerprint(self.dev.corpus) if self.dev.corpus else None,
            **({"index": [self.index, index_version(self.index)]} if self.index else {}),
            "dev": {q.qid: [q.text, q.relevant] for q in self.dev.queries},
            "base": self.base.model_dump(mode="json"), "metrics": self.s.metrics, "k": self.s.k})}

    def search(self) -> dict[str, Any] | None:
        """Run the strategy on the dev questions; the winner (the best eligible trial), or None."""
        self._t0 = time.perf_counter()
        log = TrialLog(self.out / "trials.jsonl", self.fingerprint(), fresh=self.fresh)
        try:
            (self._greedy if self.s.strategy == "greedy" else self._bayes)(log)
        except _OutOfTime:
            self.stopped = f"time limit ({self.s.max_minutes:g} min) reached after {len(self.trials)} trials"
        self.search_seconds = self._elapsed()
        return self._best(self.trials)

    def final(self, winner: dict[str, Any]) -> dict[str, Any] | None:
        """The winner and the baseline, once, on the test questions: metrics, latency and a paired comparison."""
        if self.test is None:
            return None
        baseline = self.trials[0]
        abl = Ablation(self.test, self.base, [], self.out, settings=self._abl_settings("test"),
                       cache_root=self.cache_root, progress=self._inner_progress, index=self.index)
        try:
            if self.progress:
                self.progress({"event": "final", "queries": len(self.test.queries)})
            w = abl.evaluate("winner", self.chosen_config(winner["choice"]))
            b = abl.evaluate("baseline", self.config_of(baseline["choice"]))
        finally:
            abl.close()
        for r, what in ((w, "winner"), (b, "baseline")):
            if r.get("status", "done") != "done":
                raise RagkitError(f"the {what} could not run on the test questions: {r.get('reason')}")
        p = self.s.primary
        a_w, a_b = np.array(w["per_query"][p]), np.array(b["per_query"][p])
        obj_w = np.sum([wt * np.array(w["per_query"][m]) for m, wt in self.s.objective.items()], axis=0) / \
            sum(self.s.objective.values())
        obj_b = np.sum([wt * np.array(b["per_query"][m]) for m, wt in self.s.objective.items()], axis=0) / \
            sum(self.s.objective.values())
        kw = {"alpha": self.s.alpha, "resamples": self.s.resamples, "seed": self.s.seed}
        return {"queries": len(self.test.queries), "source": self.test_source,
                "winner": {"metrics": w["metrics"], "latency_ms": w["latency_ms"]["total"],
                           "ci95": {p: list(mean_ci(a_w, seed=self.s.seed))}},
                "baseline": {"metrics": b["metrics"], "latency_ms": b["latency_ms"]["total"],
                             "ci95": {p: list(mean_ci(a_b, seed=self.s.seed))}},
                "comparison": {m: compare(np.array(w["per_query"][m]), np.array(b["per_query"][m]), **kw).to_dict()
                               for m in self.s.metrics},
                "objective_comparison": compare(obj_w, obj_b, **kw).to_dict(),
                "same_pipeline": winner["key"] == baseline["key"]}

    def close(self) -> None:
        if self._ablation is not None:
            self.reuse = dict(self._ablation.stats)  # kept for the summary after the dev indexes are released
            self._ablation.close()
            self._ablation = None

    def run(self) -> dict[str, Any]:
        try:
            winner = self.search()
            self.close()  # release the dev indexes before the test run opens its own
            if winner is None:
                raise RagkitError("no trial was eligible: every configuration was over the latency budget or "
                                  "could not run (raise --budget-ms, or check the skipped reasons in trials.jsonl)")
            test = self.final(winner)
            return self.summary(winner, test)
        finally:
            self.close()

    # -- the summary (ablate's report shape, plus a "tune" section) --

    def summary(self, winner: dict[str, Any], test: dict[str, Any] | None) -> dict[str, Any]:
        s = self.s
        primary = s.primary
        baseline = self.trials[0]
        variants = []
        for t in self.trials:
            item = {"name": f"#{t['n']} {t['name']}", "status": t["status"], "description": t["name"],
                    "overrides": {k: v for st in self.space.stages
                                  for k, v in st.option(t["choice"][st.name]).overrides.items()},
                    "parent": None, "reference": None if t is baseline else f"#0 {baseline['name']}",
                    "stage": t["stage"], "eligible": t["eligible"], "resumed": t.get("resumed", False)}
            if t["status"] == "done":
                if "rerank_scores" in t:
                    item["rerank_scores"] = t["rerank_scores"]
                item.update(metrics=t["metrics"], latency_ms=t["latency_ms"], index=t["index"],
                            seconds=t["seconds"], objective=t["objective"],
                            ci95={m: [round(x, 6) for x in mean_ci(np.array(t["per_query"][m]), seed=s.seed)]
                                  for m in s.metrics})
                if t is not baseline and baseline["status"] == "done":
                    item["vs_reference"] = {m: compare(np.array(t["per_query"][m]),
                                                       np.array(baseline["per_query"][m]), alpha=s.alpha,
                                                       resamples=s.resamples, seed=s.seed).to_dict()
                                            for m in s.metrics}
            else:
                item["reason"] = t.get("reason", "")
            if self.s.budget_ms is not None and t["status"] == "done" and not t["eligible"]:
                item["status_note"] = f"over budget (p95 {t['p95_ms']:.1f} ms > {self.s.budget_ms:g} ms)"
            variants.append(item)
        done = [v for v in variants if v["status"] == "done"]
        front = pareto_front([(v["name"], v["latency_ms"]["total"]["p50"], v["metrics"][primary]) for v in done])
        reuse = dict(self._ablation.stats) if self._ablation else dict(self.reuse)
        load = [x for x in (os.getloadavg()[0],)] if hasattr(os, "getloadavg") else []
        notes = []
        cpus = os.cpu_count() or 1
        if load and max(load) > cpus:
            notes.append(f"The CPU was shared while this ran (1-minute load average {max(load):.1f} on {cpus} "
                         "cores): latencies are pessimistic and eligibility near the budget is noisy.")
        if self.stopped:
            notes.append(f"The search stopped early: {self.stopped}.")
        return {
            "schema": SCHEMA, "title": f"Tune: {Path(self.dev.root).name}",
            "dataset": {"root": str(self.dev.root), "corpus": str(self.dev.corpus) if self.dev.corpus else None,
                        "index": self.index, "split": "dev",
                        "queries": len(self.dev.queries), "groups": {}},
            "settings": {"metrics": list(s.metrics), "primary": primary, "k": s.k, "limit": None, "answers": False,
                         "seed": s.seed, "alpha": s.alpha, "resamples": s.resamples,
                         "test": "paired randomization (sign-flip), two-sided",
                         "ci": "95% percentile bootstrap over queries"},
            "base_config": self.base.model_dump(mode="json"),
            "variants": variants, "pareto": front, "reuse": reuse,
            "machine": {"cpus": cpus, "load_average": [round(x, 2) for x in load]},
            "notes": notes, "seconds": round(self.search_seconds, 1),
            "variant_seconds": round(sum(t.get("seconds") or 0.0 for t in self.trials if not t.get("resumed")), 1),
            "tune": {
                "strategy": s.strategy, "objective": s.objective, "budget_ms": s.budget_ms,
                "max_minutes": s.max_minutes, "seed": s.seed, "space": self.space.to_dict(),
                "space_size": self.space.size, "trials": len(self.trials),
                "trials_run": self._evaluated, "trials_resumed": len(self.trials) - self._evaluated,
                "trials_skipped": sum(t["status"] != "done" for t in self.trials),
                "trials_over_budget": sum(t["status"] == "done" and not t["eligible"] for t in self.trials),
                "search_seconds": round(self.search_seconds, 1), "stopped": self.stopped, "path": self.path,
                "dev_queries": len(self.dev.queries), "index": self.index, "dev_excluded": self.dev_excluded,
                "test_queries": len(self.test.queries) if self.test is not None else 0,
                "winner": {"name": winner["name"], "choice": winner["choice"], "trial": winner["n"],
                           "dev_metrics": winner["metrics"], "dev_objective": winner["objective"],
                           "dev_p95_ms": winner["p95_ms"],
                           "config": self.chosen_config(winner["choice"]).model_dump(mode="json"),
                           "refit": {k: v for k, v in self.refit.items()
                                     if k in set(models_named(self.config_of(winner["choice"]).model_dump(
                                         mode="json")))}},
                "baseline": {"name": baseline["name"], "dev_metrics": baseline.get("metrics"),
                             "dev_objective": baseline.get("objective"), "dev_p95_ms": baseline.get("p95_ms"),
                             "eligible": baseline["eligible"]},
                "test": test,
            },
        }


def require_optuna():
    try:
        import optuna
    except ImportError:
        raise RagkitError("--strategy bayes needs optuna: pip install 'ragkit[tune]'") from None
    return optuna


def write_outputs(summary: dict[str, Any], out: Path) -> dict[str, Path]:
    """``ragkit.toml`` (the winner), ``report.md`` / ``report.html`` / ``results.json`` (ablate's report with the
    search's sections) under ``out``."""
    from ragkit.config import config_toml, load_config
    from ragkit.evaluate.report import write_report

    out = Path(out)
    cfg = load_config(summary["tune"]["winner"]["config"])
    head = (f"# Chosen by `ragkit tune` ({summary['tune']['strategy']}, {summary['tune']['trials']} trials) on "
            f"{summary['dataset']['root']}: {summary['tune']['winner']['name']}\n"
            f"# dev {summary['settings']['primary']} {summary['tune']['winner']['dev_objective']:.4f}, p95 "
            f"{summary['tune']['winner']['dev_p95_ms']:.1f} ms/query. Index with this config before querying with it.\n")
    paths = write_report(summary, out)
    paths["config"] = out / "ragkit.toml"
    paths["config"].write_text(head + config_toml(cfg), encoding="utf-8")
    return paths
