"""Schemathesis against the running local gateway, authenticated with the demo API key: every operation of the
OpenAPI document, with generated valid inputs and invalid ones. No answer may be a server error, every answer's
status, content type, headers and body must be what the document says, and invalid input must be refused (4xx).
Valid input may still be refused (so schemathesis' positive_data_acceptance check is left out): the document
describes each option, not every rule between them (proxy=true takes no process, a validity under URL_MIN_EXPIRES,
process operations outside URL_PROCESS_OPERATIONS, a key outside the caller's scope), and those answer 400/403.

Bounded so `make test` stays quick on two cores: SCHEMATHESIS_MAX_EXAMPLES per operation and mode (default 25).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from local.up import Stack, caller_headers, start_stack
from shared import openapi

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def contract_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Its own deployment: generated input must not disturb the shared one (one instance per function is enough).
    stack = start_stack(data_dir=tmp_path_factory.mktemp("contract"), auth="apikey", port=0, oss_port=0, sts_port=0,
                        timers=False, echo_logs=False, instances=1)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def api_schema(contract_stack: Stack) -> schemathesis.schemas.BaseSchema:  # type: ignore[name-defined]
    schema = schemathesis.openapi.from_dict(openapi.document(auth_mode="apikey"))
    schema.config.update(base_url=contract_stack.gateway.url, headers=caller_headers(contract_stack),
                         request_timeout=30)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
                                    max_examples=MAX_EXAMPLES)
    return schema


OPERATIONS = [(method.upper(), path) for path, methods in openapi.document()["paths"].items() for method in methods]


# Hypothesis driven directly (schemathesis' pytest plugin does not run under pytest 9): one test per operation
# and generation mode, each case sent to the gateway and checked with every default check.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_keeps_the_contract(api_schema, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                         suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate])
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def keeps_the_contract(case: schemathesis.Case) -> None:
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    keeps_the_contract()
