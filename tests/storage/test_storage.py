"""shared/storage.py against the OSS emulator (which verifies every signature) and oss2 as a reference client."""

from __future__ import annotations

import base64
import io
import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import oss2
import pytest
import urllib3

from local.cloud import LocalCloud
from local.sts import Role
from shared.errors import Forbidden, NotFound, UpstreamError
from shared.signing import Credentials, Endpoint
from shared.signing import signer as signer_module
from shared.storage import ObjectTooLarge, OssClient, OssError, to_app_error
from tests.sign.helpers import BUCKET, REGION, ROOT_AK, ROOT_SECRET, oss2_bucket

WEIRD_KEYS = [
    "plain/file.txt",
    "space and+plus.txt",
    "pct/100%25 %41.txt",
    "hash#and?question",
    "\u62a5\u544a/\u00fc\u00f1\u00ee\u00e7\u00f8d\u00e9.bin",
    "double//slash/x",
    "tilde~star*(paren).txt",
    "emoji/\U0001f600.txt",
]


def client(cloud: LocalCloud, *, version: str = "v4", credentials: Credentials | None = None, **kw: Any) -> OssClient:
    creds = credentials or Credentials(ROOT_AK, ROOT_SECRET)
    return OssClient(credentials=lambda: creds, bucket=BUCKET, region=REGION,
                     endpoint=Endpoint.path_style(cloud.oss_endpoint), version=version, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_objects_written_by_us_are_read_by_oss2_and_back(cloud: LocalCloud, version: str) -> None:
    ours = client(cloud, version=version)
    reference = oss2_bucket(cloud)
    for index, key in enumerate(WEIRD_KEYS):
        key = f"{version}/{key}"
        body = f"body {index} of {key}".encode()
        etag = ours.put_object(key, body, content_type="text/plain; charset=utf-8")
        result = reference.get_object(key)
        assert result.read() == body
        assert result.etag == etag
        assert result.headers["Content-Type"] == "text/plain; charset=utf-8"
        reference.put_object(key + ".ref", body[::-1])
        info = ours.head_object(key + ".ref")
        assert (info.key, info.size) == (key + ".ref", len(body))
        assert info.etag == reference.head_object(key + ".ref").etag
        assert ours.get_object(key + ".ref").body == body[::-1]


def test_head_reports_metadata(cloud: LocalCloud) -> None:
    ours = client(cloud)
    ours.put_object("meta/x.json", b"{}", content_type="application/json", headers={"x-oss-meta-owner": "alice"})
    info = ours.head_object("meta/x.json")
    assert info.content_type == "application/json"
    assert info.headers["x-oss-meta-owner"] == "alice"
    assert abs(info.last_modified - datetime.now(timezone.utc)) < timedelta(minutes=5)
    assert info.last_modified.tzinfo is not None


def test_ranges_and_conditions(cloud: LocalCloud) -> None:
    ours = client(cloud)
    etag = ours.put_object("range/digits.txt", b"0123456789")
    partial = ours.get_object("range/digits.txt", byte_range="bytes=2-5")
    assert (partial.status, partial.body, partial.headers["content-range"]) == (206, b"2345", "bytes 2-5/10")
    assert ours.get_object("range/digits.txt", byte_range="bytes=-3").body == b"789"
    not_modified = ours.get_object("range/digits.txt", if_none_match=f'"{etag}"')
    assert (not_modified.status, not_modified.body) == (304, b"")
    later = datetime.now(timezone.utc) + timedelta(hours=1)
    assert ours.get_object("range/digits.txt", if_modified_since=later).status == 304
    assert ours.get_object("range/digits.txt", if_none_match='"other"').status == 200
    with pytest.raises(OssError) as error:
        ours.get_object("range/digits.txt", byte_range="bytes=50-60")
    assert (error.value.status, error.value.code) == (416, "InvalidRange")


def test_max_bytes_refuses_large_objects_before_reading(cloud: LocalCloud) -> None:
    ours = client(cloud)
    ours.put_object("big/blob", b"x" * 5000)
    with pytest.raises(ObjectTooLarge) as error:
        ours.get_object("big/blob", max_bytes=4999)
    assert error.value.size == 5000
    assert ours.get_object("big/blob", max_bytes=5000).body == b"x" * 5000
    assert b"".join(ours.iter_object("big/blob", chunk_size=1024)) == b"x" * 5000
    chunks = ours.iter_object("big/blob", chunk_size=1024)
    assert next(chunks) == b"x" * 1024
    chunks.close()  # stopped early
    ours.put_object("big/after", b"next request on the pool")
    assert ours.get_object("big/after").body == b"next request on the pool"


def test_errors_are_parsed_from_xml_and_from_the_head_header(cloud: LocalCloud) -> None:
    ours = client(cloud)
    with pytest.raises(OssError) as get_error:
        ours.get_object("missing/key")
    assert (get_error.value.status, get_error.value.code) == (404, "NoSuchKey")
    assert get_error.value.message == "The specified key does not exist."
    assert get_error.value.request_id and len(get_error.value.request_id) == 24
    with pytest.raises(OssError) as head_error:
        ours.head_object("missing/key")
    assert (head_error.value.status, head_error.value.code) == (404, "NoSuchKey")
    assert head_error.value.request_id
    wrong = client(cloud, credentials=Credentials(ROOT_AK, "not-the-secret"))
    with pytest.raises(OssError) as sig_error:
        wrong.get_object("missing/key")
    assert sig_error.value.code == "SignatureDoesNotMatch"
    assert "not-the-secret" not in str(sig_error.value) and ROOT_SECRET not in str(sig_error.value)
    assert isinstance(to_app_error(get_error.value), NotFound)
    assert isinstance(to_app_error(sig_error.value), UpstreamError)


def test_sts_credentials_and_policy_denials(cloud: LocalCloud) -> None:
    role = Role(arn="acs:ram::1234567890123456:role/storage-test",
                policies=[{"Version": "1", "Statement": [
                    {"Effect": "Allow", "Action": ["oss:GetObject", "oss:PutObject"],
                     "Resource": [f"acs:oss:*:*:{BUCKET}/sts/*"]}]}],
                trust=["acs:ram::1234567890123456:root"])
    session = cloud.token_store.issue(role, "storage-test", 900, None)
    creds = Credentials(session.access_key_id, session.access_key_secret, session.security_token,
                        session.expiration)
    ours = client(cloud, credentials=creds)
    ours.put_object("sts/allowed.txt", b"ok")
    assert ours.get_object("sts/allowed.txt").body == b"ok"
    with pytest.raises(OssError) as denied:
        ours.get_object("elsewhere/x.txt")
    assert (denied.value.status, denied.value.code) == (403, "AccessDenied")
    assert isinstance(to_app_error(denied.value), Forbidden)
    with pytest.raises(OssError) as head_denied:
        ours.head_object("elsewhere/x.txt")
    assert head_denied.value.code == "AccessDenied"


def _oss2_pages(bucket: Any, **kw: Any) -> list[tuple[list[str], list[str], str | None, bool]]:
    pages, token = [], ""
    while True:
        page = bucket.list_objects_v2(continuation_token=token, **kw)
        pages.append(([o.key for o in page.object_list], list(page.prefix_list),
                      page.next_continuation_token or None, page.is_truncated))
        if not page.is_truncated:
            return pages
        token = page.next_continuation_token


def _our_pages(ours: OssClient, prefix: str, **kw: Any) -> list[tuple[list[str], list[str], str | None, bool]]:
    pages, token = [], None
    while True:
        page = ours.list_objects_v2(prefix, continuation_token=token, **kw)
        pages.append(([o.key for o in page.objects], page.common_prefixes, page.next_continuation_token,
                      page.is_truncated))
        if not page.is_truncated:
            return pages
        token = page.next_continuation_token


def test_listing_pages_equal_oss2(cloud: LocalCloud) -> None:
    ours = client(cloud)
    for index, key in enumerate(WEIRD_KEYS + [f"list/dir{n}/f{m}" for n, m in itertools.product(range(3), range(4))]):
        ours.put_object(f"list/{key}" if not key.startswith("list/") else key, str(index).encode())
    reference = oss2_bucket(cloud)
    for kwargs in ({"max_keys": 3}, {"max_keys": 2, "delimiter": "/"}, {"max_keys": 1000}):
        ours_pages = _our_pages(ours, "list/", **kwargs)
        oss2_pages = _oss2_pages(reference, prefix="list/", **kwargs)
        assert ours_pages == oss2_pages
        assert len(ours_pages) >= 1
    listed = list(ours.iter_objects("list/"))
    assert [o.key for o in listed] == [o.key for o in oss2.ObjectIteratorV2(reference, prefix="list/")]
    assert len(listed) == len(WEIRD_KEYS) + 12
    after = [o.key for o in ours.iter_objects("list/", start_after="list/dir1/f3")]
    assert after and all(key > "list/dir1/f3" for key in after)
    sizes = {o.key: o.size for o in listed}
    assert sizes["list/dir0/f0"] == len(str(len(WEIRD_KEYS)).encode())


def test_multipart_upload_round_trip(cloud: LocalCloud) -> None:
    ours = client(cloud)
    key = "multipart/\u62a5\u544a export.csv"
    upload_id = ours.initiate_multipart_upload(key, content_type="text/csv")
    first, second = b"a" * (100 * 1024), b"tail\n"
    etags = [ours.upload_part(key, upload_id, 1, first), ours.upload_part(key, upload_id, 2, second)]
    parts = ours.list_parts(key, upload_id)
    assert parts == [(1, etags[0], len(first)), (2, etags[1], len(second))]
    etag = ours.complete_multipart_upload(key, upload_id, [(2, etags[1]), (1, etags[0])])
    stored = oss2_bucket(cloud).get_object(key)
    assert stored.read() == first + second
    assert stored.etag == etag and etag.endswith("-2")
    assert stored.headers["Content-Type"] == "text/csv"
    aborted = ours.initiate_multipart_upload("multipart/aborted")
    ours.upload_part("multipart/aborted", aborted, 1, b"x")
    ours.abort_multipart_upload("multipart/aborted", aborted)
    with pytest.raises(OssError) as error:
        ours.list_parts("multipart/aborted", aborted)
    assert error.value.code == "NoSuchUpload"


def test_delete(cloud: LocalCloud) -> None:
    ours = client(cloud)
    ours.put_object("del/x", b"1")
    ours.delete_object("del/x")
    ours.delete_object("del/x")  # idempotent, as OSS is
    with pytest.raises(OssError):
        ours.head_object("del/x")


def test_rotated_credentials_are_picked_up(cloud: LocalCloud) -> None:
    current = [Credentials(ROOT_AK, "stale-secret-value")]
    ours = OssClient(credentials=lambda: current[0], bucket=BUCKET, region=REGION,
                     endpoint=Endpoint.path_style(cloud.oss_endpoint))
    with pytest.raises(OssError):
        ours.put_object("rot/x", b"1")
    current[0] = Credentials(ROOT_AK, ROOT_SECRET)
    assert ours.put_object("rot/x", b"1")


# --- retries, with a scripted pool ----------------------------------------------------------------------


class ScriptedPool:
    """Stands in for urllib3.PoolManager: answers from a script, records what was sent."""

    def __init__(self, script: list[Any]) -> None:
        self.script = list(script)
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, **kw: Any) -> Any:
        self.calls.append((method, url, dict(kw["headers"])))
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        status, headers, body = step
        return urllib3.HTTPResponse(body=io.BytesIO(body), status=status, headers=headers,
                                    preload_content=kw["preload_content"])


def scripted(script: list[Any], **kw: Any) -> tuple[OssClient, ScriptedPool, list[float]]:
    pool, sleeps = ScriptedPool(script), []
    ours = OssClient(credentials=lambda: Credentials(ROOT_AK, ROOT_SECRET), bucket=BUCKET, region=REGION,
                     endpoint=Endpoint.path_style("127.0.0.1:9"), pool=pool,  # type: ignore[arg-type]
                     sleep=sleeps.append, **kw)
    return ours, pool, sleeps


ERROR_503 = (503, {"x-oss-request-id": "A" * 24},
             b"<Error><Code>ServiceUnavailable</Code><Message>busy</Message></Error>")
OK_HEAD = (200, {"Content-Length": "3", "ETag": '"abc"', "Last-Modified": "Sun, 29 Nov 2026 09:00:00 GMT"}, b"")


def test_idempotent_requests_are_retried_with_jittered_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # A clock that moves a minute each time it is read: a retry that reused the first attempt's signature (or
    # date) would send the same x-oss-date again, and OSS refuses a request dated 15 minutes off.
    moments = (datetime(2026, 11, 29, 10, minute, tzinfo=timezone.utc) for minute in itertools.count())

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return next(moments)

    monkeypatch.setattr(signer_module, "datetime", Clock)
    reset = urllib3.exceptions.ProtocolError("connection reset")
    ours, pool, sleeps = scripted([reset, ERROR_503, OK_HEAD])
    assert ours.head_object("k").etag == "abc"
    assert len(pool.calls) == 3
    assert len(sleeps) == 2 and 0.05 <= sleeps[0] <= 0.1 and 0.1 <= sleeps[1] <= 0.2
    assert all(call[2]["Authorization"].startswith("OSS4-HMAC-SHA256 ") for call in pool.calls)
    # each attempt is signed afresh, when it is sent
    assert [call[2]["x-oss-date"] for call in pool.calls] == ["20261129T100000Z", "20261129T100100Z",
                                                             "20261129T100200Z"]
    assert len({call[2]["Authorization"] for call in pool.calls}) == 3


def test_retries_are_bounded() -> None:
    ours, pool, _ = scripted([ERROR_503] * 3, max_retries=2)
    with pytest.raises(OssError) as error:
        ours.get_object("k")
    assert (error.value.status, error.value.code, error.value.message) == (503, "ServiceUnavailable", "busy")
    assert len(pool.calls) == 3
    down = urllib3.exceptions.NewConnectionError(None, "refused")  # type: ignore[arg-type]
    ours, pool, _ = scripted([down, down], max_retries=1)
    with pytest.raises(OssError) as unreachable:
        ours.head_object("k")
    assert (unreachable.value.status, unreachable.value.code) == (0, "RequestError")
    assert isinstance(to_app_error(unreachable.value), UpstreamError)


def test_non_idempotent_requests_are_not_retried_and_4xx_never() -> None:
    ours, pool, _ = scripted([ERROR_503])
    with pytest.raises(OssError):
        ours.initiate_multipart_upload("k")
    assert len(pool.calls) == 1
    missing = (404, {}, b"<Error><Code>NoSuchKey</Code><Message>gone</Message><RequestId>R1</RequestId></Error>")
    ours, pool, _ = scripted([missing])
    with pytest.raises(OssError) as error:
        ours.get_object("k")
    assert (error.value.code, error.value.request_id, len(pool.calls)) == ("NoSuchKey", "R1", 1)


def test_head_errors_come_from_the_x_oss_err_header() -> None:
    xml = (b"<Error><Code>AccessDenied</Code><Message>no</Message><RequestId>R2</RequestId>"
           b"<EC>0003-00000001</EC></Error>")
    ours, _, _ = scripted([(403, {"x-oss-err": base64.b64encode(xml).decode()}, b"")])
    with pytest.raises(OssError) as error:
        ours.head_object("k")
    assert (error.value.code, error.value.message, error.value.request_id, error.value.ec) == (
        "AccessDenied", "no", "R2", "0003-00000001")


def test_xml_with_a_dtd_is_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><ListBucketResult></ListBucketResult>'
    ours, _, _ = scripted([(200, {}, bomb)])
    with pytest.raises(OssError) as error:
        ours.list_objects_v2("p/")
    assert error.value.code == "MalformedResponse"


def test_from_settings_uses_the_request_endpoint_and_path_style() -> None:
    from shared import config

    env = {"OSS_BUCKET": BUCKET, "OSS_REGION": REGION, "OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
           "OSS_INTERNAL_ENDPOINT": "oss-cn-hangzhou-internal.aliyuncs.com"}
    settings = config.load("export", env)
    ours = OssClient.from_settings(settings, lambda: Credentials(ROOT_AK, ROOT_SECRET))
    assert ours.endpoint == Endpoint("oss-cn-hangzhou-internal.aliyuncs.com", "https", "virtual")
    local = config.load("export", {**env, "OSS_INTERNAL_ENDPOINT": "http://127.0.0.1:9000"})
    assert OssClient.from_settings(local, lambda: Credentials(ROOT_AK, ROOT_SECRET)).endpoint == Endpoint(
        "127.0.0.1:9000", "http", "path")
