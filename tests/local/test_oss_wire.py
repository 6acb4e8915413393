"""Wire-level behaviour: headers, addressing styles, CORS, ranges, conditions, digests, limits."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from email.utils import formatdate

import oss2
import pytest

from tests.local.helpers import send
from tests.local.support import BUCKET, CNAME_HOST, REGION, ROOT_AK, ROOT_SECRET, Env

ORIGIN = "https://app.example.test"


def root_bucket(env: Env, bucket: str = BUCKET) -> oss2.Bucket:
    return oss2.Bucket(oss2.AuthV4(ROOT_AK, ROOT_SECRET), env.endpoint, bucket, region=REGION)


def bucket_url(env: Env, params: dict[str, str], method: str = "GET") -> str:
    """A presigned bucket-level URL (oss2's public sign_url refuses an empty key)."""
    auth = oss2.Auth(ROOT_AK, ROOT_SECRET)
    request = oss2.http.Request(method, f"{env.endpoint}/{BUCKET}/", params=params)
    return auth._sign_url(request, BUCKET, "", 60)


@pytest.fixture(scope="module")
def wire(shared_env: Env) -> Env:
    bucket = root_bucket(shared_env)
    bucket.put_object("wire/hello.txt", b"0123456789" * 10, headers={"Content-Type": "text/plain"})
    bucket.put_object("wire/empty", b"")
    return shared_env


def test_every_response_has_request_id_and_server(wire: Env) -> None:
    ok = send("GET", root_bucket(wire).sign_url("GET", "wire/hello.txt", 60))
    missing = send("GET", root_bucket(wire).sign_url("GET", "wire/none", 60))
    anonymous = send("GET", f"{wire.endpoint}/{BUCKET}/wire/hello.txt")
    for answer in (ok, missing, anonymous):
        assert len(answer.headers["x-oss-request-id"]) == 24
        assert answer.headers["Server"] == "AliyunOSS"
    assert missing.error_field("RequestId") == missing.headers["x-oss-request-id"]
    assert missing.error_field("Key") == "wire/none"
    assert missing.error_field("HostId") == wire.cloud.oss_endpoint


def test_range_requests(wire: Env) -> None:
    bucket = root_bucket(wire)
    body = b"0123456789" * 10

    def ranged(value: str):
        return send("GET", bucket.sign_url("GET", "wire/hello.txt", 60), headers={"Range": value})

    answer = ranged("bytes=10-19")
    assert (answer.status, answer.body, answer.headers["Content-Range"]) == (206, body[10:20], "bytes 10-19/100")
    assert ranged("bytes=-5").body == body[-5:]
    assert ranged("bytes=95-").body == body[95:]
    assert ranged("bytes=90-500").body == body[90:]  # end clamped
    too_far = ranged("bytes=100-200")
    assert (too_far.status, too_far.code) == (416, "InvalidRange")
    assert ranged("bytes=abc").status == 200  # malformed: whole object
    empty = send("GET", bucket.sign_url("GET", "wire/empty", 60), headers={"Range": "bytes=0-1"})
    assert (empty.status, empty.code) == (416, "InvalidRange")


def test_conditional_get(wire: Env) -> None:
    bucket = root_bucket(wire)
    url = bucket.sign_url("GET", "wire/hello.txt", 60)
    etag = bucket.head_object("wire/hello.txt").etag
    later = formatdate(time.time() + 3600, usegmt=True)
    earlier = formatdate(time.time() - 3600, usegmt=True)
    assert send("GET", url, headers={"If-None-Match": f'"{etag}"'}).status == 304
    assert send("GET", url, headers={"If-None-Match": '"OTHER"'}).status == 200
    assert send("GET", url, headers={"If-Match": f'"{etag}"'}).status == 200
    failed = send("GET", url, headers={"If-Match": '"OTHER"'})
    assert (failed.status, failed.code) == (412, "PreconditionFailed")
    assert send("GET", url, headers={"If-Modified-Since": later}).status == 304
    assert send("GET", url, headers={"If-Modified-Since": earlier}).status == 200
    assert send("GET", url, headers={"If-Unmodified-Since": earlier}).code == "PreconditionFailed"
    assert send("GET", url, headers={"If-Unmodified-Since": later}).status == 200


def test_content_md5(wire: Env) -> None:
    bucket = root_bucket(wire)
    good = base64.b64encode(hashlib.md5(b"abc").digest()).decode()
    bucket.put_object("wire/md5", b"abc", headers={"Content-MD5": good})
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.put_object("wire/md5", b"abd", headers={"Content-MD5": good})
    assert (raised.value.status, raised.value.code) == (400, "InvalidDigest")  # OSS's code (S3 says BadDigest)
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.put_object("wire/md5", b"abc", headers={"Content-MD5": "not-base64!"})
    assert raised.value.code == "InvalidDigest"
    assert bucket.get_object("wire/md5").read() == b"abc"


def test_chunked_upload(wire: Env) -> None:
    bucket = root_bucket(wire)
    chunks = [b"a" * 70000, b"b" * 5, b"c" * 100000]
    bucket.put_object("wire/chunked", iter(chunks))  # a generator: oss2 sends Transfer-Encoding: chunked
    assert bucket.get_object("wire/chunked").read() == b"".join(chunks)


def test_list_arguments(wire: Env) -> None:
    bucket = root_bucket(wire)
    for bad in ("abc", "0", "1001"):
        answer = send("GET", bucket_url(wire, {"max-keys": bad}))
        assert (answer.status, answer.code) == (400, "InvalidArgument")
    bucket.put_object("wire/enc/a b&c.txt", b"1")
    answer = send("GET", bucket_url(wire, {"prefix": "wire/enc/", "encoding-type": "url"}))
    assert b"<Key>wire%2Fenc%2Fa%20b%26c.txt</Key>" in answer.body
    assert b"<EncodingType>url</EncodingType>" in answer.body
    for i in range(105):
        bucket.put_object(f"wire/many/{i:03d}", b"")
    default = send("GET", bucket_url(wire, {"prefix": "wire/many/"}))
    assert default.body.count(b"<Contents>") == 100
    assert b"<MaxKeys>100</MaxKeys>" in default.body


def test_traffic_limit(wire: Env) -> None:
    bucket = root_bucket(wire)
    bucket.put_object("wire/limited", b"x", headers={"x-oss-traffic-limit": str(819200)})
    for bad in ("100", "838860801", "fast"):
        with pytest.raises(oss2.exceptions.ServerError) as raised:
            bucket.put_object("wire/limited", b"x", headers={"x-oss-traffic-limit": bad})
        assert raised.value.code == "InvalidArgument"
    url = bucket.sign_url("GET", "wire/limited", 60, params={"x-oss-traffic-limit": "819200"})
    assert send("GET", url).body == b"x"
    # 819200 bit/s = 100 KiB/s: 50 KiB take about half a second instead of a few milliseconds
    body = os.urandom(50 * 1024)
    bucket.put_object("wire/throttled", body)
    started = time.perf_counter()
    slow = send("GET", bucket.sign_url("GET", "wire/throttled", 60, params={"x-oss-traffic-limit": "819200"}))
    assert slow.body == body
    assert time.perf_counter() - started >= 0.4


def test_method_not_allowed_and_unknown_bucket(wire: Env) -> None:
    url = root_bucket(wire).sign_url("GET", "wire/hello.txt", 60)
    assert send("PATCH", root_bucket(wire).sign_url("PATCH", "wire/hello.txt", 60)).status == 405
    assert send("POST", root_bucket(wire).sign_url("POST", "wire/hello.txt", 60)).code == "MethodNotAllowed"
    assert send("PATCH", url).code == "SignatureDoesNotMatch"  # signed for GET
    answer = send("GET", root_bucket(wire, "no-such-bucket").sign_url("GET", "k", 60))
    assert (answer.status, answer.code, answer.error_field("BucketName")) == (404, "NoSuchBucket", "no-such-bucket")


def test_multipart_errors(wire: Env) -> None:
    bucket = root_bucket(wire)
    key = "wire/mp"
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part(key, "NOSUCHUPLOAD", 1, b"x")
    upload_id = bucket.init_multipart_upload(key).upload_id
    small = bucket.upload_part(key, upload_id, 1, b"tiny")
    last = bucket.upload_part(key, upload_id, 2, b"last")
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, small.etag),
                                                          oss2.models.PartInfo(2, last.etag)])
    assert raised.value.code == "EntityTooSmall"
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(1, '"0000"')])
    assert raised.value.code == "InvalidPart"
    with pytest.raises(oss2.exceptions.ServerError) as raised:
        bucket.upload_part(key, upload_id, 10001, b"x")
    assert raised.value.code == "InvalidArgument"
    # a single small part is a valid upload
    done = bucket.complete_multipart_upload(key, upload_id, [oss2.models.PartInfo(2, last.etag)])
    assert done.status == 200
    assert bucket.get_object(key).read() == b"last"


def test_cors_preflight_and_actual_request(wire: Env) -> None:
    base = f"{wire.endpoint}/{BUCKET}/wire/hello.txt"
    allowed = send("OPTIONS", base, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT",
                                             "Access-Control-Request-Headers": "content-type, x-oss-meta-a"})
    assert allowed.status == 200
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PUT" in allowed.headers["Access-Control-Allow-Methods"]
    assert allowed.headers["Access-Control-Allow-Headers"] == "content-type, x-oss-meta-a"
    assert allowed.headers["Access-Control-Max-Age"] == "600"
    refused = send("OPTIONS", base, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert (refused.status, refused.code) == (403, "AccessForbidden")
    wrong_method = send("OPTIONS", base, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"})
    assert wrong_method.status == 403
    actual = send("GET", root_bucket(wire).sign_url("GET", "wire/hello.txt", 60), headers={"Origin": ORIGIN})
    assert actual.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "x-oss-request-id" in actual.headers["Access-Control-Expose-Headers"]
    # CORS headers also on errors, so a browser can read them
    denied = send("GET", base, headers={"Origin": ORIGIN})
    assert (denied.status, denied.headers["Access-Control-Allow-Origin"]) == (403, ORIGIN)
    stranger = send("GET", base, headers={"Origin": "https://evil.example"})
    assert stranger.status == 403 and "Access-Control-Allow-Origin" not in stranger.headers


def test_virtual_host_and_cname_addressing(wire: Env) -> None:
    auth = oss2.AuthV4(ROOT_AK, ROOT_SECRET)
    target = ("127.0.0.1", wire.port)
    # oss2 treats "localhost" like an IP (path style), so use an "oss-" endpoint name for virtual hosting
    virtual = oss2.Bucket(auth, f"http://oss-local.test:{wire.port}", BUCKET, region=REGION)
    url = virtual.sign_url("GET", "wire/hello.txt", 60)
    assert url.startswith(f"http://{BUCKET}.oss-local.test:{wire.port}/wire%2Fhello.txt?")
    assert send("GET", url, connect_to=target).body == b"0123456789" * 10
    cname = oss2.Bucket(auth, f"http://{CNAME_HOST}:{wire.port}", BUCKET, region=REGION, is_cname=True)
    url = cname.sign_url("GET", "wire/hello.txt", 60)
    assert url.startswith(f"http://{CNAME_HOST}:{wire.port}/wire%2Fhello.txt?")
    assert send("GET", url, connect_to=target).body == b"0123456789" * 10
    v1 = oss2.Bucket(oss2.Auth(ROOT_AK, ROOT_SECRET), f"http://{CNAME_HOST}:{wire.port}", BUCKET, is_cname=True)
    assert send("GET", v1.sign_url("GET", "wire/hello.txt", 60), connect_to=target).status == 200
    # "<bucket>.localhost" is virtual-hosted too (what browsers resolve to loopback)
    anonymous = send("GET", f"http://{BUCKET}.localhost:{wire.port}/wire/hello.txt", connect_to=target)
    assert (anonymous.status, anonymous.code) == (403, "AccessDenied")
    assert send("GET", f"http://public.localhost:{wire.port}/nothing", connect_to=target).code == "NoSuchKey"


def test_concurrent_writers_and_readers(wire: Env) -> None:
    bucket = root_bucket(wire)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(15):
                key = f"wire/concurrent/{worker}/{i}"
                bucket.put_object(key, f"{worker}-{i}".encode())
                assert bucket.get_object(key).read() == f"{worker}-{i}".encode()
                bucket.put_object("wire/concurrent/shared", f"{worker}".encode() * 1000)
                assert len(bucket.get_object("wire/concurrent/shared").read()) in (1000, 2000)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    listed = [o.key for o in oss2.ObjectIterator(bucket, prefix="wire/concurrent/")]
    assert len(listed) == 8 * 15 + 1


def test_unknown_query_parameters_are_ignored_but_unsupported_operations_say_so(wire: Env) -> None:
    bucket = root_bucket(wire)
    busted = bucket.sign_url("GET", "wire/hello.txt", 60, params={"_": "1700000000", "utm_source": "mail"})
    assert send("GET", busted).body == b"0123456789" * 10
    acl = send("GET", bucket.sign_url("GET", "wire/hello.txt", 60, params={"acl": ""}))
    assert (acl.status, acl.code) == (501, "NotImplemented")
    assert send("GET", bucket_url(wire, {"acl": ""})).status == 200  # bucket ACL is modelled


def test_large_bodies_stream_with_constant_memory(wire: Env) -> None:
    import http.client
    import tracemalloc
    from urllib.parse import urlsplit

    size = 48 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    bucket = root_bucket(wire)
    tracemalloc.start()
    try:
        bucket.put_object("wire/large.bin", (block for _ in range(size // len(block))))  # chunked upload
        put_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        url = urlsplit(bucket.sign_url("GET", "wire/large.bin", 60))
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        connection.request("GET", f"{url.path}?{url.query}")
        response = connection.getresponse()
        received = 0
        while chunk := response.read(64 * 1024):
            received += len(chunk)
        connection.close()
        get_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert received == size
    assert put_peak < 16 * 1024 * 1024, put_peak
    assert get_peak < 4 * 1024 * 1024, get_peak


@pytest.mark.parametrize("raw", [
    b"GET /demo/%FF%FE HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /demo/a?x=%FF HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PUT /demo/a HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n",
    b"PUT /demo/a HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n",
    b"PUT /demo/a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /demo/ HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=q\r\n"
    b"Content-Length: 7\r\n\r\n--q\r\nxx",
])
def test_malformed_requests_get_an_oss_error(wire: Env, raw: bytes) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", wire.port), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while b"</Error>" not in answer:
            data = connection.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert b"x-oss-request-id" in answer and b"<Code>" in answer, answer[:300]
