"""Issue 4's proof, end to end through the gateway running template.yml: a third party gets temporary
credentials from /sts and uses them with unmodified OSS SDKs; the emulator enforces the session policy."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import oss2
import pytest

from local.up import BUCKET, JWT_ISSUER, REGION, caller_headers, demo_jwt

NODE_SUITE = Path(__file__).resolve().parents[1] / "local" / "node"


def post_sts(stack, body=None, headers=None):
    payload = json.dumps(body or {}).encode()
    request = urllib.request.Request(f"{stack.gateway.url}/sts", data=payload, method="POST",
                                     headers={"content-type": "application/json",
                                              **(caller_headers(stack) if headers is None else headers)})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def sts_bucket(stack, creds):
    auth = oss2.StsAuth(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"], auth_version="v4")
    return oss2.Bucket(auth, f"http://{stack.cloud.oss_endpoint}", BUCKET, region=REGION)


def test_vended_credentials_work_with_oss2_inside_the_scope_only(local_stack):
    status, headers, creds = post_sts(local_stack, {"actions": ["read", "list"]})
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert {"AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"} <= set(creds)
    assert creds["AccessKeyId"].startswith("STS.") and creds["Prefix"] == "exampledir/"
    bucket = sts_bucket(local_stack, creds)
    assert bucket.get_object("exampledir/exampleobject.txt").read() == b"Hello from exampledir/exampleobject.txt.\n"
    keys = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="exampledir/")]
    assert "exampledir/a b+c.txt" in keys
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.get_object("exampleobject.txt")  # outside the scope
    with pytest.raises(oss2.exceptions.AccessDenied):
        list(oss2.ObjectIteratorV2(bucket, prefix=""))  # listing outside the scope
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("exampledir/new.txt", b"x")  # write was not asked for


def test_read_only_credentials_cannot_list_and_narrowed_prefix_holds(local_stack):
    root = oss2.Bucket(oss2.AuthV4(local_stack.secrets.root_access_key_id, local_stack.secrets.root_access_key_secret),
                       f"http://{local_stack.cloud.oss_endpoint}", BUCKET, region=REGION)
    root.put_object("exampledir/sub/inner.txt", b"inner")
    status, _, creds = post_sts(local_stack, {"actions": ["read"], "prefix": "sub/"})
    assert status == 200 and creds["Prefix"] == "exampledir/sub/" and creds["Actions"] == ["read"]
    bucket = sts_bucket(local_stack, creds)
    assert bucket.get_object("exampledir/sub/inner.txt").read() == b"inner"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.get_object("exampledir/exampleobject.txt")
    with pytest.raises(oss2.exceptions.AccessDenied):
        list(oss2.ObjectIteratorV2(bucket, prefix="exampledir/sub/"))


def test_write_when_asked_and_enabled(local_stack):
    status, _, creds = post_sts(local_stack, {"actions": ["read", "write"], "prefix": "uploads/"})
    assert status == 200, creds
    bucket = sts_bucket(local_stack, creds)
    bucket.put_object("exampledir/uploads/from-partner.txt", b"partner data")
    assert bucket.get_object("exampledir/uploads/from-partner.txt").read() == b"partner data"
    with pytest.raises(oss2.exceptions.AccessDenied):
        bucket.put_object("exampledir/elsewhere.txt", b"x")


def test_expired_token_is_refused_by_the_emulator(make_stack):
    offset = {"seconds": 0}
    stack = make_stack(clock=lambda: time.time() + offset["seconds"])
    status, _, creds = post_sts(stack, {"duration": 900})
    assert status == 200
    bucket = sts_bucket(stack, creds)
    assert bucket.get_object("exampledir/exampleobject.txt").read()
    offset["seconds"] = 901
    with pytest.raises(oss2.exceptions.OssError) as excinfo:
        bucket.get_object("exampledir/exampleobject.txt")
    assert excinfo.value.code == "SecurityTokenExpired"


def test_bad_callers_get_401_and_no_credentials_are_issued(make_stack):
    stack = make_stack(auth="jwt")
    audience = stack.template.parameters["JwtAudience"]
    good = demo_jwt(stack.secrets.jwt_secret, issuer=JWT_ISSUER, audience=audience)
    now = int(time.time())
    claims = {"sub": "demo", "iss": JWT_ISSUER, "aud": audience, "iat": now, "exp": now + 600}
    bad_tokens = {
        "bad signature": jwt.encode(claims, "x" * 32, algorithm="HS256"),
        "wrong audience": jwt.encode({**claims, "aud": "someone-else"}, stack.secrets.jwt_secret, algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 3600, "iat": now - 7200}, stack.secrets.jwt_secret,
                              algorithm="HS256"),
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "not a jwt": "hello",
    }
    with stack.gateway.captured_logs() as records:
        for name, token in bad_tokens.items():
            status, headers, body = post_sts(stack, headers={"Authorization": f"Bearer {token}"})
            assert status == 401, name
            assert any(h.lower() == "www-authenticate" for h in headers), name
            assert body["code"] and body["message"] and body["requestId"], name
            assert token not in json.dumps(body), name
        status, _, _ = post_sts(stack, headers={})
        assert status == 401
        # The instance's log lines arrive through a pipe: wait for the six access lines (each is written after
        # anything its request logged, so an issuance line would be in by then), not for a guessed time.
        deadline = time.monotonic() + 10
        while sum(r.get("event") == "http.access" and r.get("status") == 401 for r in records) < len(bad_tokens) + 1:
            assert time.monotonic() < deadline, "the access lines of the refused calls never arrived"
            time.sleep(0.01)
    assert [r for r in records if r.get("event") == "token.issued"] == []
    status, _, creds = post_sts(stack, headers={"Authorization": f"Bearer {good}"})
    assert status == 200 and creds["Prefix"] == "users/demo/"
    assert sts_bucket(stack, creds).get_object("users/demo/hello.txt").read().startswith(b"Hello, demo user")


@pytest.mark.skipif(shutil.which("node") is None or not (NODE_SUITE / "node_modules" / "ali-oss").exists(),
                    reason="ali-oss is installed by `make test` (npm ci in tests/local/node)")
def test_ali_oss_refresh_sts_token_against_our_endpoint(local_stack):
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "GATEWAY": local_stack.gateway.url,
           "API_KEY": local_stack.secrets.api_key, "ENDPOINT": f"http://localhost:{local_stack.cloud.oss_endpoint.split(':')[1]}"}
    completed = subprocess.run(["node", str(Path(__file__).parent / "node" / "sts_refresh.js")], env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["inside"] == "Hello from exampledir/exampleobject.txt.\n"
    assert result["outside"] == "403 AccessDenied"
    assert "exampledir/exampleobject.txt" in result["listed"]
    assert result["refreshes"] >= 1
