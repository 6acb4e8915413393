"""The portal function on its own: what it serves, with which headers, and nothing else."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from functions.portal import handler as portal
from shared import http, openapi

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "functions" / "portal" / "static" / "vendor" / "ali-oss"
NODE_COPY = ROOT / "tests" / "local" / "node" / "node_modules" / "ali-oss"


def event(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> dict:
    return {"version": "v1", "rawPath": path, "body": "", "isBase64Encoded": False, "headers": headers or {},
            "queryParameters": {}, "requestContext": {"requestId": "1-test", "http": {
                "method": method, "path": path, "sourceIp": "192.0.2.1"}}}


@pytest.fixture
def serve(monkeypatch):
    def configure(**environment: str):
        for name in ("AUTH_MODE", "JWT_ISSUER", "JWT_AUDIENCE", "OSS_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("OSS_BUCKET", "demo-bucket")
        monkeypatch.setenv("OSS_REGION", "cn-hangzhou")
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        http.reset_settings()
        return lambda path, **kw: portal.handler(event(path, **kw), SimpleNamespace(request_id="1-test"))

    yield configure
    http.reset_settings()


def body_of(response: dict) -> bytes:
    return base64.b64decode(response["body"]) if response["isBase64Encoded"] else response["body"].encode()


def test_page_assets_and_document_are_served_with_a_strict_policy(serve):
    get = serve(AUTH_MODE="apikey")
    page = get("/")
    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert b'src="/portal/portal.js"' in body_of(page)
    policy = page["headers"]["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "connect-src 'self' https://oss-cn-hangzhou.aliyuncs.com https://*.oss-cn-hangzhou.aliyuncs.com;" in policy
    assert page["headers"]["Referrer-Policy"] == "no-referrer"  # an OIDC code never leaks in a Referer
    script = get("/portal/portal.js")
    assert script["headers"]["Content-Type"].startswith("text/javascript")
    assert body_of(script) == (ROOT / "functions/portal/static/portal.js").read_bytes()
    document = get("/openapi.json")
    assert json.loads(body_of(document)) == openapi.document(auth_mode="apikey")
    assert json.loads(body_of(get("/portal/config.json"))) == {
        "auth_mode": "apikey", "oidc": None, "api": {"sts": "/sts", "sign": "/sign", "download": "/download/"}}


def test_only_the_files_found_at_start_are_served(serve):
    get = serve(AUTH_MODE="apikey")
    for path in ("/portal/../handler.py", "/portal/vendor/ali-oss/README.md", "/handler.py", "/portal/",
                 "/portal/index.html", "/portal/%2e%2e/handler.py", "/portal/nothing.js"):
        answer = get(path)
        assert answer["statusCode"] == 404, path
        assert json.loads(answer["body"])["code"] == "NotFound"
    assert get("/portal/vendor/ali-oss/LICENSE")["statusCode"] == 200  # the vendored code's licence travels with it
    assert get("/", method="POST")["statusCode"] == 405


def test_conditional_requests_and_head(serve):
    get = serve(AUTH_MODE="apikey")
    first = get("/portal/portal.css")
    etag = first["headers"]["ETag"]
    assert get("/portal/portal.css", headers={"If-None-Match": etag})["statusCode"] == 304
    head = get("/portal/portal.css", method="HEAD")
    assert head["statusCode"] == 200 and head["body"] == ""


def test_oidc_is_offered_for_jwt_callers_and_its_issuer_may_be_reached(serve):
    get = serve(AUTH_MODE="jwt", JWT_ISSUER="https://login.example.com/tenant/", JWT_AUDIENCE="files-portal")
    config = json.loads(body_of(get("/portal/config.json")))
    assert config["oidc"] == {"issuer": "https://login.example.com/tenant/", "client_id": "files-portal",
                              "scope": "openid"}
    assert "https://login.example.com;" in get("/")["headers"]["Content-Security-Policy"] + ";"
    local = serve(AUTH_MODE="jwt", JWT_ISSUER="https://idp/", JWT_AUDIENCE="a", OSS_ENDPOINT="http://127.0.0.1:9000")
    assert "connect-src 'self' http://127.0.0.1:9000 https://idp;" in local("/")["headers"]["Content-Security-Policy"]


def test_vendored_ali_oss_is_the_pinned_npm_package(serve):
    bundle = (VENDOR / "aliyun-oss-sdk.min.js").read_bytes()
    assert hashlib.sha256(bundle).hexdigest() in (VENDOR / "README.md").read_text()
    lock = json.loads((ROOT / "tests/local/node/package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/ali-oss"]["version"]
    assert f"ali-oss {pinned}**" in (VENDOR / "README.md").read_text()  # the version tests/local/node pins
    if NODE_COPY.exists():  # after `make setup` (npm ci): byte for byte what npm installs
        assert (NODE_COPY / "dist" / "aliyun-oss-sdk.min.js").read_bytes() == bundle
    assert (VENDOR / "LICENSE").read_text().startswith(("MIT", "The MIT License", "(The MIT License)"))
