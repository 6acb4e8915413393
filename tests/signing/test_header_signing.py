"""Authorization-header signing checked against the SDKs' own signer objects.

Requests shaped like shared/storage.py's (HEAD/GET/PUT objects, list, multipart) are signed by us,
by oss2's Auth/AuthV4/StsAuth `_sign_request`, and by alibabacloud-oss-v2's SignerV4/SignerV1,
with the clock frozen; the signatures must agree.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import alibabacloud_oss_v2 as oss_v2
import oss2.http
import pytest
from alibabacloud_oss_v2.signer import SignerV1, SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.signing import Credentials, Endpoint, InvalidKey, InvalidOption, Signer, http_date
from tests.signing.sdk_oracles import REGION, frozen_clock, oss2_auth
from tests.signing.test_differential import BUCKET, ENDPOINTS, KEYS, NOW, TEXT, credentials

SETTINGS = settings(max_examples=120, deadline=None)
TOKEN_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


METHODS = {"head": "HEAD", "get": "GET", "put": "PUT", "list": "GET", "initiate": "POST", "part": "PUT",
           "complete": "POST", "abort": "DELETE", "delete": "DELETE"}


def _headers(draw, kind: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["application/octet-stream", "text/plain", "image/jpeg"]))
    if kind in ("put", "part", "complete") and draw(st.booleans()):
        headers["Content-MD5"] = draw(st.sampled_from(["1B2M2Y8AsgTpgAmY7PhCfg==", "eB5eJF1ptWaXm4bijSPyxw=="]))
    if kind == "put":
        headers.update({f"x-oss-meta-{n}": "v" for n in draw(st.sets(st.sampled_from(["a", "b-c", "d"])))})
    if kind == "get" and draw(st.booleans()):
        headers["Range"] = "bytes=0-99"  # not a signed header
    return headers


def _params(draw, kind: str) -> dict[str, str | None]:
    upload_id = draw(st.text(TOKEN_CHARS, min_size=8, max_size=32))
    if kind in ("head", "get") and draw(st.booleans()):
        return {"versionId": draw(st.text(TOKEN_CHARS + "+/=", min_size=1, max_size=16))}
    if kind == "list":
        params: dict[str, str | None] = {"list-type": "2", "prefix": draw(TEXT), "max-keys": "1000",
                                         "delimiter": "/", "encoding-type": "url"}
        if draw(st.booleans()):
            params["continuation-token"] = draw(st.text(TOKEN_CHARS + "+/=", min_size=1, max_size=16))
        return params
    return {"initiate": {"uploads": None},
            "part": {"partNumber": str(draw(st.integers(1, 10000))), "uploadId": upload_id},
            "complete": {"uploadId": upload_id}, "abort": {"uploadId": upload_id}}.get(kind, {})


@st.composite
def storage_requests(draw):
    """(method, key or None, params, headers) as shared/storage.py sends them."""
    kind = draw(st.sampled_from(list(METHODS)))
    key = None if kind == "list" else draw(KEYS)
    return METHODS[kind], key, _params(draw, kind), _headers(draw, kind)


def v4_signature_of(authorization: str) -> str:
    return re.search(r"Signature=([0-9a-f]{64})", authorization).group(1)


def v4_credential_of(authorization: str) -> str:
    return re.search(r"Credential=([^,]+)", authorization).group(1)


# ---------------------------------------------------------------------------------------------
# oss2
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(request=storage_requests(), creds=credentials(), endpoint=ENDPOINTS, now=NOW,
       version=st.sampled_from(["v4", "v1"]))  # fmt: skip
def test_authorization_matches_oss2(request, creds, endpoint, now, version):
    method, key, params, headers = request
    ours = Signer(creds, endpoint, BUCKET, region=REGION, version=version).sign_request(
        method, key, params=params, headers=headers, now=now
    )
    oss2_request = oss2.http.Request(method, ours.url.split("?")[0], params={k: v or "" for k, v in params.items()},
                                     headers=dict(headers), region=REGION, product="oss")  # fmt: skip
    with frozen_clock(now):
        oss2_auth(creds, version)._sign_request(oss2_request, BUCKET, key or "")
    theirs = oss2_request.headers["authorization"]
    if version == "v1":
        assert ours.headers["Authorization"] == theirs
        assert ours.headers["Date"] == oss2_request.headers["date"]
    else:
        # oss2 writes "Credential=..., Signature=..." (comma + space); the values must agree.
        assert v4_signature_of(ours.headers["Authorization"]) == v4_signature_of(theirs)
        assert v4_credential_of(ours.headers["Authorization"]) == v4_credential_of(theirs)
        assert ours.headers["x-oss-date"] == oss2_request.headers["x-oss-date"]
    if creds.security_token:
        assert ours.headers["x-oss-security-token"] == oss2_request.headers["x-oss-security-token"]


# ---------------------------------------------------------------------------------------------
# alibabacloud-oss-v2
# ---------------------------------------------------------------------------------------------


def v2_sign(signer, creds: Credentials, method: str, url: str, key, headers, now, additional=None) -> HttpRequest:
    request = HttpRequest(method, url, headers=dict(headers))
    context = SigningContext(
        product="oss", region=REGION, bucket=BUCKET, key=key, request=request,
        credentials=oss_v2.credentials.Credentials(creds.access_key_id, creds.access_key_secret,
                                                   creds.security_token),
        signing_time=now, additional_headers=additional,
    )  # fmt: skip
    signer.sign(context)
    return request


@SETTINGS
@given(request=storage_requests(), creds=credentials(), endpoint=ENDPOINTS, now=NOW,
       additional=st.sets(st.sampled_from(["Range", "range", "Content-Type", "x-oss-meta-a", "If-Match"])))
def test_v4_authorization_matches_alibabacloud_oss_v2(request, creds, endpoint, now, additional):
    method, key, params, headers = request
    if additional:
        headers = {**headers, "If-Match": '"etag"'}
    ours = Signer(creds, endpoint, BUCKET, region=REGION).sign_request(
        method, key, params=params, headers=headers, additional_headers=additional, now=now
    )
    # Their canonical query is read from the URL: this also checks our URL carries what we signed.
    theirs = v2_sign(SignerV4(), creds, method, ours.url, key, headers, now, additional)
    assert ours.headers["Authorization"] == theirs.headers["Authorization"]


@SETTINGS
@given(request=storage_requests(), creds=credentials(), endpoint=ENDPOINTS, now=NOW)
def test_v1_authorization_matches_alibabacloud_oss_v2(request, creds, endpoint, now):
    method, key, params, headers = request
    ours = Signer(creds, endpoint, BUCKET, region=REGION, version="v1").sign_request(
        method, key, params=params, headers=headers, now=now
    )
    theirs = v2_sign(SignerV1(), creds, method, ours.url, key, headers, now)
    assert ours.headers["Date"] == theirs.headers["Date"]
    if not creds.security_token:
        assert ours.headers["Authorization"] == theirs.headers["Authorization"]
        return
    # Known difference (reference 1): alibabacloud-oss-v2 SignerV1 sends the token in an unsigned
    # `security-token` header; oss2, Go v2 and the docs send and sign `x-oss-security-token`.
    assert theirs.headers["security-token"] == creds.security_token
    assert "x-oss-security-token" not in theirs.headers
    assert ours.headers["x-oss-security-token"] == creds.security_token
    unsigned_token = Credentials(creds.access_key_id, creds.access_key_secret)
    without_token = Signer(unsigned_token, endpoint, BUCKET, region=REGION, version="v1").sign_request(
        method, key, params=params, headers=headers, now=now
    )
    assert without_token.headers["Authorization"] == theirs.headers["Authorization"]
    assert ours.headers["Authorization"] != theirs.headers["Authorization"]


# ---------------------------------------------------------------------------------------------
# Shape of what sign_request returns, and refusals
# ---------------------------------------------------------------------------------------------

FIXED = datetime(2023, 11, 14, 22, 13, 20, tzinfo=timezone.utc)
AK = Credentials("ak", "sk")


def test_request_urls_per_endpoint_style():
    def url(endpoint, key, params=None):
        return Signer(AK, endpoint, BUCKET, region=REGION).sign_request("GET", key, params=params, now=FIXED).url

    assert url(Endpoint.for_region(REGION), "a b") == f"https://{BUCKET}.oss-cn-hangzhou.aliyuncs.com/a%20b"
    assert url(Endpoint.path_style("127.0.0.1:9000"), None, {"list-type": "2", "prefix": "a/b"}) == (
        f"http://127.0.0.1:9000/{BUCKET}/?list-type=2&prefix=a%2Fb"
    )
    assert url(Endpoint.custom_domain("cdn.example.com"), "k", {"uploads": None}) == "https://cdn.example.com/k?uploads"


def test_v4_request_headers_and_user_payload_hash_is_kept():
    signer = Signer(Credentials("STS.ak", "sk", "tok"), Endpoint.for_region(REGION), BUCKET, region=REGION)
    signed = signer.sign_request("PUT", "k", headers={"x-oss-content-sha256": "UNSIGNED-PAYLOAD"}, now=FIXED)
    assert signed.headers["x-oss-date"] == "20231114T221320Z"
    assert signed.headers["x-oss-security-token"] == "tok"
    assert signed.headers["Authorization"].startswith(
        "OSS4-HMAC-SHA256 Credential=STS.ak/20231114/cn-hangzhou/oss/aliyun_v4_request,Signature="
    )
    assert "tok" not in repr(signed) and "sk" not in repr(signer)


def test_v1_date_header_is_rfc1123_and_locale_independent():
    assert http_date(FIXED) == "Tue, 14 Nov 2023 22:13:20 GMT"
    signed = Signer(AK, Endpoint.for_region(REGION), BUCKET, region=REGION, version="v1").sign_request(
        "HEAD", "k", now=FIXED
    )
    assert signed.headers["Date"] == "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "PATCH", "key": "k"}, InvalidOption),
        ({"method": "GET", "key": "/abs"}, InvalidKey),
        ({"method": "GET", "key": "k", "headers": {"x-oss-meta-a": "line\nbreak"}}, InvalidOption),
        ({"method": "GET", "key": "k", "headers": {"bad name": "v"}}, InvalidOption),
        ({"method": "GET", "key": "k", "headers": {"Content-Type": "a", "content-type": "b"}}, InvalidOption),
        ({"method": "GET", "key": "k", "params": {"prefix": "a\x00"}}, InvalidOption),
    ],
)
def test_sign_request_refuses_malformed_requests(kwargs, error):
    signer = Signer(AK, Endpoint.for_region(REGION), BUCKET, region=REGION)
    with pytest.raises(error) as raised:
        signer.sign_request(kwargs.pop("method"), kwargs.pop("key"), now=FIXED, **kwargs)
    assert raised.value.status == 400 and raised.value.code == error.code


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_headers_the_signer_owns_are_replaced_not_duplicated(version):
    signer = Signer(Credentials("STS.ak", "sk", "tok"), Endpoint.for_region(REGION), BUCKET, region=REGION,
                    version=version)  # fmt: skip
    stale = {"X-OSS-Security-Token": "old", "authorization": "OSS x:y"}
    if version == "v4":  # under V1 a caller's x-oss-date legitimately overrides Date (vector V1-H1)
        stale["X-Oss-Date"] = "20000101T000000Z"
    signed = signer.sign_request("GET", "k", headers=stale, now=FIXED)
    fresh = signer.sign_request("GET", "k", now=FIXED)
    assert signed.headers == fresh.headers
