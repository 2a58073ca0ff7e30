"""How a plugin that needs a language model gets one: its own ``llm`` parameter (a :func:`make_llm` spec), or
else the configured generator's model through ``Resources.llm``. Nothing is resolved, loaded or called until
the plugin first needs the model, so listing such a plugin costs nothing until a query uses it."""

from __future__ import annotations

from typing import Any

from ragkit.errors import ConfigError


class LazyLLM:
    def __init__(self, owner: str, spec: str | dict[str, Any] | None) -> None:
        self.owner, self.spec = owner, spec
        self._from_resources: Any = None
        self._llm: Any = None

    def bind(self, resources: Any) -> None:
        self._from_resources = getattr(resources, "llm", None)

    def get(self) -> Any:
        if self._llm is None:
            if self.spec:
                from ragkit.llm import make_llm

                self._llm = make_llm(self.spec)
            elif self._from_resources is not None:
                self._llm = self._from_resources()
            else:
                raise ConfigError(f"{self.owner}: needs an LLM: set its 'llm' parameter (e.g. \"local:qwen0.5b\") "
                                  "or configure an LLM generator")
        return self._llm
