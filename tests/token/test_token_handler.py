"""functions/token/handler: authenticate first, narrow, issue, cache, audit; never leak a secret."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import responses

from functions.token.handler import handler
from shared import auth
from tests.token.conftest import (
    API_KEY,
    AUDIENCE,
    BUCKET,
    FUNCTION_AK,
    FUNCTION_SECRET,
    FUNCTION_TOKEN,
    HS_SECRET,
    ISSUER,
    REGION,
    STS_URL,
    VENDED_SECRET,
    VENDED_TOKEN,
    body_of,
    claims,
    context,
    forge_hs256,
    make_event,
    make_jwt,
    sts_success_body,
)


def _policy_sent(mock: responses.RequestsMock, index: int = -1) -> dict:
    query = parse_qs(urlsplit(mock.calls[index].request.url).query)
    return json.loads(query["Policy"][0])


def _sent(mock: responses.RequestsMock, name: str, index: int = -1) -> str:
    return parse_qs(urlsplit(mock.calls[index].request.url).query)[name][0]


@pytest.fixture
def sts_ok(sts_mock):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    return sts_mock


def _api(method: str = "POST", **kwargs):
    headers = {"X-Api-Key": API_KEY, **kwargs.pop("headers", {})}
    return handler(make_event(method=method, headers=headers, **kwargs), context())


def test_issues_scoped_credentials(env, sts_ok):
    response = _api()
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "no-store"
    body = body_of(response)
    assert body == {
        "AccessKeyId": "STS.NUexampleAK", "AccessKeySecret": VENDED_SECRET, "SecurityToken": VENDED_TOKEN,
        "Expiration": "2099-01-01T00:00:00Z", "Bucket": BUCKET, "Region": REGION,
        "Endpoint": f"https://oss-{REGION}.aliyuncs.com", "Prefix": "partners/p1/", "Actions": ["read", "list"],
    }
    statements = _policy_sent(sts_ok)["Statement"]
    assert statements[0]["Resource"] == [f"acs:oss:*:*:{BUCKET}/partners/p1/*"]
    assert statements[1]["Condition"]["StringLike"]["oss:Prefix"] == ["partners/p1/*"]


def test_get_with_query_narrowing(env, sts_ok):
    response = _api("GET", query={"prefix": "reports/2024", "actions": "read", "duration": "900"})
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["Prefix"] == "partners/p1/reports/2024/" and body["Actions"] == ["read"]
    assert _sent(sts_ok, "DurationSeconds") == "900"
    assert _policy_sent(sts_ok) == {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject"],
         "Resource": [f"acs:oss:*:*:{BUCKET}/partners/p1/reports/2024/*"]}]}


def test_post_body_narrowing_and_write_when_allowed(env, sts_ok):
    env(STS_ALLOW_WRITE="true", STS_MAX_DURATION="7200")
    response = _api(body={"prefix": "in", "actions": ["write"], "duration": 7200})
    assert response["statusCode"] == 200
    assert body_of(response)["Actions"] == ["write"]
    assert _policy_sent(sts_ok)["Statement"][0]["Action"] == ["oss:PutObject", "oss:AbortMultipartUpload",
                                                              "oss:ListParts"]
    assert _sent(sts_ok, "DurationSeconds") == "7200"


@pytest.mark.parametrize(("kwargs", "status"), [
    ({"body": {"duration": 899}}, 400),
    ({"body": {"duration": 3601}}, 400),
    ({"body": {"duration": "abc"}}, 400),
    ({"body": {"duration": True}}, 400),
    ({"body": {"duration": 1.5}}, 400),
    ({"query": {"duration": "-900"}}, 400),
    ({"body": {"actions": ["write"]}}, 403),
    ({"body": {"actions": ["delete"]}}, 400),
    ({"body": {"actions": "*"}}, 400),
    ({"body": {"prefix": "../partners/p2"}}, 400),
    ({"body": {"prefix": "*"}}, 400),
    ({"body": {"prefix": ["a"]}}, 400),
    ({"body": {"bucket": "other"}}, 400),
    ({"body": {"prefix": "a"}, "query": {"prefix": "b"}}, 400),
    ({"body": {"prefix": "a/" * 500}}, 400),
    ({"body": "not json", "headers": {"Content-Type": "application/json"}}, 400),
    ({"body": "[]", "headers": {"Content-Type": "application/json"}}, 400),
    ({"path": "/other"}, 404),
])
def test_bad_requests_make_no_sts_call(env, sts_ok, kwargs, status):
    response = _api(**kwargs)
    assert response["statusCode"] == status, response["body"]
    assert set(body_of(response)) == {"code", "message", "requestId"}
    assert len(sts_ok.calls) == 0


def test_source_ip_binding(env, sts_ok):
    env(STS_BIND_SOURCE_IP="true")
    assert _api(source_ip="198.51.100.9")["statusCode"] == 200
    for statement in _policy_sent(sts_ok)["Statement"]:
        assert statement["Condition"]["IpAddress"] == {"acs:SourceIp": ["198.51.100.9"]}
    assert _api(source_ip="")["statusCode"] == 400


def test_context_credentials_are_preferred(env, sts_ok):
    env(ALIBABA_CLOUD_ACCESS_KEY_ID="LTAIenvOnly", ALIBABA_CLOUD_ACCESS_KEY_SECRET="env-secret-0123456789")
    handler(make_event(headers={"X-Api-Key": API_KEY}), context(with_credentials=True))
    assert f"Credential={FUNCTION_AK}," in sts_ok.calls[0].request.headers["Authorization"]


def test_no_function_credentials_is_500_misconfigured(env, sts_ok):
    env(ALIBABA_CLOUD_ACCESS_KEY_ID=None, ALIBABA_CLOUD_ACCESS_KEY_SECRET=None)
    response = _api()
    assert response["statusCode"] == 500 and body_of(response)["code"] == "MisconfiguredFunction"
    assert len(sts_ok.calls) == 0


# --- caching ------------------------------------------------------------------------------------------------


def test_cache_spares_sts(env, sts_ok):
    first, second = body_of(_api()), body_of(_api())
    assert first == second and len(sts_ok.calls) == 1
    _api(body={"prefix": "other"})
    _api(body={"actions": ["read"]})
    assert len(sts_ok.calls) == 3, "scope and actions are part of the cache key"
    shorter = body_of(_api(body={"duration": 900}))
    assert len(sts_ok.calls) == 3, "a session with enough life left serves a shorter request"
    assert shorter["Expiration"] == first["Expiration"] == "2099-01-01T00:00:00Z"  # its real expiration


def test_cache_disabled(env, sts_ok):
    env(STS_CACHE_SECONDS="0")
    _api()
    _api()
    assert len(sts_ok.calls) == 2


def test_cache_not_used_when_too_little_life_remains(env, sts_mock):
    soon = (datetime.now(timezone.utc) + timedelta(seconds=1000)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body(expiration=soon))
    _api()
    _api()
    assert len(sts_mock.calls) == 2  # 1000 s left < STS_CACHE_SECONDS (1800)
    served = _api(body={"duration": 900})  # but 1000 s left honestly serves a 900 s request
    assert len(sts_mock.calls) == 2 and body_of(served)["Expiration"] == soon


def test_cache_is_per_identity(env, sts_ok):
    other_key = "ak_live_partner_two_0123456789"
    env(AUTH_API_KEYS=json.dumps({
        auth.hash_api_key(API_KEY): {"name": "partner-1", "scope": "partners/p1/"},
        auth.hash_api_key(other_key): {"name": "partner-2", "scope": "partners/p2/"},
    }))
    _api()
    response = _api(headers={"X-Api-Key": other_key})
    assert body_of(response)["Prefix"] == "partners/p2/"
    assert len(sts_ok.calls) == 2
    assert _sent(sts_ok, "RoleSessionName") == "apikey-partner-2"


# --- authentication happens before anything else -------------------------------------------------------------


@pytest.fixture
def jwt_env(env, rsa_keys):
    env(AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, JWT_PUBLIC_KEY=rsa_keys.public)
    return rsa_keys


def _bad_tokens(keys) -> dict[str, tuple[str, int]]:
    none_token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": 4_000_000_000}, None,
                            algorithm="none")
    return {
        "bad signature": (make_jwt(keys.other_private), 401),
        "wrong audience": (make_jwt(keys.private, aud="x"), 401),
        "wrong issuer": (make_jwt(keys.private, iss="https://evil/"), 401),
        "expired": (make_jwt(keys.private, exp=1_000_000_000), 401),
        "nbf in the future": (make_jwt(keys.private, nbf=4_000_000_000), 401),
        "alg none": (none_token, 401),
        "HS256 against RS256": (make_jwt(HS_SECRET, "HS256"), 401),
        "HS256 keyed with the public key": (forge_hs256(claims(), keys.public.encode()), 401),
        "missing sub": (make_jwt(keys.private, sub=None), 403),
        "sub wildcard": (make_jwt(keys.private, sub="*"), 403),
        "sub dotdot": (make_jwt(keys.private, sub=".."), 403),
        "sub slash": (make_jwt(keys.private, sub="alice/../bob"), 403),
        "garbage": ("garbage", 401),
    }


def test_jwt_failures_make_no_sts_call(jwt_env, sts_ok, logs):
    for name, (token, status) in _bad_tokens(jwt_env).items():
        response = handler(make_event(headers={"Authorization": f"Bearer {token}"}), context())
        assert response["statusCode"] == status, name
        assert token not in response["body"] and token not in json.dumps(response["headers"]), name
        if status == 401:
            assert response["headers"]["WWW-Authenticate"].startswith("Bearer"), name
    assert len(sts_ok.calls) == 0
    assert handler(make_event(), context())["statusCode"] == 401
    assert len(sts_ok.calls) == 0


def test_valid_jwt_issues_for_its_subject(jwt_env, sts_ok):
    token = make_jwt(jwt_env.private, sub="alice@example.com")
    response = handler(make_event(headers={"Authorization": f"Bearer {token}"}), context())
    assert response["statusCode"] == 200
    assert body_of(response)["Prefix"] == "users/alice@example.com/"
    assert _sent(sts_ok, "RoleSessionName") == "jwt-alice@example.com"


# --- logs ---------------------------------------------------------------------------------------------------------


def test_no_secret_reaches_the_logs(jwt_env, sts_mock, logs):
    sts_mock.add(responses.POST, STS_URL, json=sts_success_body())
    token = make_jwt(jwt_env.private)
    ok = handler(make_event(headers={"Authorization": f"Bearer {token}"}, query={"x-oss-signature": "abc"}),
                 context(with_credentials=True))
    assert ok["statusCode"] == 400  # unknown parameter: still logged
    ok = handler(make_event(headers={"Authorization": f"Bearer {token}"}), context(with_credentials=True))
    assert ok["statusCode"] == 200
    bad = handler(make_event(headers={"Authorization": f"Bearer {make_jwt(jwt_env.other_private)}"}), context())
    assert bad["statusCode"] == 401
    output = logs.getvalue()
    for secret in (VENDED_SECRET, VENDED_TOKEN, FUNCTION_SECRET, FUNCTION_TOKEN, token, token.split(".")[2]):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    audit = [line for line in lines if line["event"] == "token.issued"]
    assert len(audit) == 1
    assert audit[0]["subject"] == "alice" and audit[0]["session_name"] == "jwt-alice"
    assert audit[0]["scope"] == "users/alice/" and audit[0]["actions"] == ["read", "list"]
    assert audit[0]["duration"] == 3600 and audit[0]["source_ip"] == "203.0.113.7" and audit[0]["cached"] is False


def test_api_key_never_logged_even_on_sts_failure(env, sts_mock, logs):
    sts_mock.add(responses.POST, STS_URL, status=403,
                 json={"Code": "NoPermission", "Message": "You are not authorized", "RequestId": "R"})
    assert _api()["statusCode"] == 502
    assert _api(headers={"X-Api-Key": "wrong-key-0123456789"})["statusCode"] == 401
    output = logs.getvalue()
    assert API_KEY not in output and "wrong-key-0123456789" not in output
    assert FUNCTION_SECRET not in output and FUNCTION_TOKEN not in output
    assert "NoPermission" in output


def test_none_mode_issues_the_anonymous_scope(env, sts_ok, logs):
    env(AUTH_MODE="none", AUTH_ANONYMOUS_SCOPE="public/")
    response = handler(make_event(), context())
    assert body_of(response)["Prefix"] == "public/"
    assert _sent(sts_ok, "RoleSessionName") == "none-anonymous"
    assert "auth.anonymous_mode" in logs.getvalue()


def test_hs256_mode(env, sts_ok):
    env(AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, JWT_ALGORITHMS="HS256",
        JWT_HS256_SECRET=HS_SECRET)
    response = handler(make_event(headers={"Authorization": f"Bearer {make_jwt(HS_SECRET, 'HS256')}"}), context())
    assert response["statusCode"] == 200


# --- cold start ------------------------------------------------------------------------------------------------


def test_importing_the_handler_does_not_import_the_sdks():
    import subprocess
    import sys

    code = ("import sys; import functions.token.handler; "
            "heavy = [m for m in ('alibabacloud_sts20150401', 'alibabacloud_tea_openapi', 'jwt', 'cryptography', "
            "'requests', 'oss2') if m in sys.modules]; print(','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert result.stdout.strip() == ""


def test_initializer_loads_settings_and_the_sdk(env):
    import sys

    from functions.token.handler import initialize
    from shared import http

    initialize(None)
    assert "alibabacloud_sts20150401.client" in sys.modules
    assert http._settings["token"].oss.bucket == BUCKET
