"""Adapt the embedding model to the corpus: contrastive fine-tuning with in-batch and hard negatives.

The loss is MultipleNegativesRankingLoss written out: a batch of B questions, each with its positive and one hard
negative, is embedded; every question must score its own positive above the 2B-1 other passages of the batch
(cosine similarity times ``scale``, softmax cross-entropy). Passages of a question's own positive document are
masked out, so two synthetic questions about one chunk never push each other's positive away.

``lora=True`` trains low-rank adapters (peft, extra ``ragkit[finetune]``) beside the frozen encoder; the adapter
is saved in ``lora-adapter/`` and also merged into the saved model, so the folder loads as an ordinary
sentence-transformers model (``[embedder] model = "models/embedder"``). Re-embedding an index with it is
``ragkit ingest PATHS --rebuild --set embedder.model=models/embedder``; the embedding cache is keyed by the
weights' fingerprint, so vectors of an older model in the same folder are never reused.
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

LORA_TARGETS = ("query", "key", "value")  # BERT-family attention projections


def load_base(base: str, max_seq_length: int | None, seed: int = 0) -> Any:
    import torch
    from sentence_transformers import SentenceTransformer

    quiet_transformers()
    torch.manual_seed(seed)
    try:
        model = SentenceTransformer(resolve_base(base), device="cpu")
    except Exception as exc:
        raise RagkitError(f"embedder base {base!r}: cannot load: {first_line(exc)}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length
    return model


def _encoder(model: Any) -> tuple[Any, str]:
    """The Hugging Face module inside the first sentence-transformers module, and its attribute name."""
    first = model[0]
    for attr in ("model", "auto_model"):
        if hasattr(first, attr):
            return getattr(first, attr), attr
    raise RagkitError("embedder: the first module is not a transformer (cannot fine-tune it)")


def scorer(model: Any, batch_size: int = 32) -> Callable[[str, list[str]], list[float]]:
    def score(query: str, texts: list[str]) -> list[float]:
        vecs = model.encode([query, *texts], batch_size=batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        return [float(x) for x in vecs[1:] @ vecs[0]]

    return score


def train_embedder(train: list[Example], out: Path, *, heldout: list[Example] | None = None,
                   base: str = "all-MiniLM-L6-v2", lora: bool = False, lora_r: int = 8, lora_alpha: int = 16,
                   epochs: float = 1.0, batch_size: int = 32, hard_negatives: int = 1, lr: float | None = None,
                   scale: float = 20.0, max_seq_length: int | None = 256, warmup: float = 0.1,
                   max_minutes: float | None = 25.0, max_steps: int | None = None, seed: int = 0,
                   threads: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Fine-tune (or LoRA-adapt) the embedder and save it; returns the card (``out/ragkit-finetune.json``)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    triples = list(iter_pairs(train, hard_negatives))
    if len(triples) < 2 or batch_size < 2:
        raise RagkitError("embedder: need at least 2 training pairs and --batch-size >= 2 (in-batch negatives)")
    if threads:
        torch.set_num_threads(threads)
    lr = lr if lr is not None else (2e-4 if lora else 2e-5)
    model = load_base(base, max_seq_length, seed)
    heldout = heldout or []
    model.eval()
    with torch.no_grad():
        before = ranking_metrics(heldout, scorer(model))
    first_stage = ranking_metrics(heldout, None)

    peft_model = None
    if lora:
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise RagkitError("--lora needs peft: pip install 'ragkit[finetune]'") from None
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")  # peft's deprecated calls
        inner, attr = _encoder(model)
        peft_model = get_peft_model(inner, LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=0.1,
                                                      target_modules=list(LORA_TARGETS)))
        setattr(model[0], attr, peft_model)
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable, n_total = sum(p.numel() for p in params), sum(p.numel() for p in model.parameters())

    steps_per_epoch = math.ceil(len(triples) / batch_size)
    total = max(1, math.ceil(steps_per_epoch * epochs))
    if max_steps:
        total = min(total, max_steps)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(opt, int(warmup * total), total)
    budget = Budget(max_minutes, total)
    log = LossLog()
    t0 = time.perf_counter()
    model.train()

    def embed(texts: list[str]) -> Any:
        feats = model.tokenize(texts)
        return torch.nn.functional.normalize(model(feats)["sentence_embedding"], dim=-1)

    for batch in batches(triples, batch_size, seed, budget, lambda: len(log.losses)):
        if len(batch) < 2:  # the last batch of an epoch can hold one question: no in-batch negative
            continue
        passages = [p for _, p, _ in batch] + [n for _, _, negs in batch for n in negs]
        q = embed([qq for qq, _, _ in batch])
        d = embed([p.text for p in passages])
        sims = scale * (q @ d.T)
        mask = torch.zeros_like(sims, dtype=torch.bool)
        for i, (_, pos, _) in enumerate(batch):
            own = pos.doc_id or pos.id
            for j, p in enumerate(passages):
                if j != i and ((p.doc_id or p.id) == own or p.text == pos.text):
                    mask[i, j] = True
        sims = sims.masked_fill(mask, float("-inf"))
        value = torch.nn.functional.cross_entropy(sims, torch.arange(len(batch)))
        train_step(value, params, opt, sched, log, total, progress)
    minutes = (time.perf_counter() - t0) / 60
    step = len(log.losses)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    if peft_model is not None:
        peft_model.save_pretrained(str(out / "lora-adapter"))
        _, attr = _encoder(model)
        setattr(model[0], attr, peft_model.merge_and_unload())
    model.save(str(out))
    with torch.no_grad():
        after = ranking_metrics(heldout, scorer(model))
    png = save_loss(out, log, f"embedder from {Path(base).name} ({'LoRA' if lora else 'full'} fine-tune)")
    card = {"kind": "embedder", "base": base, "method": f"lora r={lora_r} alpha={lora_alpha}" if lora else "full",
            "trainable_parameters": n_trainable, "total_parameters": n_total, "train_examples": len(train),
            "train_pairs": len(triples), "heldout_examples": len(heldout), "batch_size": batch_size,
            "hard_negatives": hard_negatives, "lr": lr, "scale": scale, "max_seq_length": max_seq_length,
            "seed": seed, "steps": step, "epochs_done": round(step / steps_per_epoch, 3), "minutes": round(minutes, 2),
            "stopped_by": "completed" if step >= total else budget.reason,
            "final_loss_mean20": round(log.smoothed()[-1], 4) if log.losses else None,
            "heldout": {"first_stage": first_stage, "base": before, "trained": after},
            "loss_plot": png.name if png else None,
            "train_questions": sorted({ex.qid for ex in train})}
    write_card(out, card)
    return card
