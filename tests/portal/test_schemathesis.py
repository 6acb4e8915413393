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

from local.up import API_KEY_SCOPE, DEMO_OBJECTS, Stack, caller_headers, start_stack
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


IN_SCOPE = sorted(key for key in DEMO_OBJECTS if key.startswith(API_KEY_SCOPE))


@pytest.fixture(scope="module")
def linked_schema(contract_stack: Stack) -> schemathesis.schemas.BaseSchema:  # type: ignore[name-defined]
    """The same document, its /sign keys drawn from the demo caller's own files, so links have answers to follow."""
    schema = schemathesis.openapi.from_dict(openapi.document(auth_mode="apikey"))
    schema.config.update(base_url=contract_stack.gateway.url, headers=caller_headers(contract_stack),
                         request_timeout=30)
    schema.config.generation.update(modes=[GenerationMode.POSITIVE], max_examples=MAX_EXAMPLES)

    @schema.hook
    def map_query(context, query):
        if context.operation is not None and context.operation.path == "/sign" and query and "key" in query:
            query["key"] = IN_SCOPE[len(str(query["key"])) % len(IN_SCOPE)]
        return query

    return schema


def test_stateful_links_from_a_signed_key_to_its_download(linked_schema) -> None:
    """The document's links (GET /sign -> GET/HEAD /download/{key}) followed with generated data."""
    steps: list[str] = []

    class Links(linked_schema.as_state_machine()):  # type: ignore[misc]
        def after_call(self, response, case):
            steps.append(f"{case.operation.method.upper()} {case.operation.path} {response.status_code}")

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, additional_checks=additional_checks, transport_kwargs=kwargs,
                                   excluded_checks=[positive_data_acceptance])

    Links.run(settings=hypothesis.settings(max_examples=MAX_EXAMPLES, stateful_step_count=4, deadline=None,
                                           database=None, derandomize=True,
                                           suppress_health_check=list(hypothesis.HealthCheck)))
    followed = [step for step in steps if "/download/" in step]
    assert any(step.startswith("GET /sign") for step in steps), steps
    assert any(step.endswith(" 302") for step in followed), steps  # a signed key, downloaded through its link
