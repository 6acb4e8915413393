"""The answers the official SDKs rely on (issue 11 "wrong answers"), each as the OSS API reference states it.

- Error order: bucket, then credentials, then signature, then permission, then object
  (https://www.alibabacloud.com/help/en/oss/developer-reference/error-codes).
- HEAD ?objectMeta carries Content-Length (GetObjectMeta reference).
- x-oss-meta-* in UTF-8 is signed and returned byte for byte (PutObject reference: user metadata).
- CopyObject conditions: if-none-match / if-modified-since unmet -> 304; if-match / if-unmodified-since -> 412.
- DeleteMultipleObjects accepts keys with control characters; a wrong Content-MD5 is InvalidDigest.
- ListMultipartUploads and ListBuckets (GetService) page with their markers; encoding-type=url encodes
  NextContinuationToken (ListObjectsV2 reference); CORS AllowedHeader lower-cased, ResponseVary applied;
  GetBucketInfo carries Comment.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate
from urllib.parse import quote, unquote

import alibabacloud_oss_v2 as oss
import oss2
import pytest

from tests.local.helpers import send
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Env

V = ["v1", "v4"]


def root(env: Env, version: str = "v4", bucket: str = BUCKET) -> oss2.Bucket:
    auth = oss2.Auth(ROOT_AK, ROOT_SECRET) if version == "v1" else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    return oss2.Bucket(auth, env.endpoint, bucket, region=REGION)


def failure(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as raised:
        call()
    return raised.value


def v2_client(env: Env, ak: str, secret: str, token: str | None = None, version: str = "v4") -> oss.Client:
    config = oss.config.load_default()
    config.credentials_provider = oss.credentials.StaticCredentialsProvider(ak, secret, token)
    config.region, config.endpoint, config.use_path_style = REGION, env.endpoint, True
    config.signature_version = version
    config.retry_max_attempts = 1
    return oss.Client(config)


# -- error precedence ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", V)
def test_missing_bucket_is_404_before_any_credential_check(shared_env: Env, version: str) -> None:
    auth = oss2.Auth("LTAInobody", "x") if version == "v1" else oss2.AuthV4("LTAInobody", "x")
    missing = oss2.Bucket(auth, shared_env.endpoint, "no-such-bucket-here", region=REGION)
    error = failure(lambda: missing.get_object("k"))
    assert (error.status, error.code) == (404, "NoSuchBucket")
    anonymous = send("GET", f"{shared_env.endpoint}/no-such-bucket-here/k")
    assert (anonymous.status, anonymous.code) == (404, "NoSuchBucket")
    existing = oss2.Bucket(auth, shared_env.endpoint, BUCKET, region=REGION)
    error = failure(lambda: existing.get_object("k"))
    assert (error.status, error.code) == (403, "InvalidAccessKeyId")


@pytest.mark.parametrize("version", V)
def test_v2_is_bucket_exist_with_a_wrong_key(shared_env: Env, version: str) -> None:
    client = v2_client(shared_env, "LTAInobody", "wrong", version=version)
    assert client.is_bucket_exist("no-such-bucket-here") is False
    assert client.is_bucket_exist(BUCKET) is True  # 403 on an existing bucket: it exists


@pytest.mark.parametrize("version", V)
def test_security_token_errors(shared_env: Env, version: str) -> None:
    first, second = shared_env.session(name="first"), shared_env.session(name="second")

    def code_for(ak: str, secret: str, token: str) -> tuple[int, str]:
        bucket = oss2.Bucket(oss2.StsAuth(ak, secret, token, auth_version=version), shared_env.endpoint, BUCKET,
                             region=REGION)
        error = failure(lambda: bucket.get_object("k"))
        return error.status, error.code

    # a token that was never issued, with a real session key: InvalidSecurityToken
    assert code_for(first.access_key_id, first.access_key_secret, "CAISnot-a-real-token") == (
        403, "InvalidSecurityToken")
    # a real token with another session's key, or with a root key: AccessKeyIdAndSecurityTokenNotMatch
    assert code_for(first.access_key_id, first.access_key_secret, second.security_token) == (
        403, "AccessKeyIdAndSecurityTokenNotMatch")
    assert code_for(ROOT_AK, ROOT_SECRET, second.security_token) == (403, "AccessKeyIdAndSecurityTokenNotMatch")


def test_signature_is_checked_before_permission_and_permission_before_the_object(shared_env: Env) -> None:
    session = shared_env.session({"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [f"acs:oss:*:*:{BUCKET}/mine/*"]}]})
    wrong_secret = oss2.Bucket(oss2.StsAuth(session.access_key_id, "wrong", session.security_token,
                                            auth_version="v4"), shared_env.endpoint, BUCKET, region=REGION)
    assert failure(lambda: wrong_secret.get_object("theirs/missing")).code == "SignatureDoesNotMatch"
    right = oss2.Bucket(oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                                     auth_version="v4"), shared_env.endpoint, BUCKET, region=REGION)
    assert failure(lambda: right.get_object("theirs/missing")).code == "AccessDenied"  # not NoSuchKey
    assert failure(lambda: right.get_object("mine/missing")).code == "NoSuchKey"


# -- HEAD ?objectMeta, UTF-8 metadata ----------------------------------------------------------
@pytest.mark.parametrize("version", V)
def test_object_meta_has_the_content_length(shared_env: Env, version: str) -> None:
    bucket = root(shared_env, version)
    bucket.put_object("meta/size", b"x" * 3000)
    meta = bucket.get_object_meta("meta/size")
    assert meta.content_length == 3000
    assert meta.headers["x-oss-hash-crc64ecma"] == bucket.head_object("meta/size").headers["x-oss-hash-crc64ecma"]


@pytest.mark.parametrize("version", V)
def test_utf8_metadata_is_signed_and_returned_unchanged(shared_env: Env, version: str) -> None:
    """oss2 signs the UTF-8 bytes of a str header; the request then carries those bytes (http.client
    itself cannot send them from a str, so the signed request is sent with bytes header values)."""
    title = "报告 Ünïcode"
    key = f"meta/utf8-{version}"
    auth = oss2.Auth(ROOT_AK, ROOT_SECRET) if version == "v1" else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    headers = {"x-oss-meta-title": title, "Content-Type": "text/plain",
               "Date": formatdate(usegmt=True)}
    request = oss2.http.Request("PUT", f"{shared_env.endpoint}/{BUCKET}/{key}", data=b"body", headers=headers,
                                region=REGION, product="oss")
    auth._sign_request(request, BUCKET, key)
    host, port = shared_env.cloud.oss_endpoint.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("PUT", f"/{BUCKET}/{quote(key)}", skip_host=True)
    connection.putheader("Host", shared_env.cloud.oss_endpoint)
    for name, value in request.headers.items():
        if name.lower() not in ("host", "content-length") and value is not None:
            connection.putheader(name, str(value).encode())
    connection.putheader("Content-Length", "4")
    connection.endheaders(b"body")
    response = connection.getresponse()
    assert response.status == 200, response.read()
    connection.close()
    returned = root(shared_env, version).head_object(key).headers["x-oss-meta-title"]
    assert returned.encode("latin-1").decode() == title  # the bytes sent come back unchanged
    request.headers["x-oss-meta-title"] = "tampered"  # a changed signed header breaks the signature
    answer = send("PUT", f"{shared_env.endpoint}/{BUCKET}/{key}", body=b"body", headers={
        k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length") and v is not None})
    assert answer.code == "SignatureDoesNotMatch"


# -- copy conditions ---------------------------------------------------------------------------
@pytest.mark.parametrize("version", V)
def test_copy_conditions_304_and_412(shared_env: Env, version: str) -> None:
    bucket = root(shared_env, version)
    etag = bucket.put_object("copy/src", b"source").etag
    later = formatdate(time.time() + 3600, usegmt=True)
    earlier = formatdate(time.time() - 3600, usegmt=True)
    cases = {
        "x-oss-copy-source-if-none-match": (f'"{etag}"', 304),
        "x-oss-copy-source-if-modified-since": (later, 304),
        "x-oss-copy-source-if-match": ('"0000"', 412),
        "x-oss-copy-source-if-unmodified-since": (earlier, 412),
    }
    for header, (value, status) in cases.items():
        error = failure(lambda h=header, v=value: bucket.copy_object(BUCKET, "copy/src", "copy/dst", headers={h: v}))
        assert error.status == status, header
    upload_id = bucket.init_multipart_upload("copy/mp").upload_id
    for header, (value, status) in cases.items():
        error = failure(lambda h=header, v=value: bucket.upload_part_copy(
            BUCKET, "copy/src", (0, 5), "copy/mp", upload_id, 1, headers={h: v}))
        assert error.status == status, header
    bucket.copy_object(BUCKET, "copy/src", "copy/dst", headers={"x-oss-copy-source-if-match": f'"{etag}"'})
    assert bucket.get_object("copy/dst").read() == b"source"


# -- DeleteMultipleObjects --------------------------------------------------------------------
def test_delete_multiple_accepts_control_characters(shared_env: Env) -> None:
    bucket = root(shared_env)
    keys = ["ctl/form\x0cfeed", "ctl/bell\x07", "ctl/plain"]
    for key in keys:
        bucket.put_object(key, b"x")
    deleted = bucket.batch_delete_objects(keys[1:])  # oss2 sends the raw bytes
    assert sorted(deleted.deleted_keys) == sorted(keys[1:])
    body = (b'<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>false</Quiet>'
            b"<Object><Key>ctl/form&#12;feed</Key></Object></Delete>")  # as an XML character reference
    result = bucket._Bucket__do_bucket("POST", params={"delete": "", "encoding-type": "url"}, data=body,
                                       headers={"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()})
    assert ET.fromstring(result.read()).findtext("Deleted/Key") == quote("ctl/form\x0cfeed", safe="")
    assert not any(bucket.object_exists(key) for key in keys)


# -- ListMultipartUploads, ListBuckets ----------------------------------------------------------
def test_list_multipart_uploads_pages_with_prefix_and_delimiter(shared_env: Env) -> None:
    bucket = root(shared_env)
    keys = ["mpu/a/1", "mpu/a/2", "mpu/b", "mpu/b", "mpu/c/x/1", "mpu/d"]
    ids = [bucket.init_multipart_upload(key).upload_id for key in keys]
    bucket.init_multipart_upload("other-prefix/z")
    listed = [(u.key, u.upload_id) for u in oss2.MultipartUploadIterator(bucket, prefix="mpu/", max_uploads=2)]
    assert listed == sorted(zip(keys, ids, strict=True))
    page = bucket.list_multipart_uploads(prefix="mpu/", delimiter="/", max_uploads=2)
    assert (page.prefix_list, [u.key for u in page.upload_list]) == (["mpu/a/"], ["mpu/b"])
    assert page.is_truncated and page.next_key_marker == "mpu/b"
    rolled = list(oss2.MultipartUploadIterator(bucket, prefix="mpu/", delimiter="/", max_uploads=1))
    assert [x.key for x in rolled] == ["mpu/a/", "mpu/b", "mpu/b", "mpu/c/", "mpu/d"]
    b_uploads = sorted(i for k, i in zip(keys, ids, strict=True) if k == "mpu/b")
    after_first_b = bucket.list_multipart_uploads(prefix="mpu/", key_marker="mpu/b", upload_id_marker=b_uploads[0])
    assert [(u.key, u.upload_id) for u in after_first_b.upload_list][:1] == [("mpu/b", b_uploads[1])]
    after_b = bucket.list_multipart_uploads(prefix="mpu/", key_marker="mpu/b")
    assert [u.key for u in after_b.upload_list] == ["mpu/c/x/1", "mpu/d"]
    for key, upload_id in zip(keys, ids, strict=True):
        bucket.abort_multipart_upload(key, upload_id)


def test_list_buckets_prefix_marker_max_keys(shared_env: Env) -> None:
    service = oss2.Service(oss2.AuthV4(ROOT_AK, ROOT_SECRET), shared_env.endpoint, region=REGION)
    every = [b.name for b in service.list_buckets().buckets]
    assert every == sorted(every) and {"demo", "other", "public"} <= set(every)
    assert [b.name for b in service.list_buckets(prefix="ot").buckets] == ["other"]
    first = service.list_buckets(max_keys=1)
    assert first.is_truncated and [b.name for b in first.buckets] == every[:1] and first.next_marker == every[0]
    assert [b.name for b in oss2.BucketIterator(service, max_keys=1)] == every
    assert [b.name for b in service.list_buckets(marker="demo").buckets] == [n for n in every if n > "demo"]


def test_list_v2_url_encodes_the_next_continuation_token(shared_env: Env) -> None:
    bucket = root(shared_env)
    keys = [f"enc/k{n:02d}" for n in range(5)]  # 7-byte keys: the base64 token ends in "=="
    for key in keys:
        bucket.put_object(key, b"x")
    answer = bucket._Bucket__do_bucket("GET", params={
        "list-type": "2", "prefix": "enc/", "max-keys": "2", "encoding-type": "url"})
    token = ET.fromstring(answer.read()).findtext("NextContinuationToken")
    assert token and "%3D" in token  # URL-encoded, as OSS encodes it
    assert [o.key for o in oss2.ObjectIteratorV2(bucket, prefix="enc/", max_keys=2)] == keys  # oss2 decodes it
    v2 = v2_client(shared_env, ROOT_AK, ROOT_SECRET)
    paginator = v2.list_objects_v2_paginator(limit=2)
    listed = [o.key for page in paginator.iter_page(oss.ListObjectsV2Request(bucket=BUCKET, prefix="enc/"))
              for o in page.contents or []]
    assert listed == keys
    # a client that sends the encoded token back unchanged is refused
    error = failure(lambda: bucket._Bucket__do_bucket("GET", params={
        "list-type": "2", "prefix": "enc/", "continuation-token": token}))
    assert (error.status, error.code) == (400, "InvalidArgument")
    good = bucket._Bucket__do_bucket("GET", params={
        "list-type": "2", "prefix": "enc/", "continuation-token": unquote(token)})
    assert good.status == 200


# -- transport ------------------------------------------------------------------------------------
def test_get_with_content_length_and_no_body_answers_at_once(shared_env: Env) -> None:
    root(shared_env).put_object("wire/nobody", b"x")
    host, port = shared_env.cloud.oss_endpoint.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(f"GET /{BUCKET}/wire/nobody HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n".encode())
        started = time.monotonic()
        answer = conn.recv(65536)
        assert time.monotonic() - started < 3
    assert answer.startswith(b"HTTP/1.1 403 ")  # anonymous on a private bucket, answered without the body


# -- CORS and bucket info ---------------------------------------------------------------------
def test_cors_allowed_header_lower_case_and_response_vary(shared_env: Env) -> None:
    bucket = root(shared_env, bucket="other")
    rule = oss2.models.CorsRule(allowed_origins=["https://a.example"], allowed_methods=["GET"],
                                allowed_headers=["X-Custom-Header"], max_age_seconds=10)
    bucket.put_bucket_cors(oss2.models.BucketCors([rule], response_vary=True))
    stored = bucket.get_bucket_cors()
    assert stored.rules[0].allowed_headers == ["x-custom-header"]
    assert stored.response_vary is True
    bucket.put_object("cors/x", b"x")
    url = bucket.sign_url("GET", "cors/x", 300)
    assert send("GET", url).headers.get("Vary") == "Origin"  # even without Origin
    assert send("GET", url, headers={"Origin": "https://nope.example"}).headers.get("Vary") == "Origin"
    bucket.put_bucket_cors(oss2.models.BucketCors([rule], response_vary=False))
    assert send("GET", url, headers={"Origin": "https://a.example"}).headers.get("Vary") is None
    assert send("GET", url, headers={"Origin": "https://a.example"}).headers.get(
        "Access-Control-Allow-Origin") == "https://a.example"
    bucket.delete_bucket_cors()


def test_bucket_info_has_comment(shared_env: Env) -> None:
    info = ET.fromstring(root(shared_env)._Bucket__do_bucket("GET", params={"bucketInfo": ""}).read())
    assert info.find("Bucket/Comment") is not None
    assert root(shared_env).get_bucket_info().comment == ""


def test_product_client_decodes_the_next_continuation_token(shared_env: Env) -> None:
    """shared/storage.py lists with encoding-type=url: it must decode the token as both SDKs do."""
    from shared.signing import Credentials, Endpoint
    from shared.storage import OssClient

    bucket = root(shared_env)
    keys = [f"prodenc/k{n:02d}" for n in range(7)]  # 11-byte keys: the base64 token ends in "="
    for key in keys:
        bucket.put_object(key, b"x")
    ours = OssClient(credentials=lambda: Credentials(ROOT_AK, ROOT_SECRET), bucket=BUCKET, region=REGION,
                     endpoint=Endpoint.path_style(shared_env.cloud.oss_endpoint))
    first = ours.list_objects_v2("prodenc/", max_keys=3)
    assert first.is_truncated and first.next_continuation_token
    assert "%" not in first.next_continuation_token
    second = ours.list_objects_v2("prodenc/", max_keys=3, continuation_token=first.next_continuation_token)
    assert [o.key for o in first.objects + second.objects] == keys[:6]
    assert [o.key for o in ours.iter_objects("prodenc/")] == keys


@pytest.mark.parametrize("version", V)
def test_bucket_location(shared_env: Env, version: str) -> None:
    assert root(shared_env, version).get_bucket_location().location == f"oss-{REGION}"
    client = v2_client(shared_env, ROOT_AK, ROOT_SECRET, version=version)
    assert client.get_bucket_location(oss.GetBucketLocationRequest(bucket=BUCKET)).location == f"oss-{REGION}"
