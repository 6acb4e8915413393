"""Adversarial review of the HTTP adapter (shared/http.py): every answer is valid UTF-8 JSON."""

from __future__ import annotations

import json

import pytest

from functions.sign.handler import handler as sign_handler
from tests.sign.helpers import context, event, install_env


def test_a_lone_surrogate_in_a_json_body_is_a_400_with_a_utf8_body(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON event can carry "\\ud800" (RFC 8259 section 8.2: such a string is not Unicode text). The whole
    body is refused, once, in the adapter (issue 10): before, each route had to remember it, and a batch echoed
    the key into a body the runtime could not encode."""
    install_env(monkeypatch)
    keys = ["\ud800x", "exampledir/\udc80", "exampledir/ok \u62a5.txt"]
    response = sign_handler(json.dumps(event("POST", "/sign", body={"keys": keys})), context())
    assert response["statusCode"] == 400
    data = json.loads(response["body"].encode("utf-8"))  # what every runtime does with a text body
    assert data["code"] == "BadRequest" and "surrogate" in data["message"]


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


# --- the error-answer registry (issue 10): only registered exception types speak to the caller -------------

ARN_MESSAGE = ("You are forbidden to oss:GetObject: the session acs:ram::1234567890123456:role/signer/fc-session "
               "has no permission (RAM policy acs:ram::1234567890123456:policy/internal-only)")


def _routed(raise_it: Exception, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str]:
    import io

    from shared import http
    from shared import logging as log

    install_env(monkeypatch)
    stream = io.StringIO()
    log.configure("info", stream=stream)

    @http.http_handler("sign", methods=("GET",), path="/sign")
    def route(request: http.Request, settings: object, context: object) -> http.Response:
        raise raise_it

    try:
        response = route(json.dumps(event("GET", "/sign", query={"key": "exampledir/a"})), context())
    finally:
        log.configure("warning")
    return response, stream.getvalue()


@pytest.mark.parametrize(("status", "code", "expected"), [
    (403, "AccessDenied", (403, "Forbidden")), (404, "NoSuchKey", (404, "NotFound")),
    (400, "InvalidArgument", (502, "UpstreamError")), (500, "InternalError", (502, "UpstreamError")),
])
def test_an_uncaught_storage_error_never_echoes_the_oss_message(monkeypatch: pytest.MonkeyPatch, status: int,
                                                                 code: str, expected: tuple[int, str]) -> None:
    from shared.storage import OssError

    response, _ = _routed(OssError(status, code, ARN_MESSAGE, request_id="65F0A1B2C3D4E5F6"), monkeypatch)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["code"]) == expected
    assert "acs:ram" not in response["body"] and "forbidden to" not in response["body"]
    assert set(body) == {"code", "message", "requestId"}


def test_an_unregistered_exception_with_status_code_and_message_is_a_generic_500(
        monkeypatch: pytest.MonkeyPatch) -> None:
    class LooksLikeAnAnswer(Exception):  # duck-typed: status, code, message (an SDK's error, say)
        status, code, message = 403, "AccessDenied", ARN_MESSAGE

    response, logged = _routed(LooksLikeAnAnswer(ARN_MESSAGE), monkeypatch)
    body = json.loads(response["body"])
    assert (response["statusCode"], body["code"]) == (500, "InternalError")
    assert "acs:ram" not in response["body"] and body["requestId"]
    assert "LooksLikeAnAnswer" in logged and "acs:ram::1234567890123456:role/signer" in logged  # for the operator


def test_registered_types_are_answered_by_their_most_specific_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared import http
    from shared.errors import Forbidden

    class Refused(Exception):
        pass

    class RefusedHard(Refused):
        pass

    monkeypatch.setattr(http, "_error_answers", dict(http._error_answers))
    http.register_error_answer(Refused, lambda exc: Forbidden("refused"))
    response, _ = _routed(RefusedHard("internal detail"), monkeypatch)
    assert (response["statusCode"], json.loads(response["body"])["message"]) == (403, "refused")
