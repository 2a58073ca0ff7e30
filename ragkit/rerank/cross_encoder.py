"""Cross-encoder reranking with a sentence-transformers ``CrossEncoder`` (a hub name, online, or a local path).

    [[rerankers]]
    name = "cross-encoder"
    model = "cross-encoder/ms-marco-MiniLM-L6-v2"   # or a local directory saved by CrossEncoder.save()
    depth = 10          # rerank the 10 best fused candidates (the default; measured curve in benchmarks/RESULTS.md)
    top_n = 10          # optional: keep only the 10 best after reranking
    blend = 0.3         # optional: 0.3 * cross-encoder + 0.7 * fused score (min-max scaled); raw model score
                        # kept as scores["cross-encoder:model"]

The model's forward pass is the cost, so nothing else is allowed to waste it: each passage is cut to what the
model can read before tokenising (``max_length`` tokens for question + passage; the tokenizer then truncates
the longer side of each pair, the passage in practice), and pairs are batched in order of length (``CrossEncoder.predict`` sorts them) so
a batch is not padded to one long outlier. Scores (the model's activation, a sigmoid for one-label models) become
``scores["cross-encoder"]`` and ``ranks["cross-encoder"]``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ragkit.errors import ConfigError, PluginError, first_line
from ragkit.plugins import Plugin
from ragkit.rerank._common import apply_scores, blend_head
from ragkit.types import Hit

CHARS_PER_TOKEN = 6  # generous: a passage cut at max_length * 6 characters still fills the model's window


class CrossEncoderReranker(Plugin):
    stage, name = "reranker", "cross-encoder"

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field("cross-encoder/ms-marco-MiniLM-L6-v2",
                           description="hub name (online) or local directory of a sentence-transformers CrossEncoder")
        depth: int = Field(10, ge=1, le=1000, description="fused candidates that are rescored (10: the best quality and "
                                                               "the lowest latency of 10/20/50 measured on SciFact)")
        top_n: int | None = Field(None, ge=1, description="keep only this many after reranking (default: all)")
        batch_size: int = Field(16, ge=1, le=512)
        max_length: int | None = Field(None, ge=16, le=8192,
                                       description="tokens per pair (default: the model's own maximum)")
        device: str = Field("cpu")
        blend: float | None = Field(None, ge=0.0, le=1.0,
                                    description="final = blend * cross-encoder + (1 - blend) * previous score, both "
                                                "min-max scaled over the rescored head (None: the cross-encoder alone)")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._model: Any = None
        self._lock = threading.Lock()
        # replaces ``score`` in ``process`` when set (the server's micro-batcher: several requests, one model call)
        self.scorer: Callable[[list[tuple[str, str]]], Sequence[float]] | None = None

    def warm_up(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            from sentence_transformers import CrossEncoder

            name = self.params.model
            local = os.path.isdir(os.path.expanduser(name))
            if not local and os.path.sep in name and name.startswith((".", "/", "~")):
                raise ConfigError(f"reranker 'cross-encoder': model directory {name!r} does not exist")
            try:
                model = CrossEncoder(os.path.expanduser(name) if local else name, device=self.params.device,
                                     max_length=self.params.max_length,
                                     local_files_only=bool(os.environ.get("HF_HUB_OFFLINE")) and not local)
            except Exception as exc:  # the hub unreachable, a folder without weights, a non-cross-encoder model
                raise PluginError(f"reranker 'cross-encoder': cannot load model {name!r}: {first_line(exc)}") from None
            model.eval()
            self._model = model

    @property
    def model(self) -> Any:
        self.warm_up()
        return self._model

    @property
    def max_length(self) -> int:
        return int(self.params.max_length or getattr(self.model, "max_seq_length", None) or 512)

    def pairs(self, query: str, hits: list[Hit]) -> list[tuple[str, str]]:
        cut = self.max_length * CHARS_PER_TOKEN
        return [(query, h.chunk.text[:cut]) for h in hits]

    def score_identity(self) -> str:
        """What the model's raw score of a (question, passage) pair depends on: the model (a local directory by its
        absolute path), the token limit and the device; not depth, blend or top_n, which act on the scores. An
        evaluation memoises ``score`` under this key across pipelines (``ragkit.rerank.score_cache``)."""
        name = os.path.expanduser(self.params.model)
        model = os.path.abspath(name) if os.path.isdir(name) else self.params.model
        return json.dumps({"reranker": self.name, "model": model, "max_length": self.params.max_length,
                           "device": self.params.device}, sort_keys=True)

    def score(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        out = self.model.predict(pairs, batch_size=self.params.batch_size, show_progress_bar=False,
                                 convert_to_numpy=True)
        return [float(x) for x in out.reshape(len(pairs), -1)[:, -1]]

    def process(self, query: str, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return hits
        head = hits[:self.params.depth]
        scores = list((self.scorer or self.score)(self.pairs(query, head)))
        return apply_scores(self.name, hits, blend_head(self.name, head, scores, self.params.blend), self.params.top_n)
