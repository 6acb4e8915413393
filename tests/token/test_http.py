"""shared/http: malformed events are 4xx JSON errors, never 500; CORS; headers; access line."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from shared import http
from shared.errors import Forbidden, ServiceUnavailable
from tests.token.conftest import body_of, context, make_event


def _echo(request: http.Request, settings: Any, ctx: Any) -> http.Response:
    return http.json_response(200, {"method": request.method, "path": request.path, "query": dict(request.query),
                                    "json": request.json(), "ip": request.source_ip,
                                    "auth": request.header("AUTHORIZATION"), "bearer": request.bearer_token()})


echo = http.http_handler("token", methods=("GET", "POST"))(_echo)


def _valid_event() -> dict[str, Any]:
    return json.loads(make_event(body={"a": 1}))


def _assert_error(response: dict[str, Any], status: int, code: str | None = None) -> dict[str, Any]:
    assert response["statusCode"] == status, response
    body = body_of(response)
    assert set(body) == {"code", "message", "requestId"}
    assert body["message"]
    if code:
        assert body["code"] == code
    assert response["headers"]["Content-Type"].startswith("application/json")
    return body


def test_parses_a_valid_event(env):
    event = make_event(body={"a": 1}, query={"x": "1,2"},
                       headers={"Authorization": "Bearer abc.def.ghi"})
    response = echo(event, context())
    assert response["statusCode"] == 200
    data = body_of(response)
    assert data == {"method": "POST", "path": "/sts", "query": {"x": "1,2"}, "json": {"a": 1},
                    "ip": "203.0.113.7", "auth": "Bearer abc.def.ghi", "bearer": "abc.def.ghi"}


def test_accepts_str_dict_and_base64_bodies(env):
    as_dict = _valid_event()
    assert echo(as_dict, context())["statusCode"] == 200
    assert echo(json.dumps(as_dict), context())["statusCode"] == 200
    response = echo(make_event(body='{"b": 2}', headers={"Content-Type": "application/json"}, base64_body=True),
                    context())
    assert body_of(response)["json"] == {"b": 2}


def test_decoded_path_comes_from_request_context(env):
    event = _valid_event()
    event["rawPath"] = "/a%20b"
    event["requestContext"]["http"]["path"] = "/a b"
    request = http.parse_event(event)
    assert request.raw_path == "/a%20b" and request.path == "/a b"
    del event["requestContext"]["http"]["path"]
    assert http.parse_event(event).path == "/a b"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda e: b"not json at all",
        lambda e: b"\xff\xfe\x00garbage",
        lambda e: b"[1, 2, 3]",
        lambda e: b"42",
        lambda e: {**e, "requestContext": "nope"},
        lambda e: {**e, "requestContext": {**e["requestContext"], "http": []}},
        lambda e: {**e, "requestContext": {**e["requestContext"], "http": {"method": 5}}},
        lambda e: {**e, "requestContext": {**e["requestContext"], "http": {}}},
        lambda e: {**e, "requestContext": {**e["requestContext"], "http": {"method": "G E T"}}},
        lambda e: {**e, "headers": ["a", "b"]},
        lambda e: {**e, "headers": {"X-A": 1}},
        lambda e: {**e, "queryParameters": {"a": {"b": 1}}},
        lambda e: {**e, "body": 12},
        lambda e: {**e, "body": {"a": 1}},
        lambda e: {**e, "isBase64Encoded": "yes"},
        lambda e: {**e, "isBase64Encoded": True, "body": "***not base64***"},
        lambda e: {**e, "rawPath": 17},
        lambda e: {**e, "body": "{not json", "headers": {"Content-Type": "application/json"}},
        lambda e: {**e, "body": "[1,2]", "headers": {}},
        lambda e: {**e, "body": "a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        lambda e: {**e, "isBase64Encoded": True, "body": base64.b64encode(b"\xff\xfe{").decode()},
        lambda e: {**e, "body": "[" * 100000 + "]" * 100000},
        lambda e: None,
        lambda e: 3.5,
    ],
)
def test_malformed_events_are_400_json_never_500(env, mutate):
    response = echo(mutate(_valid_event()), context(request_id="req-bad"))
    body = _assert_error(response, 400)
    assert body["requestId"] == "req-bad"


def test_huge_body_is_413(env):
    event = _valid_event()
    event["body"] = json.dumps({"a": "x" * (http.DEFAULT_MAX_BODY_BYTES + 10)})
    _assert_error(echo(event, context()), 413, "PayloadTooLarge")
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(b"x" * (http.DEFAULT_MAX_BODY_BYTES + 10)).decode()
    _assert_error(echo(event, context()), 413, "PayloadTooLarge")


def test_request_id_falls_back_to_the_event(env):
    response = echo({**_valid_event(), "body": "{bad", "headers": {}}, None)
    assert _assert_error(response, 400)["requestId"] == "req-test-1"


def test_method_not_allowed_is_405_with_allow(env):
    response = echo(make_event(method="DELETE"), context())
    _assert_error(response, 405, "MethodNotAllowed")
    assert response["headers"]["Allow"] == "GET, POST, OPTIONS"


def test_unexpected_exception_is_500_with_only_the_request_id(env, logs):
    def boom(request, settings, ctx):
        raise RuntimeError("secret detail AccessKeySecret=abcdefgh12345678")

    handler = http.http_handler("token")(boom)
    response = handler(make_event(), context(request_id="req-500"))
    body = _assert_error(response, 500, "InternalError")
    assert body["requestId"] == "req-500"
    assert "secret" not in response["body"] and "RuntimeError" not in response["body"]
    output = logs.getvalue()
    assert "RuntimeError" in output and "abcdefgh12345678" not in output


def test_app_error_status_and_headers_are_kept(env):
    def busy(request, settings, ctx):
        raise ServiceUnavailable("busy", headers={"Retry-After": "7"})

    response = http.http_handler("token")(busy)(make_event(), context())
    _assert_error(response, 503, "ServiceUnavailable")
    assert response["headers"]["Retry-After"] == "7"


def test_signing_layer_errors_keep_their_status_and_code(env):
    from shared.keys import KeyOutsideScope

    def outside(request, settings, ctx):
        raise KeyOutsideScope("object key is outside the caller's scope")

    response = http.http_handler("token")(outside)(make_event(), context())
    _assert_error(response, 403, "KeyOutsideScope")


@pytest.mark.parametrize(("path", "status"), [("/sts", 200), ("/", 200), ("", 200), ("/api/v1/sts/", 200),
                                             ("/other", 404), ("/sts/x", 404), ("/stsx", 404)])
def test_route_path_is_checked_before_the_route_runs(env, path, status):
    calls: list[str] = []

    def route(request, settings, ctx):
        calls.append(request.path)
        return http.json_response(200, {})

    response = http.http_handler("token", path="/sts")(route)(make_event(path=path), context())
    assert response["statusCode"] == status
    if status == 404:
        assert _assert_error(response, 404, "NotFound")["message"] == "no such endpoint; use /sts"
        assert calls == []
    else:
        assert calls == [path or "/"]


def test_method_check_comes_before_the_route_path(env):
    response = http.http_handler("token", methods=("GET",), path="/sts")(
        lambda r, s, c: http.json_response(200, {}))(make_event("POST", path="/other"), context())
    _assert_error(response, 405, "MethodNotAllowed")


def test_forbidden_response_headers_are_dropped(env):
    def headers(request, settings, ctx):
        return http.json_response(200, {}, {"X-Fc-Status": "1", "Connection": "close", "Content-Length": "3",
                                            "Date": "x", "Server": "me", "Keep-Alive": "5", "X-Ok": "yes"})

    response = http.http_handler("token")(headers)(make_event(), context())
    assert set(response["headers"]) == {"Content-Type", "X-Ok"}


def test_configuration_error_is_500_misconfigured(env):
    env(OSS_BUCKET=None)
    response = echo(make_event(), context())
    _assert_error(response, 500, "MisconfiguredFunction")


def test_access_line_has_no_query_or_authorization(env, logs):
    event = make_event(method="GET", query={"Signature": "sig-value-should-not-appear"},
                       headers={"Authorization": "Bearer eyJhbGciOi.eyJzdWIi.c2ln"})
    echo(event, context(request_id="req-log"))
    lines = [json.loads(line) for line in logs.getvalue().splitlines()]
    access = [line for line in lines if line["event"] == "http.access"]
    assert len(access) == 1
    assert access[0]["method"] == "GET" and access[0]["path"] == "/sts" and access[0]["status"] == 200
    assert access[0]["source_ip"] == "203.0.113.7" and access[0]["request_id"] == "req-log"
    assert isinstance(access[0]["duration_ms"], float)
    assert "sig-value-should-not-appear" not in logs.getvalue()
    assert "eyJhbGciOi" not in logs.getvalue()


def test_request_repr_hides_headers_and_body(env):
    request = http.parse_event(make_event(body={"password": "x"}, headers={"Authorization": "Bearer tok"}))
    assert "Bearer" not in repr(request) and "password" not in repr(request)


# --- CORS --------------------------------------------------------------------------------------------------

ORIGIN = "https://app.example.com"


def test_cors_preflight_for_an_allowed_origin(env):
    env(CORS_ALLOWED_ORIGINS=f"{ORIGIN},https://other.example.com", CORS_MAX_AGE="120")
    response = echo(make_event(method="OPTIONS", headers={"Origin": ORIGIN,
                                                          "Access-Control-Request-Method": "POST"}), context())
    assert response["statusCode"] == 204
    headers = response["headers"]
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Vary"] == "Origin"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "Authorization" in headers["Access-Control-Allow-Headers"]
    assert headers["Access-Control-Max-Age"] == "120"
    assert "Access-Control-Allow-Credentials" not in headers


def test_cors_preflight_for_a_denied_origin(env):
    env(CORS_ALLOWED_ORIGINS=ORIGIN)
    for origin in ("https://evil.example.com", ORIGIN + ".evil.com", "https://app.example.co", "null"):
        response = echo(make_event(method="OPTIONS", headers={"Origin": origin,
                                                              "Access-Control-Request-Method": "POST"}), context())
        _assert_error(response, 403, "Forbidden")
        assert "Access-Control-Allow-Origin" not in response["headers"]


def test_cors_preflight_for_a_method_not_served(env):
    env(CORS_ALLOWED_ORIGINS=ORIGIN)
    response = echo(make_event(method="OPTIONS", headers={"Origin": ORIGIN,
                                                          "Access-Control-Request-Method": "DELETE"}), context())
    _assert_error(response, 405)


def test_cors_headers_on_actual_requests(env):
    env(CORS_ALLOWED_ORIGINS=ORIGIN)
    allowed = echo(make_event(headers={"Origin": ORIGIN}, body={}), context())
    assert allowed["headers"]["Access-Control-Allow-Origin"] == ORIGIN and allowed["headers"]["Vary"] == "Origin"
    denied = echo(make_event(headers={"Origin": "https://evil.example.com"}, body={}), context())
    assert "Access-Control-Allow-Origin" not in denied["headers"] and denied["headers"]["Vary"] == "Origin"
    # errors carry CORS headers too, so browsers can read them
    error = echo(make_event(method="DELETE", headers={"Origin": ORIGIN}), context())
    assert error["statusCode"] == 405 and error["headers"]["Access-Control-Allow-Origin"] == ORIGIN


def test_no_cors_configured_means_no_cors_headers(env):
    response = echo(make_event(headers={"Origin": ORIGIN}, body={}), context())
    assert not any(name.startswith("Access-Control") for name in response["headers"])
    preflight = echo(make_event(method="OPTIONS", headers={"Origin": ORIGIN,
                                                           "Access-Control-Request-Method": "POST"}), context())
    assert preflight["statusCode"] == 403


def test_plain_options_without_origin_lists_methods(env):
    response = echo(make_event(method="OPTIONS"), context())
    assert response["statusCode"] == 204 and response["headers"]["Allow"] == "GET, POST, OPTIONS"


# --- response helpers ----------------------------------------------------------------------------------------


def test_response_helpers():
    assert http.redirect("https://x/y")["headers"]["Location"] == "https://x/y"
    assert http.redirect("https://x/y")["statusCode"] == 302
    binary = http.binary_response(200, b"\x00\x01", "image/png")
    assert binary["isBase64Encoded"] is True and base64.b64decode(binary["body"]) == b"\x00\x01"
    error = http.error_response(Forbidden("no", headers={"WWW-Authenticate": "Bearer"}), "r-1")
    assert error["statusCode"] == 403 and error["headers"]["WWW-Authenticate"] == "Bearer"
    assert json.loads(error["body"]) == {"code": "Forbidden", "message": "no", "requestId": "r-1"}
    unicode = http.json_response(200, {"name": "файл"})
    assert json.loads(unicode["body"]) == {"name": "файл"}


def test_headers_are_case_insensitive():
    headers = http.Headers({"Content-Type": "a", "x-api-key": "b"})
    assert headers["content-type"] == "a" and headers["X-API-KEY"] == "b" and "X-Api-Key" in headers
    assert set(headers) == {"Content-Type", "x-api-key"} and len(headers) == 2
    assert "b" not in repr(headers)


def test_head_answers_carry_no_body(env):
    handler = http.http_handler("token", methods=("GET", "HEAD"))(
        lambda request, settings, ctx: http.binary_response(200, b"data", "text/plain"))
    response = handler(make_event(method="HEAD"), context())
    assert response["statusCode"] == 200 and response["body"] == "" and response["isBase64Encoded"] is False
    assert response["headers"]["Content-Type"] == "text/plain"
    assert handler(make_event(method="GET"), context())["body"] == base64.b64encode(b"data").decode()


def test_log_level_from_settings_applies_on_a_fresh_container():
    """In a fresh process nothing configured logging yet: LOG_LEVEL=warning must silence the access line."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.token.conftest import BASE_ENV

    code = ("import json; from shared import http; "
            "h = http.http_handler('token')(lambda r, s, c: http.json_response(200, {})); "
            "from tests.token.conftest import make_event; "
            "print(json.dumps(h(make_event(body={}), None)['statusCode']))")
    results = {}
    for level in ("warning", "info"):
        env = {"PATH": "/usr/bin:/bin", **BASE_ENV, "LOG_LEVEL": level}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                              cwd=str(Path(__file__).resolve().parents[2]))
        results[level] = done.stdout
    assert '"http.access"' not in results["warning"] and results["warning"].strip().endswith("200")
    assert '"event": "http.access"' in results["info"]
