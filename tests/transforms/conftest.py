from __future__ import annotations

import pytest

from ragkit.plugins import Plugin, registry
from ragkit.types import Answer


class LLMGenerator(Plugin):
    """A generator exposing an LLM object (what an LLM-backed generator offers the other stages)."""

    stage, name = "generator", "test-llm-holder"
    the_llm = None

    @property
    def llm(self):
        return type(self).the_llm

    def answer(self, query, hits):
        return Answer(query, "", [], hits)


class FailingLLM:
    """Fails the test on any use: proves a stage did not call the model."""

    model_id = "must-not-be-called"
    context_window = 1000

    def __getattr__(self, name):
        pytest.fail(f"the LLM was used ({name}) although no stage that needs it is configured")


@pytest.fixture
def llm_generator():
    registry.register(LLMGenerator)
    yield LLMGenerator
    LLMGenerator.the_llm = None
    registry._classes.pop(("generator", LLMGenerator.name), None)
