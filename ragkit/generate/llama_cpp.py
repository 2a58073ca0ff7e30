"""``generator.llama-cpp``: grounded answers from a local GGUF model through llama-cpp-python
(extra ``ragkit[local-llm]``). ``model`` is a .gguf path or an offline name (smollm2, qwen0.5b, qwen1.5b);
online users may give a Hugging Face ``repo_id`` + ``filename`` instead, which llama-cpp-python downloads."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ragkit.generate.grounded import GroundedGenerator, GroundedParams


class LlamaCppGenerator(GroundedGenerator):
    stage, name = "generator", "llama-cpp"

    class Params(GroundedParams):
        model: str = Field("qwen0.5b", description="a .gguf path or an offline model name (smollm2, qwen0.5b, "
                                                   "qwen1.5b)")
        repo_id: str = Field("", description="Hugging Face repo to download from (online only; overrides model)")
        filename: str = Field("", description="GGUF file name (or glob) inside repo_id")
        n_ctx: int = Field(4096, ge=256, le=131072, description="context window in tokens")
        n_threads: int = Field(2, ge=1, le=256)

    def _build_llm(self) -> Any:
        from ragkit.llm.llama_cpp import LlamaCppLLM

        p = self.params
        return LlamaCppLLM(p.model, repo_id=p.repo_id, filename=p.filename, n_ctx=p.n_ctx, n_threads=p.n_threads)
