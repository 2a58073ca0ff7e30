import pytest

from tests.hostile.fuzzing import write_stats
from tests.serve.conftest import http, keyring, server, tenant_engine, tenant_index  # noqa: F401 (fixtures)


@pytest.fixture(scope="session", autouse=True)
def _fuzz_stats():
    yield
    write_stats()
