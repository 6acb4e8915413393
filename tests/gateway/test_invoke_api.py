"""The gateway's InvokeFunction API runs a function only for a caller FC would let invoke it: an ACS3 signature by
the account's key or by an STS session allowed fc:InvokeFunction on that function, on a loopback port of its own
(not the HTTP triggers' port)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from urllib.parse import urlsplit

import pytest

from local.gateway import LISTEN_BACKLOG, invoke_via_api
from local.sts import Role
from tests.gateway.test_gateway import echo_gateway  # noqa: F401 - the fixture

PATH = "/2023-03-30/functions/echo/invocations"


def acs3_request(endpoint: str, path: str, body: bytes, access_key_id: str, secret: str, *,
                 token: str | None = None, date: datetime | None = None) -> urllib.request.Request:
    """An ACS3-HMAC-SHA256 request built from the published algorithm (the SDK path is tested separately)."""
    host = urlsplit(endpoint).netloc
    headers = {"host": host, "x-acs-action": "InvokeFunction", "x-acs-version": "2023-03-30",
               "x-acs-date": (date or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "x-acs-signature-nonce": uuid.uuid4().hex, "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
               "content-type": "application/json"}
    if token:
        headers["x-acs-security-token"] = token
    signed = sorted(name for name in headers if name == "host" or name.startswith("x-acs-"))
    canonical = "\n".join(["POST", path, "", "".join(f"{n}:{headers[n]}\n" for n in signed), ";".join(signed),
                           headers["x-acs-content-sha256"]])
    to_sign = f"ACS3-HMAC-SHA256\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"ACS3-HMAC-SHA256 Credential={access_key_id},SignedHeaders={';'.join(signed)},"
                                f"Signature={signature}")
    return urllib.request.Request(endpoint + path, data=body, method="POST", headers=headers)


def send(request: urllib.request.Request) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def error_code(status_body: tuple[int, bytes]) -> tuple[int, str]:
    status, body = status_body
    answer = json.loads(body)
    assert set(answer) == {"code", "message", "requestId"}, answer
    return status, answer["code"]


def root(stack):
    return stack.secrets.root_access_key_id, stack.secrets.root_access_key_secret


def test_the_trigger_port_does_not_serve_the_invoke_api(echo_gateway):  # noqa: F811
    gateway, stack = echo_gateway
    status, body = send(acs3_request(gateway.url, PATH, b"{}", *root(stack)))
    assert status == 404 and json.loads(body)["code"] == "RouteNotFound"
    assert gateway.pools["echo"].started == 0
    assert urlsplit(gateway.invoke_url).hostname == "127.0.0.1" and gateway.invoke_url != gateway.url


def test_unsigned_forged_tampered_replayed_and_stale_requests_run_nothing(echo_gateway):  # noqa: F811
    gateway, stack = echo_gateway
    key_id, secret = root(stack)
    unsigned = urllib.request.Request(gateway.invoke_url + PATH, data=b"{}", method="POST")
    assert error_code(send(unsigned)) == (401, "IncompleteSignature")
    assert error_code(send(acs3_request(gateway.invoke_url, PATH, b"{}", key_id, "not-the-secret"))) == (
        403, "SignatureDoesNotMatch")
    assert error_code(send(acs3_request(gateway.invoke_url, PATH, b"{}", "LTAIunknown", secret))) == (
        403, "InvalidAccessKeyId.NotFound")
    tampered = acs3_request(gateway.invoke_url, PATH, b'{"a": 1}', key_id, secret)
    tampered.data = b'{"a": 2}'
    assert error_code(send(tampered)) == (403, "SignatureDoesNotMatch")
    stale = acs3_request(gateway.invoke_url, PATH, b"{}", key_id, secret,
                         date=datetime.fromtimestamp(time.time() - 3600, timezone.utc))
    assert error_code(send(stale)) == (403, "InvalidTimeStamp.Expired")
    # a function that does not exist is named only to a caller that could invoke it
    unknown = "/2023-03-30/functions/nope/invocations"
    assert error_code(send(urllib.request.Request(gateway.invoke_url + unknown, data=b"{}", method="POST"))) == (
        401, "IncompleteSignature")
    assert gateway.pools["echo"].started == 0  # none of these reached the function
    assert error_code(send(acs3_request(gateway.invoke_url, unknown, b"{}", key_id, secret))) == (
        404, "FunctionNotFound")
    good = acs3_request(gateway.invoke_url, PATH, b'{"hello": 1}', key_id, secret)
    status, body = send(good)
    assert status == 200 and json.loads(body)["echo"] == {"hello": 1}
    replay = urllib.request.Request(good.full_url, data=good.data, method="POST", headers=dict(good.header_items()))
    assert error_code(send(replay)) == (403, "SignatureNonceUsed")


def test_sts_sessions_need_fc_invoke_function_on_that_function(echo_gateway):  # noqa: F811
    gateway, stack = echo_gateway
    arn = f"acs:fc:cn-hangzhou:{stack.template.account_id}:functions/echo"

    def session(policies):
        role = Role(arn=f"acs:ram::{stack.template.account_id}:role/invoker", policies=policies, trust=[],
                    max_session_duration=3600)
        return stack.cloud.token_store.issue(role, "invoker", 3600, None)

    other = session([{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["fc:InvokeFunction"],
                                                     "Resource": [arn + "-other"]}]}])
    allowed = session([{"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["fc:InvokeFunction"],
                                                       "Resource": [arn]}]}])
    request = acs3_request(gateway.invoke_url, PATH, b"{}", other.access_key_id, other.access_key_secret,
                           token=other.security_token)
    assert error_code(send(request)) == (403, "AccessDenied")
    no_token = acs3_request(gateway.invoke_url, PATH, b"{}", allowed.access_key_id, allowed.access_key_secret)
    assert error_code(send(no_token)) == (403, "InvalidSecurityToken")
    # the SDK path the export's continuation takes: alibabacloud-tea-openapi signing with an STS session
    status, body = invoke_via_api(gateway.invoke_url, "echo", b'{"via": "sdk"}', access_key_id=allowed.access_key_id,
                                  access_key_secret=allowed.access_key_secret,
                                  security_token=allowed.security_token, region="cn-hangzhou")
    assert status == 200 and json.loads(body)["echo"] == {"via": "sdk"}


def test_listen_backlog(echo_gateway):  # noqa: F811
    gateway, _ = echo_gateway
    assert LISTEN_BACKLOG == 128
    assert gateway.server.request_queue_size == gateway.invoke_server.request_queue_size == 128


@pytest.mark.parametrize("length", ["-5", "abc", str(64 * 1024 * 1024)])
def test_bad_content_length_is_a_clear_400(echo_gateway, length):  # noqa: F811
    import http.client

    gateway, _ = echo_gateway
    connection = http.client.HTTPConnection(urlsplit(gateway.invoke_url).netloc, timeout=10)
    connection.putrequest("POST", PATH)
    connection.putheader("Content-Length", length)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 400 and json.loads(response.read())["code"] == "InvalidArgument"
    connection.close()


def test_local_invoke_uses_the_signed_api_of_a_running_stack(tmp_path):
    """`python -m local invoke <function> --gateway <url>` finds the API through the health answer and signs
    with the account key kept in the data directory."""
    import subprocess
    import sys
    from pathlib import Path

    from local.up import start_stack

    root_dir = Path(__file__).resolve().parents[2]
    with start_stack(data_dir=tmp_path, auth="apikey", port=0, oss_port=0, sts_port=0, timers=False,
                     echo_logs=False) as stack:
        command = [sys.executable, "-m", "local", "invoke", "sign", "--gateway", stack.gateway.url,
                   "--data", str(tmp_path)]
        completed = subprocess.run(command, cwd=root_dir, capture_output=True, text=True, timeout=120, check=False)
        assert completed.returncode == 0, completed.stderr
        answer = json.loads(completed.stdout)
        assert answer["statusCode"] == 200 and "url" in json.loads(answer["body"])
        # answered by this running stack (not by a stack of its own, which `local invoke` starts otherwise)
        assert stack.gateway.pools[stack.template.function_by_short_name("sign").name].started == 1
        completed = subprocess.run([*command, "--async"], cwd=root_dir, capture_output=True, text=True,
                                   timeout=120, check=False)
        assert completed.returncode == 0 and completed.stdout.strip() == "accepted (202)", completed
