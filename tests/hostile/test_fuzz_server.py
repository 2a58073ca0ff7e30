"""``ragkit serve`` fuzzed from its own OpenAPI schema with Schemathesis: every endpoint, with and without an API
key, answers generated requests (valid and invalid bodies, query strings and headers) with no 5xx and with
responses that match the schema. A real uvicorn server on 127.0.0.1 over the tenant index."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.hostile.fuzzing import FUZZ, record
from tests.serve.conftest import KEYS

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def fuzz_operation(operation, server: str, model: str) -> None:
    @given(case=operation.as_strategy())
    @settings(max_examples=FUZZ.server_examples, deadline=None, derandomize=FUZZ.derandomize, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    def run(case):
        if isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
            case.body["model"] = model  # a served model, so the request reaches past the model check
        for key in ("acme", None):  # each generated request is sent with a tenant's key and without one
            headers = {"Authorization": f"Bearer {KEYS[key]}"} if key else {}
            response = case.call(base_url=server, headers=headers, timeout=60)
            record("server", f"{operation.label} ({'key' if key else 'no key'})", response.status_code)
            case.validate_response(response, checks=CHECKS, headers=headers)

    run()


@pytest.mark.slow
def test_no_server_errors_and_schema_conformant_responses(server):
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    models = httpx.get(f"{server}/v1/models", headers={"Authorization": f"Bearer {KEYS['acme']}"}).json()
    model = models["data"][0]["id"]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 5, [op.label for op in operations]
    for operation in operations:
        fuzz_operation(operation, server, model)
