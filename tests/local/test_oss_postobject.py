"""PostObject (browser form upload): V1 and V4 policy signatures, conditions, STS, events.

The forms are built here by hand following the OSS PostObject documentation; the ali-oss suite signs
the same kind of form with the SDK's own calculatePostSignature / signPostObjectPolicyV4.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from datetime import datetime, timezone

import oss2
import pytest

from tests.local.helpers import Answer, send
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Env


def encode_policy(conditions: list, expires_in: float = 600) -> str:
    expiration = datetime.fromtimestamp(time.time() + expires_in, tz=timezone.utc)
    document = {"expiration": expiration.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "conditions": conditions}
    return base64.b64encode(json.dumps(document).encode()).decode()


def v1_fields(policy: str, ak: str = ROOT_AK, secret: str = ROOT_SECRET) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), policy.encode(), hashlib.sha1).digest()).decode()
    return {"OSSAccessKeyId": ak, "policy": policy, "Signature": signature}


def v4_fields(policy: str, ak: str = ROOT_AK, secret: str = ROOT_SECRET) -> dict[str, str]:
    now = datetime.now(tz=timezone.utc)
    day = now.strftime("%Y%m%d")
    key = ("aliyun_v4" + secret).encode()
    for part in (day, REGION, "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return {"x-oss-signature-version": "OSS4-HMAC-SHA256",
            "x-oss-credential": f"{ak}/{day}/{REGION}/oss/aliyun_v4_request",
            "x-oss-date": now.strftime("%Y%m%dT%H%M%SZ"), "policy": policy,
            "x-oss-signature": hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()}


def post_form(env: Env, fields: dict[str, str], content: bytes, filename: str = "photo.jpg",
              headers: dict[str, str] | None = None) -> Answer:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return send("POST", f"{env.endpoint}/{BUCKET}", body=b"".join(parts),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}", **(headers or {})})


def root_bucket(env: Env) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), env.endpoint, BUCKET, region=REGION)


@pytest.mark.parametrize("signer", [v1_fields, v4_fields], ids=["v1", "v4"])
def test_post_object_uploads_and_notifies(env: Env, signer) -> None:
    events: list[dict] = []
    env.cloud.subscribe(events.append, bucket=BUCKET, prefix="forms/")
    policy = encode_policy([{"bucket": BUCKET}, ["starts-with", "$key", "forms/"],
                            ["content-length-range", 1, 1024 * 1024]])
    content = os.urandom(300 * 1024) + b"\r\n--not-the-boundary\r\n"  # boundary-like bytes inside the file
    fields = {**signer(policy), "key": "forms/${filename}", "success_action_status": "201",
              "x-oss-meta-uploader": "browser", "Content-Disposition": "inline"}
    answer = post_form(env, fields, content)
    assert answer.status == 201, answer.body
    assert b"<Key>forms/photo.jpg</Key>" in answer.body
    assert answer.headers["ETag"] == f'"{hashlib.md5(content).hexdigest().upper()}"'
    stored = root_bucket(env).get_object("forms/photo.jpg")
    assert stored.read() == content
    assert stored.content_type == "image/jpeg"
    assert stored.headers["x-oss-meta-uploader"] == "browser"
    assert stored.headers["Content-Disposition"] == "inline"
    assert env.cloud.wait_for_events()
    assert [e["events"][0]["eventName"] for e in events] == ["ObjectCreated:PostObject"]
    # the connection stays usable: a default (204) upload right after
    answer = post_form(env, {**signer(policy), "key": "forms/second"}, b"2")
    assert answer.status == 204


def test_post_object_refusals(env: Env) -> None:
    policy = encode_policy([["starts-with", "$key", "forms/"], ["content-length-range", 1, 10]])
    tampered = {**v1_fields(policy), "key": "forms/x"}
    tampered["Signature"] = base64.b64encode(b"0" * 20).decode()
    assert post_form(env, tampered, b"data").code == "SignatureDoesNotMatch"
    wrong_prefix = post_form(env, {**v1_fields(policy), "key": "elsewhere/x"}, b"data")
    assert (wrong_prefix.status, wrong_prefix.code) == (403, "AccessDenied")
    assert "Policy Condition failed" in wrong_prefix.error_field("Message")
    too_big = post_form(env, {**v4_fields(policy), "key": "forms/big"}, b"x" * 11)
    assert (too_big.status, too_big.code) == (400, "EntityTooLarge")
    expired = post_form(env, {**v1_fields(encode_policy([], expires_in=-5)), "key": "forms/late"}, b"x")
    assert (expired.code, expired.error_field("Message")) == ("AccessDenied",
                                                              "Invalid according to Policy: Policy expired.")
    anonymous = post_form(env, {"key": "forms/anon"}, b"x")
    assert (anonymous.status, anonymous.code) == (403, "AccessDenied")
    unknown = post_form(env, {**v1_fields(policy, ak="LTAInobody"), "key": "forms/x"}, b"x")
    assert unknown.code == "InvalidAccessKeyId"
    assert not root_bucket(env).object_exists("forms/big")
    assert list(oss2.ObjectIterator(root_bucket(env), prefix="forms/")) == []


def test_post_object_with_sts_credentials_is_policy_checked(env: Env) -> None:
    scoped = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["oss:PutObject"],
                                             "Resource": [f"acs:oss:*:*:{BUCKET}/inbox/*"]}]}
    session = env.session(scoped)
    policy = encode_policy([["starts-with", "$key", ""]])
    fields = {**v1_fields(policy, session.access_key_id, session.access_key_secret),
              "x-oss-security-token": session.security_token}
    assert post_form(env, {**fields, "key": "inbox/a.txt"}, b"ok").status == 204
    denied = post_form(env, {**fields, "key": "outbox/a.txt"}, b"no")
    assert (denied.code, denied.error_field("Message")) == ("AccessDenied", "Access denied by authorizer's policy.")
