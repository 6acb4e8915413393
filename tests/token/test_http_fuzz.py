"""Property: whatever event arrives, the token handler answers 2xx/4xx JSON (or 5xx only from STS), never 500."""

from __future__ import annotations

import json

import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.token.handler import handler
from tests.token.conftest import API_KEY, STS_URL, context, make_event, sts_success_body

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
valid = json.loads(make_event(headers={"X-Api-Key": API_KEY}, body={}))
field_names = st.sampled_from(["version", "rawPath", "body", "isBase64Encoded", "headers", "queryParameters",
                               "requestContext"])
parameters = st.dictionaries(st.sampled_from(["prefix", "actions", "duration", "other"]), json_values, max_size=3)


def _mutations() -> st.SearchStrategy:
    replace_field = st.tuples(field_names, json_values).map(lambda fv: {**valid, fv[0]: fv[1]})
    replace_http = st.tuples(st.sampled_from(["method", "path", "sourceIp"]), json_values).map(
        lambda fv: {**valid, "requestContext": {**valid["requestContext"],
                                                "http": {**valid["requestContext"]["http"], fv[0]: fv[1]}}})
    body = parameters.map(lambda p: {**valid, "body": json.dumps(p)})
    query = st.dictionaries(st.sampled_from(["prefix", "actions", "duration", "x"]), st.text(max_size=30),
                            max_size=3).map(lambda q: {**valid, "queryParameters": q})
    raw = st.one_of(st.binary(max_size=200), st.text(max_size=200), json_values)
    return st.one_of(replace_field, replace_http, body, query, raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=_mutations())
def test_token_handler_never_answers_500(env, sts_mock, event):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    raw = event if isinstance(event, (bytes, str)) else json.dumps(event)
    response = handler(raw, context())
    assert response["statusCode"] in (200, 204, 400, 401, 403, 404, 405, 413), response
    body = json.loads(response["body"]) if response["body"] else {}
    if response["statusCode"] >= 400:
        assert set(body) == {"code", "message", "requestId"}
