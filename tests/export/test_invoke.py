"""The export's asynchronous self-invocation: FC InvokeFunction, ROA, ACS3-signed, checked by a loopback receiver
that recomputes the ACS3 signature independently (canonical request per the Alibaba Cloud V3 signature spec)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from shared import config
from shared.export.invoke import invoke_endpoint, invoke_self_async
from shared.export.model import ExportFailed

SECRET = "function-secret-0123456789abcdef"
TOKEN = "CAIS-function-token-0123456789"


@dataclass
class Captured:
    requests: list[dict[str, Any]] = field(default_factory=list)
    status: int = 202


@pytest.fixture
def fc_api() -> Iterator[tuple[str, Captured]]:
    captured = Captured()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            captured.requests.append({"method": "POST", "path": self.path, "body": body,
                                      "headers": {k.lower(): v for k, v in self.headers.items()}})
            payload = b"" if captured.status < 400 else json.dumps(
                {"Code": "ServiceUnavailable", "Message": "try later", "RequestId": "R1"}).encode()
            self.send_response(captured.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", captured
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class FakeCredentials:
    access_key_id: str = "STS.function-ak"
    access_key_secret: str = SECRET
    security_token: str = TOKEN
    expiration: str = field(default_factory=lambda: (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat())


@dataclass
class FakeFunction:
    name: str = "oss-url-export"
    timeout: int = 900


@dataclass
class FakeContext:
    request_id: str = "1-test"
    credentials: FakeCredentials = field(default_factory=FakeCredentials)
    function: FakeFunction = field(default_factory=FakeFunction)


def settings(**extra: str) -> config.Settings:
    return config.load("export", {"OSS_BUCKET": "demo-bucket", "OSS_REGION": "cn-hangzhou", **extra})


def acs3_signature(request: dict[str, Any], secret: str) -> tuple[str, str]:
    """(expected, provided) signatures of an ACS3-HMAC-SHA256 request, computed from the wire."""
    headers = request["headers"]
    algorithm, _, rest = headers["authorization"].partition(" ")
    fields = dict(part.strip().split("=", 1) for part in rest.split(","))
    signed = fields["SignedHeaders"].split(";")
    parts = urlsplit(request["path"])
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(parse_qsl(parts.query, keep_blank_values=True)))
    canonical = "\n".join([
        request["method"], parts.path, query,
        "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
        ";".join(signed), hashlib.sha256(request["body"]).hexdigest(),
    ])
    string_to_sign = f"{algorithm}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"]


def test_continuation_is_an_async_invoke_function_signed_with_the_function_credentials(
        fc_api: tuple[str, Captured], monkeypatch: pytest.MonkeyPatch) -> None:
    url, captured = fc_api
    monkeypatch.setenv("FC_FUNCTION_NAME", "oss-url-export")
    body = json.dumps({"continuation": {"export_id": "nightly-x", "hop": 2}}).encode()
    invoke_self_async(settings(ASYNC_INVOKE_ENDPOINT=url), FakeContext(), body)
    [request] = captured.requests
    headers = request["headers"]
    assert request["path"] == "/2023-03-30/functions/oss-url-export/invocations"
    assert headers["x-fc-invocation-type"] == "Async"
    assert headers["x-acs-action"] == "InvokeFunction" and headers["x-acs-version"] == "2023-03-30"
    assert headers["x-acs-security-token"] == TOKEN
    assert request["body"] == body
    assert headers["authorization"].startswith("ACS3-HMAC-SHA256 Credential=STS.function-ak,")
    signed = headers["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "host" in signed and {n for n in headers if n.startswith("x-acs-")} <= set(signed)
    assert headers["x-acs-content-sha256"] == hashlib.sha256(body).hexdigest()
    expected, provided = acs3_signature(request, SECRET)
    assert expected == provided
    assert acs3_signature(request, "another-secret")[0] != provided


def test_a_refused_continuation_raises_without_leaking_secrets(
        fc_api: tuple[str, Captured], monkeypatch: pytest.MonkeyPatch) -> None:
    url, captured = fc_api
    captured.status = 403
    monkeypatch.setenv("FC_FUNCTION_NAME", "oss-url-export")
    with pytest.raises(ExportFailed) as caught:
        invoke_self_async(settings(ASYNC_INVOKE_ENDPOINT=url), FakeContext(), b"{}")
    assert SECRET not in caught.value.message and TOKEN not in caught.value.message
    assert caught.value.status == 502


def test_default_endpoint_is_the_account_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"FC_ACCOUNT_ID": "1234567890123456", "FC_REGION": "cn-shanghai"}
    assert invoke_endpoint(settings(), env) == "https://1234567890123456.cn-shanghai.fc.aliyuncs.com"
    assert invoke_endpoint(settings(ASYNC_INVOKE_ENDPOINT="http://127.0.0.1:9"), env) == "http://127.0.0.1:9"
