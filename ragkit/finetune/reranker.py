"""Train a cross-encoder reranker on (question, positive, hard negatives) examples.

The model is a sentence-transformers ``CrossEncoder`` with one output, initialised from a base checkpoint (the
offline all-MiniLM-L6-v2 by default: a bi-encoder's encoder with a new scoring head, since no pretrained
cross-encoder is reachable offline). Each step scores a few question groups, each group the positive followed by
its hard negatives, and minimises either

- ``listwise`` (default): softmax cross-entropy of the positive within its group (the ranking the reranker
  is used for), or
- ``bce``: binary cross-entropy per pair.

The result is saved with ``CrossEncoder.save``: the ``cross-encoder`` reranker plugin loads the folder as is
(``model = "models/reranker"``). Beside it: ``ragkit-finetune.json`` (settings, budget used, held-out
before/after), ``loss.json`` and ``loss.png``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ragkit.errors import RagkitError, first_line
from ragkit.finetune.data import Example, iter_pairs
from ragkit.finetune.training import (Budget, LossLog, batches, quiet_transformers, train_step, ranking_metrics,
                                      resolve_base, save_loss, write_card)

LOSSES = ("listwise", "bce")


def load_base(base: str, *, max_length: int, layers: int | None = None, seed: int = 0) -> Any:
    import torch
    from sentence_transformers import CrossEncoder

    quiet_transformers()
    torch.manual_seed(seed)
    kwargs: dict[str, Any] = {"num_labels": 1, "max_length": max_length, "device": "cpu"}
    if layers:
        kwargs["config_kwargs"] = {"num_hidden_layers": layers}
    try:
        return CrossEncoder(resolve_base(base), **kwargs)
    except Exception as exc:  # unreachable hub, not a transformer checkpoint
        raise RagkitError(f"reranker base {base!r}: cannot load: {first_line(exc)}") from None


def scorer(model: Any, batch_size: int = 32) -> Callable[[str, list[str]], list[float]]:
    def score(query: str, texts: list[str]) -> list[float]:
        out = model.predict([(query, t) for t in texts], batch_size=batch_size, show_progress_bar=False,
                            convert_to_numpy=True)
        return [float(x) for x in out.reshape(len(texts), -1)[:, -1]]

    return score


def train_reranker(train: list[Example], out: Path, *, heldout: list[Example] | None = None,
                   base: str = "all-MiniLM-L6-v2", loss: str = "listwise", epochs: float = 1.0,
                   groups_per_step: int = 4, negatives: int = 3, max_length: int = 160, lr: float = 3e-5,
                   warmup: float = 0.1, max_minutes: float | None = 25.0, max_steps: int | None = None,
                   layers: int | None = None, seed: int = 0, threads: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Fine-tune and save a cross-encoder; returns the card (also written to ``out/ragkit-finetune.json``)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    if loss not in LOSSES:
        raise RagkitError(f"reranker loss {loss!r}: unknown ({', '.join(LOSSES)})")
    groups = [(q, p, negs) for q, p, negs in iter_pairs(train, negatives) if negs]
    if not groups:
        raise RagkitError("no training example has both a positive and a negative passage")
    if threads:
        torch.set_num_threads(threads)
    model = load_base(base, max_length=max_length, layers=layers, seed=seed)
    heldout = heldout or []
    before = ranking_metrics(heldout, None)

    steps_per_epoch = math.ceil(len(groups) / groups_per_step)
    total = max(1, math.ceil(steps_per_epoch * epochs))
    if max_steps:
        total = min(total, max_steps)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(warmup * total), total)
    bce = torch.nn.BCEWithLogitsLoss()
    budget = Budget(max_minutes, total)
    log = LossLog()
    t0 = time.perf_counter()
    model.train()
    for batch in batches(groups, groups_per_step, seed, budget, lambda: len(log.losses)):
        pairs, sizes = [], []
        for q, p, negs in batch:
            pairs += [[q, p.text]] + [[q, n.text] for n in negs]
            sizes.append(1 + len(negs))
        logits = model(model.preprocess(pairs))["scores"].view(-1)
        if loss == "bce":
            labels = torch.cat([torch.tensor([1.0] + [0.0] * (s - 1)) for s in sizes])
            value = bce(logits, labels)
        else:
            parts = torch.split(logits, sizes)
            value = torch.stack([-torch.log_softmax(g, dim=0)[0] for g in parts]).mean()
        train_step(value, model.parameters(), opt, sched, log, total, progress)
    minutes = (time.perf_counter() - t0) / 60
    step = len(log.losses)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    with torch.no_grad():
        after = ranking_metrics(heldout, scorer(model))
    png = save_loss(out, log, f"cross-encoder from {Path(base).name} ({loss} loss)")
    card = {"kind": "reranker", "base": base, "loss": loss, "train_examples": len(train), "train_groups": len(groups),
            "heldout_examples": len(heldout), "negatives_per_group": negatives, "groups_per_step": groups_per_step,
            "max_length": max_length, "lr": lr, "layers": layers, "seed": seed, "steps": step,
            "epochs_done": round(step / steps_per_epoch, 3), "minutes": round(minutes, 2),
            "stopped_by": "completed" if step >= total else budget.reason,
            "final_loss_mean20": round(log.smoothed()[-1], 4) if log.losses else None,
            "heldout": {"first_stage": before, "trained": after}, "loss_plot": png.name if png else None,
            "train_questions": sorted({ex.qid for ex in train})}
    write_card(out, card)
    return card
