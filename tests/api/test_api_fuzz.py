"""A schemathesis run of the API's OpenAPI schema against the real app (chDB, MLflow and Dagster
stores of `api_test_store`): generated requests, valid and not, with an admin key, never get a
server error. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_test_store import api_config, build
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from quant_assets.api.app import create_app  # noqa: E402

EXAMPLES = 25


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory):
    built = build(Path(tmp_path_factory.mktemp("api_fuzz")))
    app = create_app(api_config(built, rate_limit_per_minute=100_000))
    _, key = app.state.services.keys.create("fuzz", "admin", 1)
    return app, key


def test_no_generated_request_gets_a_server_error(app_and_key):
    app, key = app_and_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = []

    def fuzz(operation) -> None:
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case):
            case.headers = {**(case.headers or {}), "X-API-Key": key}
            response = case.call()
            if response.status_code >= 500:
                failures.append((operation.label, case.path, case.query, response.text[:200]))

        run()

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() != "DELETE":  # keep the key alive; revocation is tested
            fuzz(operation)
    assert not failures, failures
