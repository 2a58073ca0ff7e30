"""Query embedding on ONNX Runtime, so a fresh process embeds a query without importing torch.

Importing sentence-transformers (which pulls in torch, transformers and scikit-learn) costs seconds; a hybrid
``ragkit query`` embeds one short question. The embedder's transformer, its mean pooling and the final
normalisation are exported once to ONNX, beside the model's fast tokenizer, in a folder of the ragkit cache
(``$RAGKIT_CACHE`` or ``~/.cache/ragkit``, under ``onnx/``); later processes load only onnxruntime and tokenizers.
The export needs torch and the ``onnx`` package, and runs once per model, in the first process that embeds a
query with the folder missing.

Only models whose sentence-transformers pipeline is a transformer followed by mean pooling (and optionally a
normalisation) are exported; any other shape keeps the torch path. The exported model computes in float32: its
vectors match sentence-transformers' float32 ones to about 1e-6.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

EXPORT_VERSION = 1
FILES = ("model.onnx", "tokenizer.json", "meta.json")
# The fixed cost of one model call, in tokens of work: MiniLM-L6 on one thread cost about 3.7 ms alone and 2.8 ms
# per query in a call of 16 at 17 tokens each, which fits ~1 ms per call plus ~0.16 ms per token
# (benchmarks/serve_load.md, "With ONNX queries").
CALL_TOKENS = 6.0
MAX_CALL = 64  # texts in one model call, as documents are embedded


def runtime_available() -> bool:
    """onnxruntime and tokenizers import here (the ``onnx`` extra)."""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers"))


def cache_root() -> Path:
    return Path(os.environ.get("RAGKIT_CACHE") or Path.home() / ".cache" / "ragkit") / "onnx"


def export_dir(model_id: str, max_seq_length: int | None, root: Path | None = None) -> Path:
    """Where the export of this model (by its cache identity) at this token limit lives."""
    key = hashlib.sha256(json.dumps([model_id, max_seq_length, EXPORT_VERSION]).encode()).hexdigest()[:16]
    return (root or cache_root()) / key


def is_exported(path: Path) -> bool:
    return all((path / f).is_file() for f in FILES)


def exportable(st_model) -> str | None:
    """None when ``st_model`` (a loaded SentenceTransformer) is transformer + mean pooling (+ normalisation);
    otherwise why it is not."""
    mods = [type(m).__name__ for m in st_model]
    if len(mods) < 2 or mods[0] != "Transformer" or mods[1] != "Pooling" or any(m != "Normalize" for m in mods[2:]):
        return f"pipeline {mods} is not transformer + pooling (+ normalize)"
    pooling = st_model[1]
    mode = getattr(pooling, "pooling_mode", None) or getattr(pooling, "get_pooling_mode_str", lambda: "")()
    if mode != "mean":
        return f"pooling {mode!r} is not mean pooling"
    if not getattr(st_model[0].tokenizer, "is_fast", False):
        return "the tokenizer is not a fast (tokenizers) one"
    return None


def export(st_model, path: Path) -> None:
    """Write model.onnx, tokenizer.json and meta.json for ``st_model`` into ``path`` (atomically: a folder
    renamed into place, so concurrent processes never read half an export)."""
    import torch

    transformer = st_model[0]
    hf = transformer.auto_model
    if next(hf.parameters()).dtype != torch.float32:
        raise ValueError(f"export a float32 model, not {next(hf.parameters()).dtype}")
    max_len = int(st_model.max_seq_length)

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.hf = hf

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.hf(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(out.dtype)
            mean = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=path.parent))
    try:
        sample = transformer.tokenizer(["a question", "another, longer question"], padding=True,
                                       return_tensors="pt", return_token_type_ids=True)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        module = Pooled().eval()
        with torch.no_grad():
            torch.onnx.export(module, tuple(sample[n] for n in names), str(tmp / "model.onnx"), input_names=names,
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={n: {0: "batch", 1: "tokens"} for n in names})
        tok = transformer.tokenizer.backend_tokenizer
        tok.no_padding()
        tok.enable_truncation(max_len)
        (tmp / "tokenizer.json").write_text(tok.to_str())
        dim = int(module(*(sample[n] for n in names)).shape[-1])
        (tmp / "meta.json").write_text(json.dumps({"max_seq_length": max_len, "dim": dim,
                                                   "export_version": EXPORT_VERSION}))
        try:
            tmp.rename(path)
        except OSError:  # another process finished first: keep its export
            if not is_exported(path):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class OnnxQueryEncoder:
    """Normalised float32 vectors for texts, from an export folder. Thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.path = path
        meta = json.loads((path / "meta.json").read_text())
        self.dim = int(meta["dim"])
        self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tok.no_padding()
        self._tok.enable_truncation(int(meta["max_seq_length"]))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path / "model.onnx"), opts, providers=["CPUExecutionProvider"])

    def encode(self, texts: Sequence[str], by_length: bool = True) -> np.ndarray:
        """One vector per text, in order. Texts of different lengths run in separate model calls where padding
        them to one length would cost more than the extra call (see :func:`length_groups`); ``by_length=False``
        runs them all in one call padded to the longest (for comparison)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not len(texts):
            return out
        encs = self._tok.encode_batch(list(texts))
        lengths = [len(e.ids) for e in encs]
        for group in length_groups(lengths) if by_length else [list(range(len(encs)))]:
            out[group] = self._run([encs[i] for i in group])
        return out

    def _run(self, encs: list) -> np.ndarray:
        width = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), width), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, e in enumerate(encs):
            n = len(e.ids)
            ids[i, :n], mask[i, :n], types[i, :n] = e.ids, e.attention_mask, e.type_ids
        return self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})[0]


def length_groups(lengths: Sequence[int], call_tokens: float = CALL_TOKENS, most: int = MAX_CALL) \
        -> list[list[int]]:
    """Split texts of these token lengths into model calls at the least estimated cost, as lists of indexes (at
    most ``most`` texts a call).

    A call pads every text to its longest, and its cost is taken as ``call_tokens`` (the fixed cost of one call,
    in tokens) plus texts x longest length. Texts of one length always share a call; over the distinct lengths in
    order, the cheapest split into runs of neighbours is found exactly (dynamic programming over the cut points).
    A batch of a 10-token and a 60-token question runs as two calls, where one padded call would pay for 120
    tokens."""
    by_length: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        by_length.setdefault(n, []).append(i)
    sizes = sorted(by_length)
    texts = np.cumsum([0] + [len(by_length[n]) for n in sizes])  # texts[j]: how many are shorter than sizes[j]
    best = [0.0] + [float("inf")] * len(sizes)  # best[j]: cheapest cost of the texts of the j shortest lengths
    cut = [0] * (len(sizes) + 1)
    for j in range(1, len(sizes) + 1):
        for i in range(j):
            cost = best[i] + call_tokens + (texts[j] - texts[i]) * sizes[j - 1]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(sizes)
    while j > 0:
        group = [i for n in sizes[cut[j]:j] for i in by_length[n]]
        groups.extend(group[at:at + most] for at in range(0, len(group), most))
        j = cut[j]
    return groups
