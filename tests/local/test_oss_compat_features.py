"""Features the SDKs use on every transfer: CRC-64/ECMA, AppendObject, EC codes, upload traffic limits,
PutBucketAcl and gzip, driven by oss2 and alibabacloud-oss-v2 (both check x-oss-hash-crc64ecma themselves).

References: AppendObject (https://www.alibabacloud.com/help/en/oss/developer-reference/appendobject),
CRC-64 (https://www.alibabacloud.com/help/en/oss/user-guide/crc-64), error EC
(https://help.aliyun.com/en/oss/user-guide/0003-00000301 and oss-signing.md §7), traffic limits
(https://www.alibabacloud.com/help/en/oss/user-guide/single-connection-bandwidth-throttling), PutBucketAcl,
gzip (https://www.alibabacloud.com/help/faq-detail/39645.html).
"""

from __future__ import annotations

import gzip
import os
import time
from typing import Any

import alibabacloud_oss_v2 as oss
import crcmod
import oss2
import pytest

from tests.local.helpers import send
from tests.local.support import BUCKET, REGION, ROOT_AK, ROOT_SECRET, Env, v2_client

MODES = ["root-v1", "root-v4", "sts-v1", "sts-v4"]
# An independent CRC-64/ECMA (XZ) for the assertions: crcmod's generic engine, the check value of
# "123456789" is 0x995DC9BBDF1939FA (CRC catalogue, CRC-64/XZ).
reference_crc = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def test_reference_crc_is_crc64_xz() -> None:
    assert reference_crc(b"123456789") == 0x995DC9BBDF1939FA


def oss2_bucket(env: Env, mode: str, bucket: str = BUCKET) -> oss2.Bucket:
    v1 = mode.endswith("v1")
    if mode.startswith("root"):
        auth = oss2.Auth(ROOT_AK, ROOT_SECRET) if v1 else oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    else:
        session = env.session()
        auth = oss2.StsAuth(session.access_key_id, session.access_key_secret, session.security_token,
                            auth_version=oss2.AUTH_VERSION_1 if v1 else oss2.AUTH_VERSION_4)
    return oss2.Bucket(auth, env.endpoint, bucket, region=REGION, enable_crc=True)


def raised(kind: type[Exception], call, *args, **kwargs) -> Any:
    with pytest.raises(kind) as caught:
        call(*args, **kwargs)
    return caught.value


def crc_of(headers) -> int:
    return int(headers["x-oss-hash-crc64ecma"])


@pytest.mark.parametrize("mode", MODES)
def test_crc64_on_every_write_and_read(shared_env: Env, mode: str) -> None:
    bucket = oss2_bucket(shared_env, mode)
    base = f"crc/{mode}/"
    body = os.urandom(5000)
    put = bucket.put_object(base + "put", body)  # oss2 raises if the answered CRC differs from its own
    assert crc_of(put.headers) == reference_crc(body)
    assert crc_of(bucket.head_object(base + "put").headers) == reference_crc(body)
    assert bucket.get_object(base + "put").read() == body  # oss2 checks the CRC of what it read
    copy = bucket.copy_object(BUCKET, base + "put", base + "copy")
    assert crc_of(copy.headers) == reference_crc(body)
    parts = [os.urandom(100 * 1024), os.urandom(100 * 1024 + 7), os.urandom(33)]
    upload_id = bucket.init_multipart_upload(base + "mp").upload_id
    infos = []
    for number, data in enumerate(parts, start=1):
        result = bucket.upload_part(base + "mp", upload_id, number, data)
        assert crc_of(result.headers) == reference_crc(data)
        infos.append(oss2.models.PartInfo(number, result.etag, size=len(data), part_crc=result.crc))
    done = bucket.complete_multipart_upload(base + "mp", upload_id, infos)
    assert crc_of(done.headers) == reference_crc(b"".join(parts))  # combined over the parts
    assert crc_of(bucket.head_object(base + "mp").headers) == reference_crc(b"".join(parts))
    # alibabacloud-oss-v2 verifies the CRC of uploads and downloads by default
    client = v2_client(shared_env, mode)
    result = client.put_object(oss.PutObjectRequest(bucket=BUCKET, key=base + "v2", body=body))
    assert int(result.hash_crc64) == reference_crc(body)
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=base + "v2")).body.read() == body


@pytest.mark.parametrize("mode", MODES)
def test_append_object(shared_env: Env, mode: str) -> None:
    bucket = oss2_bucket(shared_env, mode)
    key = f"append/{mode}/log.txt"
    first = bucket.append_object(key, 0, b"hello ", headers={"Content-Type": "text/plain",
                                                              "x-oss-meta-kind": "log"})
    assert first.next_position == 6 and first.crc == reference_crc(b"hello ")
    second = bucket.append_object(key, first.next_position, b"world", init_crc=first.crc)  # oss2 checks the CRC
    assert second.next_position == 11 and second.crc == reference_crc(b"hello world")
    head = bucket.head_object(key)
    assert (head.object_type, head.content_length, head.headers["x-oss-meta-kind"]) == ("Appendable", 11, "log")
    assert bucket.get_object(key).read() == b"hello world"
    stale = raised(oss2.exceptions.PositionNotEqualToLength, bucket.append_object, key, 6, b"again")
    assert (stale.status, stale.headers["x-oss-next-append-position"]) == (409, "11")
    bucket.put_object(f"append/{mode}/normal", b"x")
    not_appendable = raised(oss2.exceptions.ObjectNotAppendable, bucket.append_object,
                                   f"append/{mode}/normal", 1, b"y")
    assert not_appendable.status == 409
    client = v2_client(shared_env, mode)
    result = client.append_object(oss.AppendObjectRequest(bucket=BUCKET, key=key, position=11, body=b"!"))
    assert result.next_position == 12
    assert client.get_object(oss.GetObjectRequest(bucket=BUCKET, key=key)).body.read() == b"hello world!"


def test_error_bodies_and_headers_carry_the_documented_ec(shared_env: Env) -> None:
    root = oss2_bucket(shared_env, "root-v4")
    missing = raised(oss2.exceptions.NoSuchKey, root.get_object, "ec/missing")
    assert missing.ec == "0026-00000001" and missing.headers["x-oss-ec"] == "0026-00000001"
    missing_bucket = raised(oss2.exceptions.NoSuchBucket,
                            oss2_bucket(shared_env, "root-v4", "nope-x").get_object, "k")
    assert missing_bucket.ec == "0015-00000101"
    denied = oss2.Bucket(oss2.StsAuth(*(lambda s: (s.access_key_id, s.access_key_secret, s.security_token))(
        shared_env.session({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": [f"acs:oss:*:*:{BUCKET}/mine/*"]}]})),
        auth_version="v4"), shared_env.endpoint, BUCKET, region=REGION)
    assert raised(oss2.exceptions.AccessDenied, denied.get_object, "theirs").ec == "0003-00000301"
    bad_token = oss2.Bucket(oss2.StsAuth("STS.x", "y", "CAISnope", auth_version="v4"), shared_env.endpoint, BUCKET,
                            region=REGION)
    assert raised(oss2.exceptions.ServerError, bad_token.get_object, "k").ec == "0002-00000006"
    anonymous = send("GET", f"{shared_env.endpoint}/{BUCKET}/k")
    assert anonymous.error_field("EC") == "0003-00000001" and anonymous.headers["x-oss-ec"] == "0003-00000001"
    head = raised(oss2.exceptions.NotFound, root.head_object, "ec/missing")
    assert head.headers["x-oss-ec"] == "0026-00000001"  # HEAD: no body, the EC is still in the header


def test_traffic_limit_applies_to_uploads(shared_env: Env) -> None:
    bucket = oss2_bucket(shared_env, "root-v4")
    body = os.urandom(250 * 1024)
    started = time.monotonic()
    bucket.put_object("limit/slow", body, headers={"x-oss-traffic-limit": str(819200)})  # 100 KiB/s
    assert time.monotonic() - started >= 2.0
    url = bucket.sign_url("PUT", "limit/presigned", 300, params={"x-oss-traffic-limit": str(819200)})
    started = time.monotonic()
    assert send("PUT", url, body=body).status == 200
    assert time.monotonic() - started >= 2.0
    upload_id = bucket.init_multipart_upload("limit/mp").upload_id
    started = time.monotonic()
    bucket.upload_part("limit/mp", upload_id, 1, body, headers={"x-oss-traffic-limit": str(819200)})
    assert time.monotonic() - started >= 2.0
    bucket.abort_multipart_upload("limit/mp", upload_id)
    error = raised(oss2.exceptions.ServerError, bucket.put_object, "limit/bad", b"x",
                          headers={"x-oss-traffic-limit": "100"})
    assert (error.status, error.code) == (400, "InvalidArgument")


def test_put_bucket_acl(shared_env: Env) -> None:
    bucket = oss2_bucket(shared_env, "root-v1", "other")
    bucket.put_object("acl/x", b"public now")
    assert send("GET", f"{shared_env.endpoint}/other/acl/x").status == 403
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PUBLIC_READ)
    assert bucket.get_bucket_acl().acl == "public-read"
    assert send("GET", f"{shared_env.endpoint}/other/acl/x").body == b"public now"
    bucket.put_bucket_acl(oss2.BUCKET_ACL_PRIVATE)
    assert bucket.get_bucket_acl().acl == "private"
    assert send("GET", f"{shared_env.endpoint}/other/acl/x").status == 403
    error = raised(oss2.exceptions.ServerError, bucket.put_bucket_acl, "everyone")
    assert error.status == 400


def test_gzip_on_text_objects(shared_env: Env) -> None:
    bucket = oss2_bucket(shared_env, "root-v4")
    text = b"line of text\n" * 200
    bucket.put_object("gz/a.txt", text, headers={"Content-Type": "text/plain"})
    bucket.put_object("gz/small.txt", b"tiny", headers={"Content-Type": "text/plain"})
    bucket.put_object("gz/a.bin", text, headers={"Content-Type": "application/octet-stream"})
    url = bucket.sign_url("GET", "gz/a.txt", 300)
    answer = send("GET", url, headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip" and answer.headers["Vary"] == "Accept-Encoding"
    assert "ETag" not in answer.headers and "Accept-Ranges" not in answer.headers
    assert "Content-Length" not in answer.headers and answer.headers["Transfer-Encoding"] == "chunked"
    assert gzip.decompress(answer.body) == text
    assert crc_of(answer.headers) == reference_crc(text)
    head = send("HEAD", bucket.sign_url("HEAD", "gz/a.txt", 300), headers={"Accept-Encoding": "gzip"})
    assert head.headers["Content-Encoding"] == "gzip" and "ETag" not in head.headers
    for key in ("gz/small.txt", "gz/a.bin"):
        plain = send("GET", bucket.sign_url("GET", key, 300), headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in plain.headers
    assert "Content-Encoding" not in send("GET", url).headers  # not asked for
    assert bucket.get_object("gz/a.txt").read() == text  # oss2 does not ask for gzip


@pytest.mark.parametrize("mode", ["root-v4", "sts-v1"])
def test_v2_uploader_checks_the_combined_crc(shared_env: Env, mode: str, tmp_path) -> None:
    """alibabacloud-oss-v2's multipart uploader combines the parts' CRCs itself and compares the result
    with the x-oss-hash-crc64ecma of CompleteMultipartUpload."""
    data = os.urandom(350 * 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    client = v2_client(shared_env, mode)
    uploader = client.uploader(part_size=100 * 1024, parallel_num=2)
    result = uploader.upload_file(oss.PutObjectRequest(bucket=BUCKET, key=f"crc/uploader-{mode}"), str(source))
    assert int(result.hash_crc64) == reference_crc(data)
    head = client.head_object(oss.HeadObjectRequest(bucket=BUCKET, key=f"crc/uploader-{mode}"))
    assert head.object_type == "Multipart" and int(head.hash_crc64) == reference_crc(data)
