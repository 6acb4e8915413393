"""Fixtures for the token area: a clean environment, FC events and contexts, JWT keys, STS mocks."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared import auth, config, credentials, http, sts
from shared import logging as log

BUCKET = "bkt-test"
REGION = "cn-hangzhou"
ROLE_ARN = "acs:ram::1234567890123456:role/vended"
ISSUER = "https://idp.example.test/"
AUDIENCE = "oss-token-api"
STS_URL = re.compile(r"https://sts\.cn-hangzhou\.aliyuncs\.com/.*")
FUNCTION_AK = "LTAI5tFunctionRoleKey"
FUNCTION_SECRET = "function-role-secret-0123456789"
FUNCTION_TOKEN = "CAISfunction-role-token-abcdefgh"
VENDED_SECRET = "vended-secret-0123456789abcdef"
VENDED_TOKEN = "CAISvended-security-token-0123456789"
API_KEY = "ak_live_partner_0123456789abcdef"
HS_SECRET = "hs256-shared-secret-0123456789abcdef"


def _private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@pytest.fixture(scope="session")
def rsa_keys() -> SimpleNamespace:
    one = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    two = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SimpleNamespace(private=_private_pem(one), public=_public_pem(one),
                           other_private=_private_pem(two), other_public=_public_pem(two),
                           key=one, other_key=two)


def jwk_of(public_key: Any, kid: str) -> dict[str, Any]:
    data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public_key))
    data.update(kid=kid, use="sig", alg="RS256")
    return data


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "nbf": now - 5, "exp": now + 600}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def make_jwt(key: Any, algorithm: str = "RS256", kid: str | None = None, **overrides: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims(**overrides), key, algorithm=algorithm, headers=headers)


def forge_hs256(payload: dict[str, Any], secret: bytes) -> str:
    """An HS256 JWT made by hand (PyJWT refuses PEM keys as HMAC secrets): the key-confusion attack."""
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = b64(b'{"alg":"HS256","typ":"JWT"}') + b"." + b64(json.dumps(payload).encode())
    return (signing_input + b"." + b64(hmac.new(secret, signing_input, hashlib.sha256).digest())).decode()


BASE_ENV = {
    "OSS_BUCKET": BUCKET,
    "OSS_REGION": REGION,
    "STS_ROLE_ARN": ROLE_ARN,
    "AUTH_MODE": "apikey",
    "AUTH_API_KEYS": json.dumps({auth.hash_api_key(API_KEY): {"name": "partner-1", "scope": "partners/p1/"}}),
    "ALIBABA_CLOUD_ACCESS_KEY_ID": FUNCTION_AK,
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": FUNCTION_SECRET,
    "ALIBABA_CLOUD_SECURITY_TOKEN": FUNCTION_TOKEN,
}


@pytest.fixture(autouse=True)
def clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """No variable from the outer environment, no cache from another test, retries without sleeping."""
    for variable in config.VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
                 "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION", "FC_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    sleeps: list[float] = []
    monkeypatch.setattr(sts, "sleep", sleeps.append)
    http.reset_settings()
    auth.reset_caches()
    sts.reset()
    credentials.reset()
    yield sleeps
    http.reset_settings()
    auth.reset_caches()
    sts.reset()
    credentials.reset()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Set BASE_ENV plus overrides (None removes a variable) and forget loaded settings."""

    def apply(**overrides: str | None) -> None:
        for name, value in {**BASE_ENV, **overrides}.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        http.reset_settings()
        auth.reset_caches()

    apply()
    return apply


@pytest.fixture
def logs() -> io.StringIO:
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    return stream


def make_event(method: str = "POST", path: str = "/sts", body: Any = None, headers: dict[str, str] | None = None,
               query: dict[str, str] | None = None, source_ip: str = "203.0.113.7", base64_body: bool = False,
               request_id: str = "req-test-1") -> bytes:
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    if base64_body and body is not None:
        body = base64.b64encode(body.encode() if isinstance(body, str) else body).decode()
    event = {
        "version": "v1",
        "rawPath": path,
        "body": body if body is not None else "",
        "isBase64Encoded": base64_body,
        "headers": headers or {},
        "queryParameters": query or {},
        "requestContext": {
            "accountId": "1234567890123456",
            "requestId": request_id,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip},
        },
    }
    return json.dumps(event).encode()


def context(request_id: str = "req-ctx-1", with_credentials: bool = False) -> SimpleNamespace:
    creds = None
    if with_credentials:
        creds = SimpleNamespace(access_key_id=FUNCTION_AK, access_key_secret=FUNCTION_SECRET,
                                security_token=FUNCTION_TOKEN)
    return SimpleNamespace(request_id=request_id, credentials=creds)


def sts_success_body(expiration: str = "2099-01-01T00:00:00Z", ak: str = "STS.NUexampleAK") -> dict[str, Any]:
    return {
        "RequestId": "6894B13B-6D71-4EF5-88FA-F32781734A7F",
        "AssumedRoleUser": {"AssumedRoleId": "3445:alice", "Arn": f"{ROLE_ARN}/alice"},
        "Credentials": {"AccessKeyId": ak, "AccessKeySecret": VENDED_SECRET, "SecurityToken": VENDED_TOKEN,
                        "Expiration": expiration},
    }


@pytest.fixture
def sts_mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(response["body"], str)
    return json.loads(response["body"])
