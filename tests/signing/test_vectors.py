"""Published signing vectors (reference oss-signing.md section 8), header and query forms.

8.1 / 8.2 come from the alibabacloud-oss-v2 unit tests (same numbers in the Go v2 suite);
8.3 are reference outputs of oss2 2.19.1 / alibabacloud-oss-v2 1.4.1 with the clock frozen.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from shared.signing import (
    V4_ALGORITHM,
    Credentials,
    Endpoint,
    PresignOptions,
    Signer,
    v1_canonical_oss_headers,
    v1_canonical_resource,
    v1_signature,
    v1_string_to_sign,
    v4_additional_headers,
    v4_canonical_headers,
    v4_canonical_query,
    v4_canonical_request,
    v4_scope,
    v4_signature,
    v4_signing_key,
    v4_string_to_sign,
    v4_timestamp,
)
from tests.signing.sdk_oracles import query_value, split_url


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


AK = Credentials("ak", "sk")
HANGZHOU = Endpoint.for_region("cn-hangzhou", secure=False)

# ---------------------------------------------------------------------------------------------
# 8.1 V1
# ---------------------------------------------------------------------------------------------

V1_H1_HEADERS = {
    "Content-MD5": "eB5eJF1ptWaXm4bijSPyxw==",
    "Content-Type": "text/html",
    "x-oss-meta-author": "alice",
    "x-oss-meta-magic": "abracadabra",
    "x-oss-date": "Wed, 28 Dec 2022 10:27:41 GMT",
}


def test_v1_h1_string_to_sign_and_authorization():
    signer = Signer(AK, HANGZHOU, "examplebucket", region="cn-hangzhou", version="v1")
    signed = signer.sign_request("PUT", "nelson", headers=V1_H1_HEADERS, now=at(1700000000))
    assert signed.headers["Authorization"] == "OSS ak:kSHKmLxlyEAKtZPkJhG9bZb5k7M="
    expected_sts = (
        "PUT\neB5eJF1ptWaXm4bijSPyxw==\ntext/html\nWed, 28 Dec 2022 10:27:41 GMT\n"
        "x-oss-date:Wed, 28 Dec 2022 10:27:41 GMT\nx-oss-meta-author:alice\nx-oss-meta-magic:abracadabra\n"
        "/examplebucket/nelson"
    )
    built = v1_string_to_sign(
        "PUT", V1_H1_HEADERS["Content-MD5"], "text/html", V1_H1_HEADERS["x-oss-date"],
        v1_canonical_oss_headers(V1_H1_HEADERS), v1_canonical_resource("examplebucket", "nelson"),
    )  # fmt: skip
    assert built == expected_sts


def test_v1_h2_acl_subresource():
    signer = Signer(AK, HANGZHOU, "examplebucket", region="cn-hangzhou", version="v1")
    signed = signer.sign_request("PUT", "nelson", params={"acl": None}, headers=V1_H1_HEADERS)
    assert signed.headers["Authorization"] == "OSS ak:/afkugFbmWDQ967j1vr6zygBLQk="
    assert signed.url == "http://examplebucket.oss-cn-hangzhou.aliyuncs.com/nelson?acl"


@pytest.mark.parametrize(
    ("params", "authorization"),
    [
        ({"resourceGroup": None, "non-resousce": "null"}, "OSS ak:vkQmfuUDyi1uDi3bKt67oemssIs="),
        ({"resourceGroup": None, "acl": None}, "OSS ak:x3E5TgOvl/i7PN618s5mEvpJDYk="),
    ],
)
def test_v1_h3_h4_bucket_level(params, authorization):
    signer = Signer(AK, HANGZHOU, "examplebucket", region="cn-hangzhou", version="v1")
    signed = signer.sign_request(
        "GET", None, params=params, headers={"x-oss-date": "Wed, 28 Dec 2022 10:27:41 GMT"}
    )
    assert signed.headers["Authorization"] == authorization


@pytest.mark.parametrize(
    ("key", "credentials", "expiration", "signature"),
    [
        ("key", AK, 1699807420, "dcLTea+Yh9ApirQ8o8dOPqtvJXQ="),
        ("key+123", Credentials("ak", "sk", "token"), 1699808204, "jzKYRrM5y6Br0dRFPaTGOsbrDhY="),
    ],
)
def test_v1_q1_q2_presigned(key, credentials, expiration, signature):
    signer = Signer(credentials, HANGZHOU, "bucket", region="cn-hangzhou", version="v1")
    url = signer.presign(
        key, expires=600, options=PresignOptions(version_id="versionId"), now=at(expiration - 600)
    ).url
    assert query_value(url, "Signature") == signature
    assert query_value(url, "Expires") == str(expiration)
    assert query_value(url, "versionId") == "versionId"
    assert query_value(url, "OSSAccessKeyId") == "ak"
    if credentials.security_token:
        assert query_value(url, "security-token") == "token"
    assert split_url(url)[1] == "/" + quote(key, safe="/")


def test_v1_q3_published_value_needs_the_test_bug_and_the_fixed_url_signs_differently():
    """The upstream test appends '?' + query to a URL that already has one (reference 8.1)."""
    headers = {"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value"}
    params = {
        "param1": "value1", "+param1": "value3", "|param1": "value4", "+param2": "", "|param2": "",
        "param2": "", "response-content-disposition": "attachment; filename=example.txt",
        "security-token": "token",
    }  # fmt: skip

    def signature(version_id: str) -> str:
        resource = v1_canonical_resource("bucket", "key", {**params, "versionId": version_id})
        sts = v1_string_to_sign(
            "GET", "", "application/octet-stream", "1699808204", v1_canonical_oss_headers(headers), resource
        )
        return v1_signature("sk", sts)

    assert signature("versionId?param1=value1") == "3GJoEOv5LX2ASp0HJk/hAk+qLJc="
    assert signature("versionId") == "VmWfLWfxbR3MSFvUx5+nyQhCa3g="


# ---------------------------------------------------------------------------------------------
# 8.2 V4
# ---------------------------------------------------------------------------------------------

V4_KEY = "1234+-/123/1.txt"
V4_PARAMS = {"param1": "value1", "+param1": "value3", "|param1": "value4", "+param2": "", "|param2": "", "param2": ""}
V4_HEADERS = {"x-oss-head1": "value", "abc": "value", "ZAbc": "value", "XYZ": "value"}


def test_v4_canonical_request_and_string_to_sign_of_header_vector():
    headers = {**V4_HEADERS, "content-type": "text/plain", "x-oss-content-sha256": "UNSIGNED-PAYLOAD",
               "x-oss-date": "20231216T162057Z"}  # fmt: skip
    canonical = v4_canonical_request(
        "PUT", "/bucket/1234%2B-/123/1.txt", v4_canonical_query(V4_PARAMS), v4_canonical_headers(headers)
    )
    assert canonical == (
        "PUT\n/bucket/1234%2B-/123/1.txt\n"
        "%2Bparam1=value3&%2Bparam2&%7Cparam1=value4&%7Cparam2&param1=value1&param2\n"
        "content-type:text/plain\nx-oss-content-sha256:UNSIGNED-PAYLOAD\nx-oss-date:20231216T162057Z\n"
        "x-oss-head1:value\n\n\nUNSIGNED-PAYLOAD"
    )
    sts = v4_string_to_sign("20231216T162057Z", v4_scope("20231216", "cn-hangzhou"), canonical)
    assert sts == (
        "OSS4-HMAC-SHA256\n20231216T162057Z\n20231216/cn-hangzhou/oss/aliyun_v4_request\n"
        "f4613657f1b108998e8dbd10a1aa5da621dc2c6e02c9ddec0f163664848704c4"
    )


@pytest.mark.parametrize(
    ("epoch", "token", "additional", "region", "product", "expected"),
    [
        (1702743657, None, (), "cn-hangzhou", "oss",
         "Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,"
         "Signature=e21d18daa82167720f9b1047ae7e7f1ce7cb77a31e8203a7d5f4624fa0284afe"),
        (1702784856, "token", (), "cn-hangzhou", "oss",
         "Credential=ak/20231217/cn-hangzhou/oss/aliyun_v4_request,"
         "Signature=b94a3f999cf85bcdc00d332fbd3734ba03e48382c36fa4d5af5df817395bd9ea"),
        (1702747512, None, ("ZAbc", "abc"), "cn-hangzhou", "oss",
         "Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,"
         "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"),
        (1702747512, None, ("x-oss-no-exist", "ZAbc", "x-oss-head1", "abc"), "cn-hangzhou", "oss",
         "Credential=ak/20231216/cn-hangzhou/oss/aliyun_v4_request,AdditionalHeaders=abc;zabc,"
         "Signature=4a4183c187c07c8947db7620deb0a6b38d9fbdd34187b6dbaccb316fa251212f"),
        (1702743657, None, (), "cb-123", "oss-cloudbox",
         "Credential=ak/20231216/cb-123/oss-cloudbox/aliyun_v4_request,"
         "Signature=94ce1f12c17d148ea681030275a94449d3357f5b5b21133996eec80af3e08a43"),
    ],
)  # fmt: skip
def test_v4_header_vectors(epoch, token, additional, region, product, expected):
    signer = Signer(Credentials("ak", "sk", token), HANGZHOU, "bucket", region=region, product=product)
    signed = signer.sign_request(
        "PUT", V4_KEY, params=V4_PARAMS, headers={**V4_HEADERS, "content-type": "text/plain"},
        additional_headers=additional, now=at(epoch),
    )  # fmt: skip
    assert signed.headers["Authorization"] == f"{V4_ALGORITHM} {expected}"
    assert signed.headers["x-oss-date"] == v4_timestamp(at(epoch))
    assert signed.headers["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"
    assert signed.headers.get("x-oss-security-token") == token


def v4_query_signature(epoch: int, expiration: int, *, token=None, additional=(), region="cn-hangzhou",
                       product="oss") -> tuple[dict[str, str], str]:  # fmt: skip
    """Query-form signature from the building blocks, as the published presign tests build it."""
    timestamp = v4_timestamp(at(epoch))
    scope = v4_scope(timestamp[:8], region, product)
    headers = {**V4_HEADERS, "content-type": "application/octet-stream"}
    extra = v4_additional_headers(headers, additional)
    params = {**V4_PARAMS, "x-oss-signature-version": V4_ALGORITHM, "x-oss-date": timestamp,
              "x-oss-expires": str(expiration - epoch), "x-oss-credential": f"ak/{scope}"}  # fmt: skip
    if token:
        params["x-oss-security-token"] = token
    if extra:
        params["x-oss-additional-headers"] = ";".join(extra)
    canonical = v4_canonical_request(
        "PUT", "/bucket/1234%2B-/123/1.txt", v4_canonical_query(params), v4_canonical_headers(headers, extra), extra
    )
    sts = v4_string_to_sign(timestamp, scope, canonical)
    return params, v4_signature(v4_signing_key("sk", timestamp[:8], region, product), sts)


@pytest.mark.parametrize(
    ("epoch", "expiration", "kwargs", "signature"),
    [
        (1702781677, 1702782276, {}, "a39966c61718be0d5b14e668088b3fa07601033f6518ac7b523100014269c0fe"),
        (1702785388, 1702785987, {"token": "token"},
         "3817ac9d206cd6dfc90f1c09c00be45005602e55898f26f5ddb06d7892e1f8b5"),
        (1702783809, 1702784408, {"additional": ("ZAbc", "abc")},
         "6bd984bfe531afb6db1f7550983a741b103a8c58e5e14f83ea474c2322dfa2b7"),
        (1702781677, 1702781677 + 5 * 86400, {},
         "31029123dc7732d2d2cfd4006ea4fdb6cf86da6478f813e2bf8f87877c7b9fec"),
        (1702781677, 1702782276, {"additional": ("ZAbc", "abc"), "region": "cb-123", "product": "oss-cloudbox"},
         "07284191b9b4978ac3520cd39ee2dea2747eda454089359371ff463a6c7ba20f"),
        (1702783809, 1702784408, {"additional": ("ZAbc", "abc"), "region": "cb-123", "product": "oss-cloudbox"},
         "16782cc8a7a554523db055eb804b508522e7e370073108ad88ee2f47496701dd"),
    ],
)  # fmt: skip
def test_v4_query_vectors(epoch, expiration, kwargs, signature):
    params, computed = v4_query_signature(epoch, expiration, **kwargs)
    assert computed == signature
    assert params["x-oss-expires"] == str(expiration - epoch)


def test_v4_query_vector_credential_encoding():
    params, _ = v4_query_signature(1702781677, 1702782276)
    assert "x-oss-credential=ak%2F20231217%2Fcn-hangzhou%2Foss%2Faliyun_v4_request" in v4_canonical_query(params)
    assert params["x-oss-date"] == "20231217T025437Z"


# ---------------------------------------------------------------------------------------------
# 8.3 reference outputs of the installed SDKs (clock frozen at 1700000000)
# ---------------------------------------------------------------------------------------------

NOW = at(1700000000)
HTTPS_HANGZHOU = Endpoint.for_region("cn-hangzhou")
STS = Credentials("STS.ak", "sk", "tok/en+==")


def sign(version: str, key: str = "dir/a b+c.txt", *, credentials: Credentials = AK, expires: int = 3600,
         method: str = "GET", options: PresignOptions | None = None) -> str:  # fmt: skip
    signer = Signer(credentials, HTTPS_HANGZHOU, "examplebucket", region="cn-hangzhou", version=version)
    return signer.presign(key, expires=expires, method=method, options=options, now=NOW).url


def test_sdk_reference_v1_get_full_url():
    assert sign("v1") == (
        "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/dir/a%20b%2Bc.txt"
        "?OSSAccessKeyId=ak&Expires=1700003600&Signature=mtcSPzuMMy9oZ0%2FfUTVYMQxbYww%3D"
    )


def test_sdk_reference_v1_with_options_full_url():
    options = PresignOptions(response_content_disposition='attachment; filename="a b.txt"',
                             process="image/resize,w_100")  # fmt: skip
    assert sign("v1", options=options) == (
        "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/dir/a%20b%2Bc.txt"
        "?response-content-disposition=attachment%3B%20filename%3D%22a%20b.txt%22"
        "&x-oss-process=image%2Fresize%2Cw_100&OSSAccessKeyId=ak&Expires=1700003600"
        "&Signature=Mr7kJCVb1wjkznMU%2FZrFJ5bYSLs%3D"
    )


def test_sdk_reference_v1_sts():
    url = sign("v1", credentials=STS)
    assert query_value(url, "security-token") == "tok/en+=="
    assert "security-token=tok%2Fen%2B%3D%3D" in url
    assert query_value(url, "Signature") == "HRhhIAtNlpHRDtCTD7tBKZD0cUo="


def test_sdk_reference_v1_put_with_content_type():
    presigned = sign("v1", "up/load.bin", expires=600, method="PUT",
                     options=PresignOptions(content_type="application/octet-stream"))  # fmt: skip
    assert query_value(presigned, "Signature") == "gshaY1OI+eGIHqAr/yia3dKtu0U="
    assert query_value(presigned, "Expires") == "1700000600"


def test_sdk_reference_v1_unicode_key_and_rfc5987_disposition():
    url = sign("v1", "报告/a~b*c.pdf")
    assert split_url(url)[1] == "/%E6%8A%A5%E5%91%8A/a~b%2Ac.pdf"
    assert query_value(url, "Signature") == "FqfQTgIACb2ONyUetUTeu8cMF9c="
    disposition = "attachment; filename*=UTF-8''%E6%8A%A5%E5%91%8A.pdf"
    url = sign("v1", "x.pdf", options=PresignOptions(response_content_disposition=disposition))
    encoded = "attachment%3B%20filename%2A%3DUTF-8%27%27%25E6%258A%25A5%25E5%2591%258A.pdf"
    assert f"response-content-disposition={encoded}" in url
    assert query_value(url, "Signature") == "DlVBLweOxxsIqcZWEIxrymnhmhQ="


def test_sdk_reference_v4():
    url = sign("v4")
    assert url == (
        "https://examplebucket.oss-cn-hangzhou.aliyuncs.com/dir/a%20b%2Bc.txt"
        "?x-oss-credential=ak%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request&x-oss-date=20231114T221320Z"
        "&x-oss-expires=3600&x-oss-signature-version=OSS4-HMAC-SHA256"
        "&x-oss-signature=91823b02ec807d6f5dd74320ee5bb53ff0fe99facac1bfd871a3761056fb3e4c"
    )
    url = sign("v4", options=PresignOptions(response_content_disposition='attachment; filename="a b.txt"'))
    assert query_value(url, "x-oss-signature") == "3df7a8dc10c4ae8c91a679ab019ef8127cc9488d2459b9760d3571475800345d"
    url = sign("v4", credentials=STS)
    assert query_value(url, "x-oss-security-token") == "tok/en+=="
    assert query_value(url, "x-oss-credential") == "STS.ak/20231114/cn-hangzhou/oss/aliyun_v4_request"
    assert query_value(url, "x-oss-signature") == "bd26c37fa5aa151175be6f1e98bc0efeb3c259f6db776c0c83a3679c92e2e1c3"


def test_v4_plain_canonical_request_of_sdk_reference():
    params = {"x-oss-credential": "ak/20231114/cn-hangzhou/oss/aliyun_v4_request", "x-oss-date": "20231114T221320Z",
              "x-oss-expires": "3600", "x-oss-signature-version": "OSS4-HMAC-SHA256"}  # fmt: skip
    assert v4_canonical_request("GET", "/examplebucket/dir/a%20b%2Bc.txt", v4_canonical_query(params), "") == (
        "GET\n/examplebucket/dir/a%20b%2Bc.txt\nx-oss-credential=ak%2F20231114%2Fcn-hangzhou%2Foss%2Faliyun_v4_request"
        "&x-oss-date=20231114T221320Z&x-oss-expires=3600&x-oss-signature-version=OSS4-HMAC-SHA256\n\n\nUNSIGNED-PAYLOAD"
    )


def test_signing_key_is_cached_per_day():
    v4_signing_key.cache_clear()
    signer = Signer(AK, HTTPS_HANGZHOU, "examplebucket", region="cn-hangzhou")
    signer.presign_many(["a", "b", "c"], expires=600, now=NOW)
    signer.presign("d", expires=600, now=NOW + timedelta(hours=1))
    info = v4_signing_key.cache_info()
    assert (info.misses, info.hits) == (1, 1)
    signer.presign("e", expires=600, now=NOW + timedelta(days=1))
    assert v4_signing_key.cache_info().misses == 2
