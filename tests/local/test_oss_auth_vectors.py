"""The verifier accepts the published SDK signing vectors (reference oss-signing.md §8) and rejects
them once any signed element changes."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from local.oss.auth import IncomingRequest, Verifier
from local.oss.errors import OssError
from local.sts import Session

V4_PARAMS = [("param1", "value1"), ("+param1", "value3"), ("|param1", "value4"), ("+param2", ""),
             ("|param2", ""), ("param2", "")]
V4_HEADERS = {"x-oss-head1": ["value"], "abc": ["value"], "zabc": ["value"], "xyz": ["value"]}


class OneSession:
    """Token lookup holding a single STS session (ak/sk, token "token")."""

    def __init__(self) -> None:
        self.session = Session(access_key_id="ak", access_key_secret="sk", security_token="token",
                               expiration=datetime(2100, 1, 1, tzinfo=timezone.utc), role_arn="acs:ram::1:role/r",
                               session_name="s", role_policies=(), session_policy=None)

    def by_access_key(self, access_key_id: str) -> Session | None:
        return self.session if access_key_id == "ak" else None

    def by_security_token(self, security_token: str) -> Session | None:
        return self.session if security_token == "token" else None


def verifier(now: float, tokens: OneSession | None = None) -> Verifier:
    return Verifier(root_keys={"ak": "sk"}, tokens=tokens, region="cn-hangzhou", clock=lambda: now)


def request(method: str, bucket: str | None, key: str | None, query: list[tuple[str, str]],
            headers: dict[str, list[str]]) -> IncomingRequest:
    return IncomingRequest(method, bucket, key, query, headers, "127.0.0.1")


V1_HEADERS = {
    "content-md5": ["eB5eJF1ptWaXm4bijSPyxw=="], "content-type": ["text/html"],
    "x-oss-meta-author": ["alice"], "x-oss-meta-magic": ["abracadabra"],
    "x-oss-date": ["Wed, 28 Dec 2022 10:27:41 GMT"],
}
V1_TIME = datetime(2022, 12, 28, 10, 27, 41, tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize(("query", "signature"), [
    ([], "kSHKmLxlyEAKtZPkJhG9bZb5k7M="),
    ([("acl", "")], "/afkugFbmWDQ967j1vr6zygBLQk="),
])
def test_v1_header_vectors(query: list[tuple[str, str]], signature: str) -> None:
    headers = {**V1_HEADERS, "authorization": [f"OSS ak:{signature}"]}
    principal = verifier(V1_TIME).authenticate(request("PUT", "examplebucket", "nelson", query, headers))
    assert (principal.kind, principal.access_key_id) == ("root", "ak")
    tampered = {**headers, "x-oss-meta-author": ["mallory"]}
    with pytest.raises(OssError) as raised:
        verifier(V1_TIME).authenticate(request("PUT", "examplebucket", "nelson", query, tampered))
    assert raised.value.code == "SignatureDoesNotMatch"
    assert "x-oss-meta-author:mallory" in raised.value.extra["StringToSign"]


@pytest.mark.parametrize(("query", "signature"), [
    ([("resourceGroup", ""), ("non-resousce", "null")], "vkQmfuUDyi1uDi3bKt67oemssIs="),
    ([("resourceGroup", ""), ("acl", "")], "x3E5TgOvl/i7PN618s5mEvpJDYk="),
])
def test_v1_bucket_subresource_vectors(query: list[tuple[str, str]], signature: str) -> None:
    headers = {"x-oss-date": ["Wed, 28 Dec 2022 10:27:41 GMT"], "authorization": [f"OSS ak:{signature}"]}
    assert verifier(V1_TIME).authenticate(request("GET", "examplebucket", None, query, headers)).kind == "root"


def test_v1_query_vectors() -> None:
    plain = [("versionId", "versionId"), ("OSSAccessKeyId", "ak"), ("Expires", "1699807420"),
             ("Signature", "dcLTea+Yh9ApirQ8o8dOPqtvJXQ=")]
    assert verifier(1699807000).authenticate(request("GET", "bucket", "key", plain, {})).kind == "root"
    with pytest.raises(OssError) as raised:
        verifier(1699807421).authenticate(request("GET", "bucket", "key", plain, {}))
    assert (raised.value.code, raised.value.message) == ("AccessDenied", "Request has expired.")
    with_token = [("versionId", "versionId"), ("OSSAccessKeyId", "ak"), ("Expires", "1699808204"),
                  ("security-token", "token"), ("Signature", "jzKYRrM5y6Br0dRFPaTGOsbrDhY=")]
    principal = verifier(1699808000, OneSession()).authenticate(request("GET", "bucket", "key+123", with_token, {}))
    assert principal.kind == "sts"


def test_v4_header_vector() -> None:
    headers = {**V4_HEADERS, "content-type": ["text/plain"], "x-oss-content-sha256": ["UNSIGNED-PAYLOAD"],
               "x-oss-date": ["20231216T162057Z"],
               "authorization": ["OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
                                 "Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"]}
    incoming = request("PUT", "bucket", "1234+-/123/1.txt", V4_PARAMS, headers)
    assert verifier(1702743657).authenticate(incoming).kind == "root"
    # oss2's spelling: comma + space separators
    spaced = {**headers, "authorization": [headers["authorization"][0].replace(",", ", ")]}
    assert verifier(1702743657).authenticate(dataclasses.replace(incoming, headers=spaced)).kind == "root"
    with pytest.raises(OssError) as raised:
        verifier(1702743657).authenticate(dataclasses.replace(incoming, query=[*V4_PARAMS, ("extra", "1")]))
    assert raised.value.code == "SignatureDoesNotMatch"
    with pytest.raises(OssError) as raised:
        verifier(1702743657 + 901).authenticate(incoming)
    assert raised.value.code == "RequestTimeTooSkewed"


def test_v4_header_vector_with_token_and_additional_headers() -> None:
    with_token = {**V4_HEADERS, "content-type": ["text/plain"], "x-oss-content-sha256": ["UNSIGNED-PAYLOAD"],
                  "x-oss-date": ["20231217T034736Z"], "x-oss-security-token": ["token"],
                  "authorization": ["OSS4-HMAC-SHA256 Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,"
                                    "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"]}
    incoming = request("PUT", "bucket", "1234+-/123/1.txt", V4_PARAMS, with_token)
    assert verifier(1702784856, OneSession()).authenticate(incoming).kind == "sts"
    additional = {**V4_HEADERS, "content-type": ["text/plain"], "x-oss-content-sha256": ["UNSIGNED-PAYLOAD"],
                  "x-oss-date": ["20231216T172512Z"],
                  "authorization": ["OSS4-HMAC-SHA256 Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
                                    "AdditionalHeaders=abc;zabc,"
                                    "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"]}
    incoming = request("PUT", "bucket", "1234+-/123/1.txt", V4_PARAMS, additional)
    assert verifier(1702747512).authenticate(incoming).kind == "root"
    changed = {**additional, "zabc": ["other"]}  # an additional header is signed
    with pytest.raises(OssError):
        verifier(1702747512).authenticate(dataclasses.replace(incoming, headers=changed))


def test_v4_query_vector() -> None:
    query = [*V4_PARAMS, ("x-oss-signature-version", "OSS4-HMAC-SHA256"),
             ("x-oss-credential", "ak/20231217/cn-hangzhou/oss/aliyun_v4_request"),
             ("x-oss-date", "20231217T025437Z"), ("x-oss-expires", "599"),
             ("x-oss-signature", "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe")]
    headers = {**V4_HEADERS, "content-type": ["application/octet-stream"]}
    incoming = request("PUT", "bucket", "1234+-/123/1.txt", query, headers)
    assert verifier(1702781677 + 598).authenticate(incoming).kind == "root"
    with pytest.raises(OssError) as raised:
        verifier(1702781677 + 600).authenticate(incoming)
    assert (raised.value.code, raised.value.message) == ("AccessDenied", "Request has expired.")
    with pytest.raises(OssError) as raised:
        verifier(1702781677).authenticate(dataclasses.replace(incoming, method="GET"))
    assert raised.value.code == "SignatureDoesNotMatch"


def test_signature_error_masks_the_security_token() -> None:
    query = [("OSSAccessKeyId", "ak"), ("Expires", "1699808204"), ("security-token", "token"),
             ("Signature", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    with pytest.raises(OssError) as raised:
        verifier(1699808000, OneSession()).authenticate(request("GET", "bucket", "key", query, {}))
    assert raised.value.code == "SignatureDoesNotMatch"
    assert "token" not in raised.value.extra["StringToSign"].replace("security-token", "")
    assert "<redacted>" in raised.value.extra["StringToSign"]
