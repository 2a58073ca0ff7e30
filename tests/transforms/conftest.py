from __future__ import annotations

import pytest


class FailingLLM:
    """Fails the test on any use: proves a stage did not call the model."""

    model_id = "must-not-be-called"
    context_window = 1000

    def __getattr__(self, name):
        pytest.fail(f"the LLM was used ({name}) although no stage that needs it is configured")
