"""Where local GGUF models come from.

A model is a path to a ``.gguf`` file, a short name of the offline set that ``../shared/models/fetch.sh`` assembles
(cached in ``$RAGKIT_OFFLINE_MODELS`` or ``~/.cache/ragkit-offline``), or — for online users — a Hugging Face
``repo_id`` plus ``filename`` that llama-cpp-python downloads itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from ragkit.errors import ConfigError

OFFLINE_MODELS = {
    "smollm2": "smollm2-135m-instruct-q4_1.gguf",
    "qwen0.5b": "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    "qwen1.5b": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
}


def offline_dir() -> Path:
    return Path(os.environ.get("RAGKIT_OFFLINE_MODELS") or Path.home() / ".cache" / "ragkit-offline")


def offline_model_path(name: str) -> Path | None:
    """The cached file of an offline model name, or None when it has not been fetched."""
    fname = OFFLINE_MODELS.get(name)
    if fname is None:
        return None
    path = offline_dir() / fname
    return path if path.is_file() else None


def resolve_gguf(model: str) -> Path:
    """A local GGUF file for ``model`` (a path or an offline short name), or a ConfigError saying how to get it."""
    if model in OFFLINE_MODELS:
        path = offline_model_path(model)
        if path is None:
            raise ConfigError(f"model {model!r}: not fetched; run ../shared/models/fetch.sh {model} "
                              f"(looked in {offline_dir()})")
        return path
    path = Path(model).expanduser()
    if not path.exists():
        known = ", ".join(OFFLINE_MODELS)
        raise ConfigError(f"model {model!r}: no such file (give a .gguf path or one of: {known})")
    if path.is_dir() or path.suffix.lower() != ".gguf":
        raise ConfigError(f"model {model!r}: not a .gguf file")
    return path.resolve()
