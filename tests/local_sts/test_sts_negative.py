"""Forged, replayed and stale requests: captured from the real SDKs, altered, and replayed at the local STS."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from .conftest import (
    ROOT_CREDS,
    Credentials,
    LocalSts,
    RpcClient,
    ShiftedClock,
    StsCallError,
    TeaClient,
    credentials_of,
    role_arn,
    start_sts,
)

READER = role_arn("reader")
CANNED = {
    "RequestId": "00000000-0000-0000-0000-000000000000",
    "AssumedRoleUser": {"AssumedRoleId": "1:x", "Arn": "acs:ram::1:role/r/x"},
    "Credentials": {
        "AccessKeyId": "STS.x",
        "AccessKeySecret": "s",
        "SecurityToken": "t",
        "Expiration": "2030-01-01T00:00:00Z",
    },
}


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


def capture(call: Callable[[str], object]) -> RawRequest:
    """Run an SDK call against a recorder on loopback and return the request it put on the wire."""
    captured: list[RawRequest] = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            split = urlsplit(self.path)
            captured.append(RawRequest(self.command, split.path, split.query, dict(self.headers.items()), body))
            payload = json.dumps(CANNED).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _record

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        call(f"127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert len(captured) == 1
    return captured[0]


def send(endpoint: str, request: RawRequest) -> tuple[int, dict[str, object]]:
    """Send a captured request as-is (including the Host header the SDK signed) to the endpoint."""
    host, port = endpoint.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        target = request.path + ("?" + request.query if request.query else "")
        connection.request(request.method, target, body=request.body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


POLICY_WITH_SPACE = json.dumps(
    {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/a b/*"}]}
)


def sdk_request(kind: str, creds: Credentials = ROOT_CREDS) -> RawRequest:
    """A genuine AssumeRole request as the SDK signs it."""

    def call(endpoint: str) -> None:
        client = TeaClient(endpoint, creds) if kind == "acs3" else RpcClient(endpoint, creds)
        client.assume_role(RoleArn=READER, RoleSessionName="replay", Policy=POLICY_WITH_SPACE)

    return capture(call)


def with_query(request: RawRequest, **changes: str) -> RawRequest:
    pairs = [(k, changes.pop(k) if k in changes else v) for k, v in parse_qsl(request.query, keep_blank_values=True)]
    return replace(request, query=urlencode(pairs))


def code_of(response: tuple[int, dict[str, object]]) -> tuple[int, object]:
    return response[0], response[1].get("Code")


@pytest.fixture(params=["acs3", "rpc"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_captured_request_is_accepted_once_then_replay_is_refused(sts: LocalSts, kind: str) -> None:
    raw = sdk_request(kind)
    status, body = send(sts.endpoint, raw)
    assert status == 200, body
    credentials = body["Credentials"]
    assert isinstance(credentials, dict)
    session = sts.store.by_access_key(str(credentials["AccessKeyId"]))
    assert session is not None and session.session_policy == json.loads(POLICY_WITH_SPACE)
    assert code_of(send(sts.endpoint, raw)) == (400, "SignatureNonceUsed")


def test_tampered_signature(sts: LocalSts, kind: str) -> None:
    raw = sdk_request(kind)
    if kind == "acs3":
        auth = raw.headers["Authorization"]
        flipped = auth[:-1] + ("0" if auth[-1] != "0" else "1")
        forged = replace(raw, headers={**raw.headers, "Authorization": flipped})
    else:
        signature = dict(parse_qsl(raw.query))["Signature"]
        forged = with_query(raw, Signature=("A" if signature[0] != "A" else "B") + signature[1:])
    assert code_of(send(sts.endpoint, forged)) == (400, "SignatureDoesNotMatch")
    # The genuine request still works: a forged attempt does not burn the nonce.
    assert send(sts.endpoint, raw)[0] == 200


def test_tampered_parameter(sts: LocalSts, kind: str) -> None:
    raw = sdk_request(kind)
    forged = with_query(raw, RoleSessionName="mallory")
    assert code_of(send(sts.endpoint, forged)) == (400, "SignatureDoesNotMatch")


def test_tampered_body_hash(sts: LocalSts) -> None:
    raw = sdk_request("acs3")
    forged = replace(
        raw, body=b"RoleArn=x", headers={**raw.headers, "Content-Type": "application/x-www-form-urlencoded"}
    )
    assert code_of(send(sts.endpoint, forged)) == (400, "SignatureDoesNotMatch")


def test_unsigned_acs_header_is_refused(sts: LocalSts) -> None:
    raw = sdk_request("acs3")
    forged = replace(raw, headers={**raw.headers, "x-acs-security-token": "CAISsmuggled"})
    assert code_of(send(sts.endpoint, forged)) == (400, "IncompleteSignature")


@pytest.mark.parametrize(
    ("skew", "accepted"),
    [(timedelta(minutes=16), False), (timedelta(minutes=-16), False), (timedelta(minutes=10), True)],
)
def test_timestamp_skew(tmp_path: Path, kind: str, skew: timedelta, accepted: bool) -> None:
    clock = ShiftedClock()
    clock.offset = skew
    local, server = start_sts(tmp_path, clock)
    try:
        client = local.client(kind)
        if accepted:
            client.assume_role(RoleArn=READER, RoleSessionName="alice")
        else:
            with pytest.raises(StsCallError) as info:
                client.assume_role(RoleArn=READER, RoleSessionName="alice")
            assert (info.value.status, info.value.code) == (400, "InvalidTimeStamp.Expired")
    finally:
        server.shutdown()
        server.server_close()
        local.store.close()


def test_malformed_timestamp(sts: LocalSts, monkeypatch: pytest.MonkeyPatch) -> None:
    from aliyunsdkcore.utils import parameter_helper

    # The SDK signs whatever timestamp it is given, so the signature is valid and the format rule decides.
    monkeypatch.setattr(parameter_helper, "get_iso_8061_date", lambda: "yesterday")
    with pytest.raises(StsCallError) as info:
        sts.client("rpc").caller_identity()
    assert (info.value.status, info.value.code) == (400, "InvalidTimeStamp.Format")


def test_sts_caller_headers_are_verified(sts: LocalSts) -> None:
    creds = credentials_of(sts.client("acs3").assume_role(RoleArn=READER, RoleSessionName="bob"))
    raw = sdk_request("acs3", creds)
    assert raw.headers["x-acs-security-token"] == creds.security_token
    assert raw.headers["x-acs-accesskey-id"] == creds.access_key_id
    # Signature and token pass; the reader role itself may not assume roles.
    assert code_of(send(sts.endpoint, raw)) == (403, "NoPermission")
    swapped = replace(raw, headers={**raw.headers, "x-acs-security-token": raw.headers["x-acs-security-token"][:-4]})
    assert code_of(send(sts.endpoint, swapped)) == (400, "SignatureDoesNotMatch")


def test_no_secrets_in_logs(sts: LocalSts, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = credentials_of(sts.client(kind).assume_role(RoleArn=READER, RoleSessionName="bob"))
    client = sts.client(kind, creds)
    client.caller_identity()
    with pytest.raises(StsCallError):
        sts.client(kind, Credentials(creds.access_key_id, "wrong", creds.security_token)).caller_identity()
    # Only our own records: aliyunsdkcore itself logs request parameters at DEBUG.
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in caplog.records if r.name.startswith("local"))
    assert "sts" in text  # the emulator did log these requests
    assert creds.security_token is not None
    for secret in (ROOT_CREDS.access_key_secret, creds.access_key_secret, creds.security_token[:40]):
        assert secret not in text


def test_session_repr_hides_secrets(sts: LocalSts) -> None:
    creds = credentials_of(
        sts.client("rpc").assume_role(RoleArn=READER, RoleSessionName="bob", Policy=POLICY_WITH_SPACE)
    )
    session = sts.store.by_access_key(creds.access_key_id)
    assert session is not None
    text = repr(session) + str(session)
    assert creds.access_key_id in text
    assert creds.access_key_secret not in text and (creds.security_token or "")[:20] not in text
