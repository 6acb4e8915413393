"""Adversarial review of caller authentication (shared/auth.py): JWT pitfalls and scope derivation.

Each test presents a token an attacker (or a sloppy identity provider) could produce and checks that the
caller is refused with a 401/403 and never reaches a scope, nor a 500.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import auth
from shared.config import AuthSettings, load
from shared.errors import AppError
from shared.http import parse_event

ISSUER = "https://idp.example.test/"
AUDIENCE = "oss-url-api"
HS_SECRET = "review-hs256-secret-0123456789abcdef"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**data, "kid": kid, "use": "sig", "alg": "RS256"}


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    auth.reset_caches()
    yield
    auth.reset_caches()


def settings(**overrides: str) -> AuthSettings:
    env = {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", "AUTH_MODE": "jwt", "JWT_ISSUER": ISSUER,
           "JWT_AUDIENCE": AUDIENCE, "JWT_PUBLIC_KEY": PUBLIC_PEM, "JWT_ALGORITHMS": "RS256", **overrides}
    return load("sign", env).auth


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600}
    return {name: value for name, value in {**base, **overrides}.items() if value is not None}


def request(token: str) -> Any:
    event = {"rawPath": "/sign", "headers": {"Authorization": f"Bearer {token}"},
             "requestContext": {"requestId": "r", "http": {"method": "GET", "path": "/sign", "sourceIp": "10.0.0.1"}}}
    return parse_event(event)


def outcome(token: str, auth_settings: AuthSettings | None = None) -> int | str:
    """The scope granted, or the HTTP status of the refusal."""
    try:
        return auth.authenticate(request(token), auth_settings or settings()).scope
    except AppError as error:
        return error.status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_rs256(header: dict[str, Any], payload: dict[str, Any], key: Any = KEY) -> str:
    """An RS256 token built by hand, for headers and claims PyJWT refuses to encode."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def test_a_valid_token_gets_its_subject_scope() -> None:
    assert outcome(jwt.encode(claims(), KEY, algorithm="RS256")) == "users/alice/"


@pytest.mark.parametrize("subject", ["alice\n", "alice\r\n", "..\n"])
def test_a_trailing_newline_in_the_subject_is_refused_not_a_500(subject: str) -> None:
    # A '$'-anchored re.match accepts "alice\n"; the scope then failed validation as a ConfigError (500).
    assert outcome(jwt.encode(claims(sub=subject), KEY, algorithm="RS256")) == 403


def test_a_trailing_newline_in_a_template_claim_is_refused_not_a_500() -> None:
    token = jwt.encode(claims(tenant="acme\n"), KEY, algorithm="RS256")
    assert outcome(token, settings(AUTH_SCOPE_TEMPLATE="tenants/{tenant}/{sub}/")) == 403


def test_unsafe_subjects_never_reach_a_scope() -> None:
    for subject in ["*", "a/b", "..", ".", "a*", "a?", 'a"', "", "é", "a b", "x" * 129, 7, None, ["alice"]]:
        assert outcome(jwt.encode(claims(sub=subject), KEY, algorithm="RS256")) in (401, 403), subject


def test_alg_none_and_algorithm_confusion_are_refused() -> None:
    payload = _b64(json.dumps(claims()).encode())
    for header in ({"alg": "none"}, {"alg": "None"}, {"alg": "NONE"}, {"alg": "HS256"}, {"alg": "RS512"}):
        assert outcome(f"{_b64(json.dumps(header).encode())}.{payload}.") == 401, header
    # HS256 signed with the public key's PEM (the classic confusion) while only RS256 is configured,
    # and while HS256 is also accepted (then only JWT_HS256_SECRET may verify it).
    import hashlib
    import hmac

    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signing_input = f"{hs_header}.{payload}"
    forged = signing_input + "." + _b64(hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest())
    assert outcome(forged) == 401
    assert outcome(forged, settings(JWT_ALGORITHMS="RS256,HS256", JWT_HS256_SECRET=HS_SECRET)) == 401


def test_header_keys_are_never_fetched_or_trusted() -> None:
    """jku / x5u / jwk headers point at the attacker's key: it must not be used."""
    attacker_jwk = _jwk(ATTACKER, "evil")
    for extra in ({"jku": "http://127.0.0.1:9/jwks.json"}, {"x5u": "http://127.0.0.1:9/cert.pem"},
                  {"jwk": attacker_jwk}, {"kid": "../../../../dev/null"}, {"kid": "evil"}):
        token = jwt.encode(claims(), ATTACKER, algorithm="RS256", headers=extra)
        assert outcome(token) == 401, extra
        inline = settings(JWT_PUBLIC_KEY="", JWT_JWKS=json.dumps({"keys": [_jwk(KEY, "k1"), _jwk(KEY, "k2")]}))
        assert outcome(token, inline) == 401, extra


def test_kid_selects_only_among_configured_keys() -> None:
    inline = settings(JWT_PUBLIC_KEY="", JWT_JWKS=json.dumps({"keys": [_jwk(KEY, "k1"), _jwk(ATTACKER, "k2")]}))
    assert outcome(jwt.encode(claims(), KEY, algorithm="RS256", headers={"kid": "k1"}), inline) == "users/alice/"
    # the right key under the wrong kid, no kid with two keys, a non-string kid
    assert outcome(jwt.encode(claims(), KEY, algorithm="RS256", headers={"kid": "k2"}), inline) == 401
    assert outcome(jwt.encode(claims(), KEY, algorithm="RS256"), inline) == 401
    assert outcome(raw_rs256({"alg": "RS256", "kid": 1}, claims()), inline) == 401
    assert outcome(raw_rs256({"alg": "RS256", "kid": "k1"}, claims()), inline) == "users/alice/"


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"exp": None}, 401),
    ({"iss": None}, 401),
    ({"aud": None}, 401),
    ({"iss": ISSUER.rstrip("/")}, 401),  # no issuer normalization
    ({"iss": ISSUER.upper()}, 401),
    ({"aud": [AUDIENCE, "other"]}, "users/alice/"),  # RFC 7519: one of the audiences is ours
    ({"aud": ["other", "another"]}, 401),
    ({"aud": AUDIENCE.upper()}, 401),
    ({"exp": "now-20"}, "users/alice/"),  # inside the 30 s leeway
    ({"exp": "now-45"}, 401),
    ({"nbf": "now+120"}, 401),
    ({"iat": "now+120"}, 401),
])
def test_registered_claims(overrides: dict[str, Any], expected: int | str) -> None:
    now = int(time.time())  # relative times resolved when the test runs, not when it is collected
    overrides = {name: now + int(value[3:]) if isinstance(value, str) and value.startswith("now") else value
                 for name, value in overrides.items()}
    assert outcome(jwt.encode(claims(**overrides), KEY, algorithm="RS256")) == expected


def test_an_issuer_list_is_refused() -> None:
    assert outcome(raw_rs256({"alg": "RS256"}, claims(iss=[ISSUER]))) == 401


def test_a_signature_from_another_key_or_a_tampered_payload_is_refused() -> None:
    assert outcome(jwt.encode(claims(), ATTACKER, algorithm="RS256")) == 401
    header, _, signature = jwt.encode(claims(), KEY, algorithm="RS256").split(".")
    assert outcome(f"{header}.{_b64(json.dumps(claims(sub='bob')).encode())}.{signature}") == 401


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 10**400])
def test_non_finite_or_huge_time_claims_are_refused_not_a_500(claim: str, value: Any) -> None:
    # json.dumps writes Infinity / NaN, which json.loads (and so PyJWT) reads back as floats.
    token = raw_rs256({"alg": "RS256"}, claims(**{claim: value}))
    assert outcome(token) in (401, "users/alice/")


@pytest.mark.parametrize("token", ["\ud800.a.b", "eyJhbGciOiJSUzI1NiJ9.\ud800.x", "eyJhbGciOiJSUzI1NiJ9.e30.\udfff",
                                   "\u00e9.a.b", "a\x00.b.c", "a.b", "....", "a" * 10000])
def test_a_malformed_token_is_a_401_even_through_the_handler(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    """A JSON event may carry a lone surrogate ("\\ud800"); PyJWT then raised UnicodeEncodeError (a 500)."""
    from functions.sign.handler import handler
    from tests.sign.helpers import context, event, install_env

    install_env(monkeypatch, AUTH_MODE="jwt", JWT_ISSUER=ISSUER, JWT_AUDIENCE=AUDIENCE, JWT_PUBLIC_KEY=PUBLIC_PEM)
    response = handler(json.dumps(event("GET", "/sign", query={"key": "users/alice/a"}, api_key=None,
                                        headers={"Authorization": f"Bearer {token}"})), context())
    # A lone surrogate is refused by the HTTP adapter for any header (400), before authentication runs.
    expected = (400, "BadRequest") if any("\ud800" <= ch <= "\udfff" for ch in token) else (401, "Unauthorized")
    assert (response["statusCode"], json.loads(response["body"])["code"]) == expected, response


def test_an_unreachable_jwks_is_not_fetched_again_for_every_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a pause after a failed fetch, every unauthenticated request with any token makes the function
    call the identity provider (and wait up to the timeout): a cheap amplification while the IdP is down."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        jwks = settings(JWT_PUBLIC_KEY="", JWT_JWKS_URL=f"http://127.0.0.1:{server.server_address[1]}/jwks")
        token = jwt.encode(claims(), KEY, algorithm="RS256", headers={"kid": "k1"})
        outcomes = [outcome(token, jwks) for _ in range(10)]
        fetches_while_paused = len(hits)
        monkeypatch.setattr(auth, "JWKS_FAILURE_PAUSE_SECONDS", 0)  # the pause is over: fetched again
        assert outcome(token, jwks) == 503 and len(hits) == fetches_while_paused + 1
    finally:
        server.shutdown()
        server.server_close()
    assert outcomes == [503] * 10
    assert fetches_while_paused == 1, hits
