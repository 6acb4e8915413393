"""Adversarial review: arbitrary FC events never make the sign or download handler answer 500 or leak a trace.

The context carries valid credentials, so every path up to signing is reachable; no upstream is needed
(SIGN_CHECK_EXISTS off, DOWNLOAD_MODE=redirect), hence no 502/503 either.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.download.handler import handler as download_handler
from functions.sign.handler import handler as sign_handler
from shared.keys import is_unicode_text
from tests.sign.helpers import API_KEY, context, event, install_env

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)
SIGN_NAMES = ["key", "keys", "method", "expires", "disposition", "filename", "content_type", "cache_control",
              "version_id", "process", "traffic_limit", "bind_ip", "source_ip", "subnet_mask", "domain", "scheme",
              "version", "proxy", "other"]
NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["exampledir/a", "exampledir/../x", "exampledir/./a", "exampledir/", "/exampledir/a", "?acl",
                     "exampledir/a?acl", "exampledir/\u0000", "exampledir/a\r\nX: y", "1e3", "-1", "0", "99999999999",
                     "PUT", "put", "true", "v1", "custom", "accelerate", "http", "attachment", "a,b", "\ud800",
                     "exampledir/" + "x" * 1100, "\u202e", "exampledir/a&x-oss-process=1"]),
)


def _sign_event(draw_values: dict[str, Any], as_query: bool, method: str) -> dict[str, Any]:
    if as_query:
        query = {name: value if isinstance(value, str) else json.dumps(value) for name, value in draw_values.items()}
        return event(method, "/sign", query=query)
    return event(method, "/sign", body=draw_values)


sign_values = st.dictionaries(st.sampled_from(SIGN_NAMES), st.one_of(NASTY_TEXT, json_values), max_size=5)
valid_sign = event("GET", "/sign", query={"key": "exampledir/a"})
field_names = st.sampled_from(["version", "rawPath", "body", "isBase64Encoded", "headers", "queryParameters",
                               "requestContext"])


def _field_mutation(valid: dict[str, Any]) -> st.SearchStrategy:
    replace_field = st.tuples(field_names, json_values).map(lambda fv: {**valid, fv[0]: fv[1]})
    replace_http = st.tuples(st.sampled_from(["method", "path", "sourceIp"]), st.one_of(NASTY_TEXT, json_values)).map(
        lambda fv: {**valid, "requestContext": {**valid["requestContext"],
                                                "http": {**valid["requestContext"]["http"], fv[0]: fv[1]}}})
    headers = st.dictionaries(st.sampled_from(["x-api-key", "authorization", "origin", "content-type", "range"]),
                              st.one_of(NASTY_TEXT, st.lists(st.text(max_size=5), max_size=3)), max_size=3).map(
        lambda h: {**valid, "headers": {**valid["headers"], **h}})
    base64_body = st.text(max_size=60).map(lambda b: {**valid, "body": b, "isBase64Encoded": True})
    raw = st.one_of(st.binary(max_size=200), st.text(max_size=200), json_values)
    return st.one_of(replace_field, replace_http, headers, base64_body, raw)


def _check(response: dict[str, Any]) -> None:
    status = response["statusCode"]
    assert status < 500, response
    response["body"].encode("utf-8")  # the runtime must be able to send it
    if status >= 400 and response["body"] != "":  # HEAD answers carry headers only
        body = json.loads(response["body"])
        assert set(body) == {"code", "message", "requestId"}, body
        assert "Traceback" not in body["message"]
    for name, value in response["headers"].items():
        assert isinstance(value, str) and "\r" not in value and "\n" not in value, (name, value)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class TestSign:
    @pytest.fixture(autouse=True)
    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install_env(monkeypatch, SIGN_ALLOW_PUT="true", OSS_CUSTOM_DOMAIN="files.example.test")

    @FUZZ
    @given(values=sign_values, as_query=st.booleans(), method=st.sampled_from(["GET", "POST", "HEAD", "OPTIONS"]))
    def test_parameters_never_500(self, values: dict[str, Any], as_query: bool, method: str) -> None:
        if "keys" in values and not isinstance(values["keys"], list):
            overrides = {name: value for name, value in values.items() if name != "keys"}
            values["keys"] = [values["keys"], {"key": "exampledir/b", **overrides}]
        _check(sign_handler(_sign_event(values, as_query, method), context()))

    @FUZZ
    @given(mutated=_field_mutation(valid_sign))
    def test_events_never_500(self, mutated: Any) -> None:
        raw = mutated if isinstance(mutated, (bytes, str)) else json.dumps(mutated)
        _check(sign_handler(raw, context()))


valid_download = event("GET", "/download/exampledir/a")


class TestDownload:
    @pytest.fixture(autouse=True)
    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install_env(monkeypatch)

    @FUZZ
    @given(path=NASTY_TEXT, query=st.dictionaries(st.sampled_from(["exp", "sig", "disposition", "filename", "x"]),
                                                  NASTY_TEXT, max_size=4),
           method=st.sampled_from(["GET", "HEAD", "POST"]), api_key=st.sampled_from([API_KEY, None, "wrong"]))
    def test_paths_and_queries_never_500(self, path: str, query: dict[str, str], method: str,
                                         api_key: str | None) -> None:
        raw_path = "/download/" + path
        _check(download_handler(event(method, raw_path, query=query, api_key=api_key), context()))

    @FUZZ
    @given(mutated=_field_mutation(valid_download))
    def test_events_never_500(self, mutated: Any) -> None:
        raw = mutated if isinstance(mutated, (bytes, str)) else json.dumps(mutated)
        _check(download_handler(raw, context()))


def _b64_segments(parts: list[bytes]) -> str:
    return ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in parts)


class TestTokenJwtMode:
    """Garbage bearer tokens (no valid one, so no STS call is ever made): always a 4xx."""

    @pytest.fixture(autouse=True)
    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        install_env(monkeypatch, AUTH_MODE="jwt", JWT_ISSUER="https://idp.example.test/", JWT_AUDIENCE="api",
                    JWT_ALGORITHMS="RS256,HS256", JWT_HS256_SECRET="review-hs256-secret-0123456789",
                    JWT_JWKS='{"keys": []}', STS_ROLE_ARN="acs:ram::1234567890123456:role/vended")

    @FUZZ
    @given(token=st.one_of(NASTY_TEXT, st.lists(st.text(max_size=30), min_size=1, max_size=4).map(".".join),
                           st.lists(st.binary(max_size=40), min_size=3, max_size=3).map(_b64_segments)),
           scheme=st.sampled_from(["Bearer", "bearer", "ApiKey", "Basic", ""]))
    def test_tokens_never_500(self, token: str, scheme: str) -> None:
        from functions.token.handler import handler as token_handler

        headers = {"authorization": f"{scheme} {token}"}
        response = token_handler(json.dumps(event("POST", "/sts", headers=headers, api_key=None)), context())
        _check(response)
        # No guessed token verifies (the HS256 secret and the RS256 keys are not the fuzz's): 401, unless the
        # header cannot even be read as text (a lone surrogate), which is the event's fault: 400.
        assert response["statusCode"] == (401 if is_unicode_text(headers) else 400), headers
