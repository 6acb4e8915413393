"""Log sweep (issue 10): no secret issued during a run appears in any log line, third-party lines included.

Two runs, each at LOG_LEVEL=debug (urllib3 logs every request line, query string included) and with the
Alibaba Cloud SDK's own HTTP debug output switched on (DEBUG=sdk prints request headers, security token and
Authorization among them):

- end to end: the stack (emulator + gateway + function instances from template.yml, JWT callers) serves
  /sts, /sign (V4, V1, proxy links, batches), /download (redirect and stream, proxy links), refusals and
  malformed requests; every raw line the instances write (stderr, JSON or not) is swept;
- in process: the token, sign and download handlers against the emulator's real STS and OSS, with the
  standard library's logging routed as in production; every line written is swept.

Secrets swept: the root AccessKey secret, vended AccessKey secrets and security tokens, the signer role's
session tokens (they travel in URLs), every URL signature and proxy-link signature handed out, the JWTs,
the JWT, link and webhook secrets, the API key.
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from local.up import JWT_ISSUER, demo_jwt
from shared import credentials, http, sts
from shared import logging as log
from tests.http_calls import call_url
from tests.security.sweep import SecretSweep
from tests.sign.helpers import replace_environment


def _workload(base: str, bearer: str, sweep: SecretSweep, fetch_oss: bool = True) -> int:
    """The requests of a security run; every secret the answers carry goes into ``sweep``. Returns the count."""
    auth = {"Authorization": f"Bearer {bearer}"}
    calls = 0

    def call(url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        nonlocal calls
        calls += 1
        status, headers, body = call_url(url, **kwargs)
        sweep.add_body(body)
        if "Location" in headers:
            sweep.add_url(headers["Location"])
        return status, headers, body

    status, _, body = call(f"{base}/sts", method="POST", headers=auth, body={"actions": ["read", "list"]})
    assert status == 200, body
    call(f"{base}/sts", method="POST", headers=auth, body={"duration": 900, "prefix": "sub"})
    for query in ("key=users/demo/hello.txt", "key=users/demo/hello.txt&version=v1",
                  "key=users/demo/hello.txt&proxy=true&disposition=attachment", "key=users/demo/a%20b.txt&expires=60"):
        status, _, body = call(f"{base}/sign?{query}", headers=auth)
        assert status == 200, body
    status, _, body = call(f"{base}/sign", method="POST", headers=auth,
                           body={"keys": ["users/demo/hello.txt", "users/demo/x", "users/other/x", "\ud800"]})
    link = next((json.loads(body)["url"] for _ in [0] if status == 200), None)
    status, headers, _ = call(f"{base}/download/users/demo/hello.txt", headers=auth)
    assert status == 302  # both stacks run DOWNLOAD_MODE=redirect (the default): a redirect to a signed URL
    _, _, proxy_body = call(f"{base}/sign?key=users/demo/hello.txt&proxy=true", headers=auth)
    proxy = json.loads(proxy_body)["url"]
    status, headers, _ = call(proxy)
    assert status == 302
    if fetch_oss and "Location" in headers:  # the OSS side logs too (the emulator's own lines are not ours)
        call_url(headers["Location"])
    # refusals and malformed requests: their error paths log too
    for bad in ({"Authorization": f"Bearer {bearer}x"}, {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
                {"X-Api-Key": "no-such-key-0123456789"}, {}):
        call(f"{base}/sts", method="POST", headers=bad, body={})
    call(f"{base}/sign?key=users/other/secret.txt", headers=auth)
    call(f"{base}/sign?key=users/demo/a&duration=%C2%B2&expires=%C2%B2", headers=auth)
    call(f"{base}/download/users/demo/hello.txt?exp=1&sig={quote('forged-signature-value')}")
    del link
    return calls


def test_end_to_end_logs_carry_no_issued_secret(make_stack: Any) -> None:
    debug = {"LOG_LEVEL": "debug", "DEBUG": "sdk"}
    stack = make_stack(auth="jwt", env={name: debug for name in ("token", "sign", "download")})
    sweep = SecretSweep()
    secrets = stack.secrets
    sweep.add(secrets.root_access_key_secret, secrets.jwt_secret, secrets.link_secret, secrets.webhook_secret,
              secrets.api_key)
    bearer = demo_jwt(secrets.jwt_secret, issuer=JWT_ISSUER, audience=stack.template.parameters["JwtAudience"])
    sweep.add(bearer)
    lines: list[str] = []
    lock = threading.Lock()

    def listen(_function: str, line: str) -> None:
        with lock:
            lines.append(line)

    stack.gateway.log_listeners.append(listen)
    try:
        calls = _workload(stack.gateway.url, bearer, sweep)
        time.sleep(0.5)  # the instances' lines arrive through pipes
    finally:
        stack.gateway.log_listeners.remove(listen)
    hits = sweep.found_in(lines)
    print(f"\nlog sweep (end to end): {calls} requests, {len(lines)} log lines, {len(sweep.secrets)} secrets, "
          f"{len(hits)} found")
    assert calls >= 15 and len(lines) >= calls and len(sweep.secrets) >= 10
    assert any("urllib3" in line or "darabonba" in line for line in lines), "third-party lines were swept too"
    assert not hits, hits[:5]


@pytest.fixture
def in_process_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The emulator on loopback and the three HTTP handlers served in process (production logging)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from functions.download.handler import handler as download
    from functions.sign.handler import handler as sign
    from functions.token.handler import handler as token
    from local.cloud import CloudConfig, LocalCloud
    from local.sts import Role
    from tests.sign.helpers import BUCKET, REGION, ROOT_AK, ROOT_SECRET, context, oss2_bucket

    handlers = {"/sts": token, "/sign": sign, "/download/": download}

    class Adapter(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            from urllib.parse import parse_qsl, unquote, urlsplit

            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            event = {"version": "v1", "rawPath": parts.path, "body": self.rfile.read(length).decode("utf-8"),
                     "isBase64Encoded": False, "headers": dict(self.headers.items()),
                     "queryParameters": dict(parse_qsl(parts.query, keep_blank_values=True)),
                     "requestContext": {"requestId": "req-sweep", "http": {
                         "method": self.command, "path": unquote(parts.path), "sourceIp": "127.0.0.1"}}}
            route = next(h for prefix, h in handlers.items() if parts.path.startswith(prefix))
            response = route(json.dumps(event).encode(), context())
            body = response["body"].encode() if not response.get("isBase64Encoded") else b""
            self.send_response(response["statusCode"])
            for name, value in response["headers"].items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = _serve

        def log_message(self, *args: Any) -> None:
            pass

    role = "acs:ram::1234567890123456:role/vended"
    everything = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}
    config = CloudConfig(data_dir=tmp_path / "data", root_keys={ROOT_AK: ROOT_SECRET}, buckets=[BUCKET],
                         region=REGION, roles=[Role(role, [everything], ["acs:ram::1234567890123456:root"])])
    with LocalCloud(config) as cloud:
        oss2_bucket(cloud).put_object("users/demo/hello.txt", b"hello")
        jwt_secret = "sweep-hs256-secret-0123456789abcdef"
        env = {"OSS_BUCKET": BUCKET, "OSS_REGION": "cn-hangzhou", "OSS_ENDPOINT": f"http://{cloud.oss_endpoint}",
               "STS_ENDPOINT": f"http://{cloud.sts_endpoint}", "AUTH_MODE": "jwt", "JWT_ISSUER": "https://idp/",
               "JWT_AUDIENCE": "sweep", "JWT_ALGORITHMS": "HS256", "JWT_HS256_SECRET": jwt_secret,
               "AUTH_SCOPE_TEMPLATE": "users/{sub}/", "STS_ROLE_ARN": role,
               "DOWNLOAD_LINK_SECRET": "sweep-link-secret-0123456789abcdef", "LOG_LEVEL": "debug",
               "ALIBABA_CLOUD_ACCESS_KEY_ID": ROOT_AK, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": ROOT_SECRET, "DEBUG": "sdk"}
        server = ThreadingHTTPServer(("127.0.0.1", 0), Adapter)
        base = f"http://127.0.0.1:{server.server_address[1]}"
        env["DOWNLOAD_BASE_URL"] = base
        replace_environment(monkeypatch, env)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield base, jwt_secret, env, cloud
        finally:
            server.shutdown()
            http.reset_settings()
            credentials.reset()
            sts.reset()


def test_in_process_logs_with_real_sdk_calls_carry_no_issued_secret(in_process_stack: Any) -> None:
    import jwt

    base, jwt_secret, env, _cloud = in_process_stack
    stream = io.StringIO()
    log.configure("debug", stream=stream)
    try:
        now = int(time.time())
        bearer = jwt.encode({"sub": "demo", "iss": "https://idp/", "aud": "sweep", "iat": now, "exp": now + 600},
                            jwt_secret, algorithm="HS256")
        sweep = SecretSweep()
        sweep.add(bearer, jwt_secret, env["DOWNLOAD_LINK_SECRET"], env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
        calls = _workload(base, bearer, sweep, fetch_oss=True)
    finally:
        log.configure("warning")
    lines = stream.getvalue().splitlines()
    hits = sweep.found_in(lines)
    print(f"\nlog sweep (in process): {calls} requests, {len(lines)} log lines, {len(sweep.secrets)} secrets, "
          f"{len(hits)} found")
    assert any('"logger": "urllib3.connectionpool"' in line for line in lines)
    assert any('"logger": "darabonba-core"' in line or '"logger": "alibabacloud-tea"' in line for line in lines)
    masked = [line for line in lines if log.MASK in line]
    print(f"  lines with a masked value: {len(masked)}")
    assert masked, "the sweep saw no secret-bearing line at all: it would pass vacuously"
    assert not hits, hits[:5]
