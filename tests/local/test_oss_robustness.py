"""Arbitrary requests get an OSS error answer (4xx with a code), never an internal error."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.oss.api import BodyReader, Call, OssApi, Reply
from local.oss.auth import Principal, Verifier
from local.oss.errors import OssError
from local.oss.events import EventDispatcher
from local.oss.storage import Storage
from local.sts import TokenStore

QUERY_NAMES = ["OSSAccessKeyId", "Expires", "Signature", "security-token", "x-oss-signature-version",
               "x-oss-credential", "x-oss-date", "x-oss-expires", "x-oss-signature", "x-oss-additional-headers",
               "x-oss-ac-source-ip", "x-oss-ac-subnet-mask", "uploads", "uploadId", "partNumber", "delete", "cors",
               "acl", "list-type", "max-keys", "marker", "continuation-token", "prefix", "delimiter",
               "encoding-type", "x-oss-traffic-limit", "response-content-type", "bucketInfo", "foo"]
AUTHORIZATIONS = st.one_of(
    st.none(), st.text(max_size=40), st.builds(lambda s: "OSS " + s, st.text(max_size=30)),
    st.builds(lambda s: "OSS4-HMAC-SHA256 " + s, st.text(max_size=80)),
    st.just("OSS4-HMAC-SHA256 Credential=root/20240101/cn-hangzhou/oss/aliyun_v4_request,Signature=ab"),
)
HEADER_NAMES = ["x-oss-date", "date", "content-md5", "content-type", "range", "if-match", "if-none-match",
                "if-modified-since", "x-oss-copy-source", "x-oss-security-token", "x-oss-content-sha256",
                "x-oss-metadata-directive", "x-oss-traffic-limit", "x-oss-complete-all", "origin"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OssApi]:
    root = Path(tmp_path_factory.mktemp("robust"))
    storage = Storage(root / "oss")
    storage.create_bucket("demo", public_read=True)
    tokens = TokenStore(root / "tokens.sqlite3")
    verifier = Verifier(root_keys={"root": "secret"}, tokens=tokens, region="cn-hangzhou", clock=time.time)
    yield OssApi(storage, verifier, EventDispatcher(region="cn-hangzhou", account_id="1"), "1", "cn-hangzhou",
                 time.time)
    tokens.close()


def body_reader(data: bytes) -> BodyReader:
    def chunks() -> Iterator[bytes]:
        stream = io.BytesIO(data)
        while chunk := stream.read(7):
            yield chunk

    return BodyReader(chunks, len(data), False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]),
       bucket=st.one_of(st.none(), st.sampled_from(["demo", "missing", "BAD_name"]), st.text(max_size=8)),
       key=st.one_of(st.none(), st.text(max_size=20)),
       query=st.lists(st.tuples(st.sampled_from(QUERY_NAMES), st.text(max_size=20)), max_size=6),
       headers=st.dictionaries(st.sampled_from(HEADER_NAMES), st.text(max_size=40), max_size=5),
       authorization=AUTHORIZATIONS,
       body=st.one_of(st.just(b""), st.binary(max_size=200),
                      st.just(b"<Delete><Object><Key>a</Key></Object></Delete>"),
                      st.just(b"<!DOCTYPE x [<!ENTITY a 'b'>]><Delete/>")))
def test_any_request_gets_an_oss_answer(api: OssApi, method: str, bucket: str | None, key: str | None,
                                        query: list[tuple[str, str]], headers: dict[str, str],
                                        authorization: str | None, body: bytes) -> None:
    all_headers = {name: [value] for name, value in headers.items()}
    if authorization is not None:
        all_headers["authorization"] = [authorization]
    call = Call(method, bucket or None, key or None, query, all_headers, "127.0.0.1", "127.0.0.1:9000",
                "0" * 24, body_reader(body))
    try:
        reply = api.handle(call)
    except OssError as error:
        assert 400 <= error.status < 500 or error.status == 501, (error.status, error.code, error.message)
        assert error.code and error.message
        return
    assert isinstance(reply, Reply)
    if reply.file is not None:
        reply.file[0].close()
    assert reply.status < 500


class TrustEveryone(Verifier):
    """Authenticates every request as the root key, so the operations see arbitrary input."""

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        return Principal("root", "root")


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"]),
       key=st.one_of(st.none(), st.sampled_from(["a", "dir/b", "/lead", "x" * 1100]), st.text(max_size=12)),
       query=st.lists(st.tuples(st.sampled_from(QUERY_NAMES), st.one_of(
           st.text(max_size=12), st.sampled_from(["", "1", "0", "2", "10001", "abc", "url", "-1", "819200"]))),
           max_size=5),
       headers=st.dictionaries(st.sampled_from(HEADER_NAMES), st.one_of(st.text(max_size=30), st.sampled_from([
           "bytes=0-1", "bytes=-1", "bytes=5-", "/demo/a", "/demo", "REPLACE", "yes", "multipart/form-data; boundary=x",
           "Wed, 21 Oct 2015 07:28:00 GMT", '"ABC"', "*"])), max_size=5),
       body=st.one_of(st.binary(max_size=120), st.sampled_from([
           b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>",
           b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin></CORSRule></CORSConfiguration>",
           b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>",
           b"--x\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--x\r\n"
           b"Content-Disposition: form-data; name=\"file\"\r\n\r\ndata\r\n--x--\r\n"])))
def test_operations_answer_any_input_as_root(api: OssApi, method: str, key: str | None, query: list[tuple[str, str]],
                                             headers: dict[str, str], body: bytes) -> None:
    trusting = OssApi(api.storage, TrustEveryone(root_keys={}, tokens=None, region="cn-hangzhou", clock=time.time),
                      api.dispatcher, api.account_id, api.region, api.clock)
    call = Call(method, "demo", key or None, query, {n: [v] for n, v in headers.items()}, "127.0.0.1",
                "127.0.0.1:9000", "0" * 24, body_reader(body))
    try:
        reply = trusting.handle(call)
    except OssError as error:
        assert 400 <= error.status < 500 or error.status == 501, (error.status, error.code, error.message)
        return
    if reply.file is not None:
        reply.file[0].close()
    assert reply.status < 500
