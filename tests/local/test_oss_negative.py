"""Requests the emulator must refuse, each with OSS's status, code and message."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import oss2
import pytest

from tests.local.helpers import send
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Env

POLICY_DENIED = "Access denied by authorizer's policy."


def root_bucket(env: Env, v4: bool = True, bucket: str = BUCKET) -> oss2.Bucket:
    auth = oss2.AuthV4(ROOT_AK, ROOT_SECRET) if v4 else oss2.Auth(ROOT_AK, ROOT_SECRET)
    return oss2.Bucket(auth, env.endpoint, bucket, region=REGION)


def sts_bucket(env: Env, session, v4: bool = True) -> oss2.Bucket:
    version = oss2.AUTH_VERSION_4 if v4 else oss2.AUTH_VERSION_1
    auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                        auth_version=version)
    return oss2.Bucket(auth, env.endpoint, BUCKET, region=REGION)


@pytest.fixture
def seeded(env: Env) -> Env:
    bucket = root_bucket(env)
    for key in ("a.txt", "users/alice/a.txt", "users/bob/b.txt", "forbidden/x.txt"):
        bucket.put_object(key, b"content of " + key.encode())
    return env


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_tampered_url_signature(seeded: Env, v4: bool) -> None:
    url = root_bucket(seeded, v4).sign_url("GET", "a.txt", 300)
    field = "x-oss-signature=" if v4 else "Signature="
    tampered = re.sub(field + r"([0-9a-zA-Z%])", lambda m: field + ("0" if m.group(1) != "0" else "1"), url)
    assert tampered != url
    answer = send("GET", tampered)
    assert (answer.status, answer.code) == (403, "SignatureDoesNotMatch")
    assert answer.error_field("StringToSign")
    assert answer.error_field("Message").startswith("The request signature we calculated does not match")
    # a tampered key (resource) also fails
    assert send("GET", url.replace("a.txt", "b.txt", 1)).code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_wrong_secret(seeded: Env, v4: bool) -> None:
    auth = oss2.AuthV4(ROOT_AK, "not-the-secret") if v4 else oss2.Auth(ROOT_AK, "not-the-secret")
    bucket = oss2.Bucket(auth, seeded.endpoint, BUCKET, region=REGION)
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "SignatureDoesNotMatch")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.head_object("a.txt")  # HEAD: the error travels base64-encoded in x-oss-err
    assert raised.value.code == "SignatureDoesNotMatch"


def test_head_error_has_no_body_and_x_oss_err(seeded: Env) -> None:
    url = root_bucket(seeded).sign_url("HEAD", "missing.txt", 300)
    answer = send("HEAD", url)
    assert answer.status == 404
    assert answer.body == b""
    error = ET.fromstring(base64.b64decode(answer.headers["x-oss-err"]))
    assert error.findtext("Code") == "NoSuchKey"


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_expired_url(seeded: Env, v4: bool) -> None:
    url = root_bucket(seeded, v4).sign_url("GET", "a.txt", 60)
    assert send("GET", url).status == 200
    seeded.clock.offset = 61 + (0 if not v4 else 1)
    answer = send("GET", url)
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert answer.error_field("Message") == "Request has expired."
    assert answer.error_field("Expires") and answer.error_field("ServerTime")


def test_v4_url_longer_than_seven_days(seeded: Env) -> None:
    # oss2 emits x-oss-expires=691200 for 8 days without complaint; the service refuses it.
    url = root_bucket(seeded).sign_url("GET", "a.txt", 8 * 86400)
    assert "x-oss-expires=691200" in url
    answer = send("GET", url)
    assert (answer.status, answer.code) == (400, "InvalidArgument")
    assert "604800" in answer.error_field("Message")
    assert send("GET", root_bucket(seeded).sign_url("GET", "a.txt", 604800)).status == 200


def test_v4_url_dated_in_the_future(seeded: Env) -> None:
    seeded.clock.offset = -20 * 60  # server 20 min behind the signer: x-oss-date is too far ahead
    answer = send("GET", root_bucket(seeded).sign_url("GET", "a.txt", 3600))
    assert (answer.status, answer.code) == (403, "RequestTimeTooSkewed")


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
@pytest.mark.parametrize("offset", [16 * 60, -16 * 60])
def test_skewed_request_date(seeded: Env, v4: bool, offset: int) -> None:
    seeded.clock.offset = offset
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        root_bucket(seeded, v4).get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "RequestTimeTooSkewed")
    seeded.clock.offset = offset / 2  # within 15 minutes: accepted
    assert root_bucket(seeded, v4).get_object("a.txt").read() == b"content of a.txt"


def test_unknown_access_key(seeded: Env) -> None:
    bucket = oss2.Bucket(oss2.AuthV4("LTAInobody", "x"), seeded.endpoint, BUCKET, region=REGION)
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_unknown_security_token(seeded: Env, v4: bool) -> None:
    auth = oss2.StsAuth("STS.unknownKey", "secret", "made-up-token", auth_version="v4" if v4 else "v1")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        oss2.Bucket(auth, seeded.endpoint, BUCKET, region=REGION).get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "InvalidSecurityToken")


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_expired_security_token(seeded: Env, v4: bool) -> None:
    session = seeded.session(duration=900)
    bucket = sts_bucket(seeded, session, v4)
    url = bucket.sign_url("GET", "a.txt", 3000)
    assert bucket.get_object("a.txt").read() == b"content of a.txt"
    seeded.clock.offset = 901  # the header form re-signs with the frozen-free client clock: skew < 15 min
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "SecurityTokenExpired")
    # a URL valid for longer than its token dies with the token
    assert send("GET", url).code == "SecurityTokenExpired"


def test_access_key_and_token_mismatch(seeded: Env) -> None:
    first, second = seeded.session(name="one"), seeded.session(name="two")
    auth = oss2.StsAuth(first.access_key_id, first.access_key_secret, second.security_token, auth_version="v4")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        oss2.Bucket(auth, seeded.endpoint, BUCKET, region=REGION).get_object("a.txt")
    assert (raised.value.status, raised.value.code) == (403, "AccessKeyIdAndSecurityTokenNotMatch")
    # an STS key without its token is not a known AccessKey
    no_token = oss2.Bucket(oss2.AuthV4(first.access_key_id, first.access_key_secret), seeded.endpoint, BUCKET,
                           region=REGION)
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        no_token.get_object("a.txt")
    assert raised.value.code == "InvalidAccessKeyId"


def alice_policy() -> dict:
    return {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"],
         "Resource": [f"acs:oss:*:*:{BUCKET}/users/alice/*"]},
        {"Effect": "Allow", "Action": ["oss:ListObjects"], "Resource": [f"acs:oss:*:*:{BUCKET}"],
         "Condition": {"StringLike": {"oss:Prefix": ["users/alice/*"]}}},
    ]}


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_prefix_scoped_session_policy(seeded: Env, v4: bool) -> None:
    bucket = sts_bucket(seeded, seeded.session(alice_policy()), v4)
    assert bucket.get_object("users/alice/a.txt").read() == b"content of users/alice/a.txt"
    bucket.put_object("users/alice/new.txt", b"ok")
    assert [o.key for o in bucket.list_objects(prefix="users/alice/").object_list] == [
        "users/alice/a.txt", "users/alice/new.txt"]
    for call in (lambda: bucket.get_object("users/bob/b.txt"), lambda: bucket.put_object("users/bob/x", b"x"),
                 lambda: bucket.delete_object("users/alice/a.txt"), lambda: bucket.list_objects(prefix="users/"),
                 lambda: bucket.get_object("a.txt")):
        with pytest.raises(oss2.exceptions.ServerError) as raised:
            call()
        assert (raised.value.status, raised.value.code) == (403, "AccessDenied")
        assert raised.value.message == POLICY_DENIED
    # a URL signed with the scoped credentials is judged by the same policy
    assert send("GET", bucket.sign_url("GET", "users/alice/a.txt", 60)).status == 200
    assert send("GET", bucket.sign_url("GET", "users/bob/b.txt", 60)).code == "AccessDenied"


def test_explicit_deny(seeded: Env) -> None:
    # the role allows oss:* on the bucket but explicitly denies forbidden/*
    bucket = sts_bucket(seeded, seeded.session())
    assert bucket.get_object("a.txt").read() == b"content of a.txt"
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.get_object("forbidden/x.txt")
    assert (raised.value.code, raised.value.message) == ("AccessDenied", POLICY_DENIED)
    # a session policy's own Deny wins over its Allow
    deny_delete = {"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:*"], "Resource": ["acs:oss:*:*:*"]},
        {"Effect": "Deny", "Action": ["oss:DeleteObject"], "Resource": ["acs:oss:*:*:*"]}]}
    scoped = sts_bucket(seeded, seeded.session(deny_delete))
    scoped.put_object("tmp.txt", b"1")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        scoped.delete_object("tmp.txt")
    assert raised.value.code == "AccessDenied"
    with pytest.raises(oss2.exceptions.ServerError):
        scoped.batch_delete_objects(["tmp.txt"])
    # copy needs GetObject on the source
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.copy_object(BUCKET, "forbidden/x.txt", "stolen.txt")
    assert raised.value.code == "AccessDenied"


@pytest.mark.parametrize("v4", [False, True], ids=["v1", "v4"])
def test_source_ip_bound_url(seeded: Env, v4: bool) -> None:
    params = {"x-oss-ac-source-ip": "127.0.0.2", "x-oss-ac-subnet-mask": "32"}
    url = root_bucket(seeded, v4).sign_url("GET", "a.txt", 300, params=params)
    refused = send("GET", url)  # from 127.0.0.1
    assert (refused.status, refused.code) == (403, "AccessDenied")
    allowed = send("GET", url, source_ip="127.0.0.2")
    assert (allowed.status, allowed.body) == (200, b"content of a.txt")
    # the binding is signed: dropping it breaks the signature
    stripped = re.sub(r"&?x-oss-ac-s[a-z-]+=[^&]*", "", url)
    assert send("GET", stripped).code == "SignatureDoesNotMatch"
    # a /24 binding admits the whole subnet
    wide = root_bucket(seeded, v4).sign_url("GET", "a.txt", 300, params={"x-oss-ac-source-ip": "127.0.0.0",
                                                                         "x-oss-ac-subnet-mask": "24"})
    assert send("GET", wide).status == 200


def test_url_signature_and_authorization_header_together(seeded: Env) -> None:
    url = root_bucket(seeded).sign_url("GET", "a.txt", 300)
    answer = send("GET", url, headers={"Authorization": "OSS LTAI:abc"})
    assert (answer.status, answer.code) == (400, "InvalidArgument")


def test_anonymous_requests(seeded: Env) -> None:
    answer = send("GET", f"{seeded.endpoint}/{BUCKET}/a.txt")
    assert (answer.status, answer.code) == (403, "AccessDenied")
    assert send("GET", f"{seeded.endpoint}/{BUCKET}/").code == "AccessDenied"
    public = root_bucket(seeded, bucket="public")
    public.put_object("open.txt", b"hello")
    assert send("GET", f"{seeded.endpoint}/public/open.txt").body == b"hello"
    assert send("GET", f"{seeded.endpoint}/public/?prefix=o").status == 200
    assert send("PUT", f"{seeded.endpoint}/public/new.txt", body=b"x").code == "AccessDenied"
    assert send("DELETE", f"{seeded.endpoint}/public/open.txt").code == "AccessDenied"


def test_malformed_authorization(seeded: Env) -> None:
    for value in ("OSS nocolon", "OSS4-HMAC-SHA256 Credential", "Bearer x",
                  "OSS4-HMAC-SHA256 Credential=ak/2023/cn-hangzhou/oss/aliyun_v4_request,Signature=00"):
        answer = send("GET", f"{seeded.endpoint}/{BUCKET}/a.txt", headers={"Authorization": value})
        assert answer.status in (400, 403), value
        assert answer.code in ("InvalidArgument", "InvalidAccessKeyId", "AccessDenied"), value


def test_wrong_region_in_v4_credential(seeded: Env) -> None:
    bucket = oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), seeded.endpoint, BUCKET, region="cn-beijing")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.get_object("a.txt")
    assert raised.value.message == "The signing region in credential is invalid."
