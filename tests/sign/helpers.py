"""Shared test helpers for the sign, download and storage areas: environment, FC events and contexts,
and a LocalCloud (OSS + STS emulator) on ephemeral loopback ports."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local.cloud import CloudConfig, LocalCloud
from shared import auth, credentials, http, sts

BUCKET = "demo-bucket"
REGION = "cn-hangzhou"
ROOT_AK = "LTAI5tSignTestRootKey01"
ROOT_SECRET = "sign-test-root-secret-0123456789"  # emulator-only key
API_KEY = "sign-test-api-key-0123456789abcdef"
OTHER_API_KEY = "sign-test-other-key-0123456789abcd"
SCOPE = "exampledir/"
LINK_SECRET = "link-secret-for-tests-0123456789abcdef"
BASE_URL = "https://api.example.test"


def base_env(**overrides: str) -> dict[str, str]:
    api_keys = {
        hashlib.sha256(API_KEY.encode()).hexdigest(): {"name": "partner", "scope": SCOPE},
        hashlib.sha256(OTHER_API_KEY.encode()).hexdigest(): {"name": "other", "scope": "otherdir/"},
    }
    env = {
        "OSS_BUCKET": BUCKET,
        "OSS_REGION": REGION,
        "AUTH_MODE": "apikey",
        "AUTH_API_KEYS": json.dumps(api_keys),
        "DOWNLOAD_LINK_SECRET": LINK_SECRET,
        "DOWNLOAD_BASE_URL": BASE_URL,
        "LOG_LEVEL": "warning",
        # In-process tests mostly run without an object store; the symlink tests turn the check back on.
        "URL_SYMLINK_CHECK": "false",
    }
    env.update(overrides)
    return env


def install_env(monkeypatch: pytest.MonkeyPatch, **overrides: str) -> dict[str, str]:
    """Replace every registry variable in os.environ with base_env(**overrides); forget cached settings."""
    env = base_env(**overrides)
    replace_environment(monkeypatch, env)
    return env


def replace_environment(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """Exactly ``env`` for every registry variable (and the FC credential variables); cached settings,
    credentials and STS clients forgotten."""
    from shared.config import VARIABLES

    for variable in VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN",
                 "ALIBABA_CLOUD_CREDENTIALS_EXPIRATION"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    http.reset_settings()
    auth.reset_caches()
    credentials.reset()
    sts.reset()


def context(*, access_key_id: str = ROOT_AK, secret: str = ROOT_SECRET, token: str | None = None,
            expires_in: float | None = 3600, with_credentials: bool = True) -> Any:
    expiration = None
    if expires_in is not None:
        expiration = (datetime.now(timezone.utc) + timedelta(seconds=expires_in)).strftime("%Y-%m-%dT%H:%M:%SZ")
    creds = SimpleNamespace(access_key_id=access_key_id if with_credentials else "",
                            access_key_secret=secret if with_credentials else "",
                            security_token=token, expiration=expiration)
    return SimpleNamespace(request_id="req-test-1", credentials=creds, function=SimpleNamespace(name="fn"),
                           account_id="1234567890123456", region=REGION)


def event(method: str = "GET", raw_path: str = "/sign", *, query: Mapping[str, str] | None = None,
          body: Any = None, headers: Mapping[str, str] | None = None, api_key: str | None = API_KEY,
          source_ip: str = "203.0.113.7") -> dict[str, Any]:
    sent_headers = dict(headers or {})
    if api_key is not None:
        sent_headers.setdefault("x-api-key", api_key)
    text = ""
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        sent_headers.setdefault("content-type", "application/json")
    from urllib.parse import unquote

    return {
        "version": "v1",
        "rawPath": raw_path,
        "body": text,
        "isBase64Encoded": False,
        "headers": sent_headers,
        "queryParameters": dict(query or {}),
        "requestContext": {
            "accountId": "1234567890123456",
            "domainName": "x.cn-hangzhou.fcapp.run",
            "http": {"method": method, "path": unquote(raw_path), "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": "pytest"},
            "requestId": "1-test-request",
        },
    }


def body_of(response: Mapping[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


@contextmanager
def local_cloud(data_dir: Path) -> Iterator[LocalCloud]:
    config = CloudConfig(data_dir=data_dir, root_keys={ROOT_AK: ROOT_SECRET}, buckets=[BUCKET], region=REGION)
    with LocalCloud(config) as cloud:
        yield cloud


def oss2_bucket(cloud: LocalCloud, *, v1: bool = False) -> Any:
    import oss2

    auth_ = oss2.Auth(ROOT_AK, ROOT_SECRET) if v1 else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    return oss2.Bucket(auth_, f"http://{cloud.oss_endpoint}", BUCKET, region=REGION)
