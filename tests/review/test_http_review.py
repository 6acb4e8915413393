"""Adversarial review of the HTTP adapter (shared/http.py): every answer is valid UTF-8 JSON."""

from __future__ import annotations

import json

import pytest

from functions.sign.handler import handler as sign_handler
from tests.sign.helpers import context, event, install_env


def test_an_echoed_lone_surrogate_still_gives_a_utf8_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON event can carry "\\ud800"; a batch echoes each refused key, and a body with a lone surrogate
    cannot be encoded to UTF-8 by the runtime (an error outside the handler instead of the 200 we built)."""
    install_env(monkeypatch)
    keys = ["\ud800x", "exampledir/\udc80", "exampledir/ok \u62a5.txt"]
    response = sign_handler(json.dumps(event("POST", "/sign", body={"keys": keys})), context())
    assert response["statusCode"] == 200
    encoded = response["body"].encode("utf-8")  # what every runtime does with a text body
    data = json.loads(encoded)
    assert [result["key"] for result in data["results"]] == keys
    assert [("error" in result) for result in data["results"]] == [True, True, False]


def test_ordinary_non_ascii_stays_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    install_env(monkeypatch)
    response = sign_handler(json.dumps(event("POST", "/sign", body={"keys": ["exampledir/\u62a5.txt"]})), context())
    assert "exampledir/\u62a5.txt" in response["body"]  # not \\u-escaped when it need not be


def test_a_configuration_error_tells_the_operator_not_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone can trigger the error answer of a misconfigured function: its details (variable names, the
    rejected value of a non-secret variable such as an internal JWKS host) belong in the log only."""
    import io

    from shared import logging as log

    install_env(monkeypatch, AUTH_MODE="jwt", JWT_ISSUER="https://idp.example.test/", JWT_AUDIENCE="api",
                JWT_JWKS_URL="ftp://idp.internal.corp:8443/keys")
    stream = io.StringIO()
    log.configure("info", stream=stream)
    try:
        response = sign_handler(json.dumps(event("GET", "/sign", query={"key": "exampledir/a"})), context())
    finally:
        log.configure("warning")
    body = json.loads(response["body"])
    assert (response["statusCode"], body["code"]) == (500, "MisconfiguredFunction")
    assert "idp.internal.corp" not in response["body"] and "JWT_JWKS_URL" not in response["body"]
    assert body["requestId"] and "request id" in body["message"]
    assert "JWT_JWKS_URL" in stream.getvalue()  # the operator still learns what is wrong
